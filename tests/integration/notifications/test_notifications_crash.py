"""A worker that dies after WeChat accepted a message but before it recorded so: the message is
not sent twice. Within WeChat's client_msg_id window it is resent and WeChat deduplicates; later,
it is reconciled with WeChat's delivery report, or left for a person when there is none."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import pytest

from services.notifications import queue
from services.notifications.queue import Outcome, Recorded
from shared.events.envelope import Envelope
from tests.integration.notifications.harness import (
    Ids,
    Service,
    WeChat,
    eventually,
    notifications,
)
from tests.integration.notifications.test_notifications_delivery import approved
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


class Crash:
    """Makes the first record of a block WeChat accepted fail as if the worker had died."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.happened = False
        self._real = queue.record
        monkeypatch.setattr(queue, "record", self.record)

    async def record(
        self, conn: asyncpg.Connection, lease: UUID, outcomes: Sequence[Outcome], now: datetime
    ) -> list[Recorded]:
        if not self.happened and any(o.status == "sent" for o in outcomes):
            self.happened = True
            raise ConnectionResetError("the worker died after WeChat answered")
        return await self._real(conn, lease, outcomes, now)


async def crashed(svc: Service, event: Envelope, wechat: WeChat, crash: Crash) -> None:
    """Waits for the crash, then checks it left what a dead worker leaves."""

    async def happened() -> bool:
        return crash.happened

    await eventually(happened)
    row = await svc.delivery_of(event)
    assert row is not None and row["status"] == "sending" and row["msgid"] is None
    assert (await wechat.stats())["template_sends_accepted"] == 1


async def test_a_resend_within_the_window_is_deduplicated_by_wechat(
    db: ScratchDatabase,
    servers: Servers,
    namespace: str,
    wechat: WeChat,
    ids: Ids,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    crash = Crash(monkeypatch)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        [event] = await svc.publish(approved(member, ids.next("claim")))
        await crashed(svc, event, wechat, crash)
    # The worker is gone; a minute later (past its lease, inside WeChat's 10 minutes) a new one
    # finds the row in doubt and sends it again with the same client_msg_id.
    await wechat.advance(61)
    async with notifications(db, servers, namespace, wechat) as svc:
        delivery = await svc.settled(event, "delivered", "sent")
    [message] = await wechat.messages(openid)
    stats = await wechat.stats()
    assert (stats["template_sends_accepted"], stats["duplicates_suppressed"]) == (1, 1)
    assert (delivery["msgid"], delivery["attempts"]) == (message["msgid"], 2)


async def test_past_the_window_the_delivery_report_settles_it_without_a_resend(
    db: ScratchDatabase,
    servers: Servers,
    namespace: str,
    wechat: WeChat,
    ids: Ids,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    crash = Crash(monkeypatch)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        [event] = await svc.publish(approved(member, ids.next("claim")))
        await crashed(svc, event, wechat, crash)
        await wechat.flush()  # the report of the accepted send reached the service
        [[msgid]] = await svc.pool.fetch("SELECT msgid FROM delivery_reports")
    await wechat.advance(700)  # down longer than WeChat remembers client_msg_ids
    async with notifications(db, servers, namespace, wechat) as svc:
        delivery = await svc.settled(event, "delivered")
    assert (delivery["msgid"], delivery["errmsg"], delivery["attempts"]) == (msgid, "reconciled", 1)
    stats = await wechat.stats()
    assert (stats["template_sends_accepted"], stats["duplicates_suppressed"]) == (1, 0)


async def test_past_the_window_without_a_report_it_is_left_unconfirmed_not_resent(
    db: ScratchDatabase,
    servers: Servers,
    namespace: str,
    wechat: WeChat,
    ids: Ids,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    await wechat.config(callback_url=None)  # the report is lost with the crashed server
    crash = Crash(monkeypatch)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        [event] = await svc.publish(approved(member, ids.next("claim")))
        await crashed(svc, event, wechat, crash)
    await wechat.advance(700)
    async with notifications(db, servers, namespace, wechat) as svc:
        delivery = await svc.settled(event, "unconfirmed")
    assert delivery["reason"] == "in_doubt"
    assert len(await wechat.messages(openid)) == 1
    assert (await wechat.stats())["template_sends_accepted"] == 1
