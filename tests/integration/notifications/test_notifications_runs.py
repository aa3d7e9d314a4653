"""The messages of a run of followed events are planned together (one read of the recipients,
one insert), each event by its own type's rules: a lecture's completions and certificates may
come as one run, and each member's choices still decide their message."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from services.notifications.live_rules import LiveRules
from services.notifications.main import RULES
from services.notifications.messages import notifier
from services.notifications.repository import WAKE_CHANNEL
from shared.events.envelope import Envelope
from shared.events.training import CertificateIssued, CourseCompleted, EnrolmentEvent
from tests.integration.notifications.harness import Ids, WeChat, notifications
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration
ISSUED = date(2026, 12, 5)


def enrolment(member_id: str) -> dict[str, str]:
    return {
        "class_id": "class-1",
        "enrolment_id": f"e-{member_id}",
        "member_id": member_id,
        "course_id": "course-1",
        "course_title": "职工云课堂",
        "class_name": "live",
    }


def completed(member_id: str) -> CourseCompleted:
    return CourseCompleted(**enrolment(member_id), completed_on=ISSUED)


def certificate(member_id: str) -> CertificateIssued:
    return CertificateIssued(
        **enrolment(member_id), certificate_number=f"C-{member_id}", issued_on=ISSUED
    )


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
        events: list[EnrolmentEvent] = [
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
