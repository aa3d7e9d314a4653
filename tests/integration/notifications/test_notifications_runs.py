"""The messages of a run of followed events are planned together (one read of the recipients,
one insert), each event by its own type's rules: a lecture's completions and certificates (one
subject, the class, alternating types) are one run, and each member's choices still decide
their message. Membership's joins, whose directory rows the messages read, still never hold one
member twice in a run."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiokafka import ConsumerRecord

from services.notifications.handlers import follows
from services.notifications.live_rules import LiveRules
from services.notifications.main import RULES
from services.notifications.messages import notifier
from services.notifications.repository import WAKE_CHANNEL
from shared.consumer import Fresh, Handler, _runs
from shared.events.base import EventData
from shared.events.envelope import Envelope
from tests.integration.notifications.harness import (
    Ids,
    WeChat,
    certificate,
    completed,
    joined,
    notifications,
)
from tests.support.clock import ManualClock
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


def runs(*events: EventData) -> list[int]:
    """The sizes of the runs notifications' consumer cuts a batch of ``events`` into."""
    by_topic = follows(LiveRules(RULES), ManualClock(), timedelta(minutes=10), "n.events")
    handler: dict[str, Handler] = {
        t: h for by_type in by_topic.values() for t, h in by_type.items()
    }
    record = ConsumerRecord("t", 0, 0, 0, 0, None, None, None, 0, 0, [])
    fresh: list[Fresh] = [(Envelope.wrap(e), e, handler[e.type], record) for e in events]
    return [len(run) for run in _runs(fresh)]


def test_a_lectures_completions_and_certificates_are_one_run() -> None:
    lecture = [e for m in ("a", "b", "c") for e in (completed(m), certificate(m))]
    assert runs(*lecture) == [6]


def test_joins_still_end_a_run_where_a_member_comes_again() -> None:
    assert runs(joined("a"), joined("b"), joined("a"), completed("a")) == [2, 1, 1]


async def test_a_run_of_several_types_records_each_events_own_messages_once(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    bound, opted_out, unbound = ids.next("m"), ids.next("m"), ids.next("m")
    # No sender: the messages stay as planned, and the wake-up is what this test hears.
    async with notifications(db, servers, namespace, wechat, run_sender=False) as svc:
        await svc.bind(bound, ids.next("o"))
        await svc.bind(opted_out, ids.next("o"))
        answer = await svc.api.put(
            f"/members/{opted_out}/preferences", json={"opted_out": ["training"]}
        )
        assert answer.status_code == 200, answer.text
        await svc.known(unbound)
        events: list[EventData] = [
            completed(bound),
            certificate(bound),
            completed(opted_out),
            certificate(opted_out),
            certificate(unbound),
        ]
        run = [(e, Envelope.wrap(e)) for e in events]
        notify = notifier(LiveRules(RULES), wechat.clock, timedelta(minutes=10))
        woken: asyncio.Queue[str] = asyncio.Queue()
        async with svc.pool.acquire() as conn:
            # (connection, pid, channel, payload)
            listen = lambda *args: woken.put_nowait(args[3])  # noqa: E731
            await conn.add_listener(WAKE_CHANNEL, listen)
            await notify.apply(conn, run)
            assert await asyncio.wait_for(woken.get(), timeout=10) == ""
            await notify.apply(conn, run)  # a redelivered run: nothing new, nobody woken
            await conn.execute(f"NOTIFY {WAKE_CHANNEL}, 'marker'")
            assert await asyncio.wait_for(woken.get(), timeout=10) == "marker"
            await conn.remove_listener(WAKE_CHANNEL, listen)
        ours = {envelope.id for _, envelope in run}
        deliveries = {d["event_id"]: d for d in await svc.deliveries() if d["event_id"] in ours}
    # One message per certificate, none for a completion (no rule sends one), none twice.
    assert {event_id: (d["member_id"], d["status"]) for event_id, d in deliveries.items()} == {
        run[1][1].id: (bound, "pending"),
        run[3][1].id: (opted_out, "skipped"),
        run[4][1].id: (unbound, "awaiting_binding"),
    }
    assert deliveries[run[3][1].id]["reason"] == "opted_out"
