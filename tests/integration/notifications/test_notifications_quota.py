"""Quota exhaustion: the first 45009/45011 pauses every worker until WeChat's window resets, the
rest of the queue waits instead of hammering WeChat, and sending resumes by itself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.integration.notifications.harness import Ids, WeChat, eventually, notifications
from tests.integration.notifications.test_notifications_delivery import approved
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration
TEMPLATE_SEND = "/cgi-bin/message/template/send"
DAY, BEIJING = 86_400, 8 * 3600
LEAD = 4.0  # seconds between exhausting the quota and the window's reset


@pytest.mark.parametrize(("errcode", "window"), [(45009, "daily"), (45011, "minute")])
async def test_quota_exhaustion_pauses_everyone_until_the_window_resets(
    errcode: int,
    window: str,
    db: ScratchDatabase,
    servers: Servers,
    namespace: str,
    wechat: WeChat,
    ids: Ids,
) -> None:
    members = [(ids.next("m"), ids.next("o")) for _ in range(7)]
    await wechat.follower(*(openid for _, openid in members))
    async with notifications(db, servers, namespace, wechat, send_rate_per_second=50.0) as svc:
        for member, openid in members:
            await svc.bind(member, openid)
        # A first message, so the consumer is running before the clock is set.
        [warm_up] = await svc.publish(approved(members[0][0], ids.next("claim")))
        await svc.settled(warm_up, "delivered", "sent")

        now = await wechat.now()
        length = DAY if window == "daily" else 60
        shift = BEIJING if window == "daily" else 0  # quota days end at midnight Beijing time
        reset = ((now + shift) // length + 1) * length - shift
        if reset - now < LEAD:  # too close to this window's end: the clock only moves forward
            reset += length
        await wechat.advance(reset - now - LEAD)
        used = (await wechat.stats())["quota"][TEMPLATE_SEND]
        key = "daily_quota" if window == "daily" else "minute_quota"
        await wechat.config(
            **{key: (used["used"] if window == "daily" else used["minute_used"]) + 3}
        )

        events = await svc.publish(*(approved(m, ids.next("claim")) for m, _ in members[1:]))

        async def paused() -> dict | None:  # type: ignore[type-arg]
            state = (await svc.api.get("/sending")).json()
            return state if state["pause_errcode"] == errcode else None

        state = await eventually(paused)
        assert datetime.fromisoformat(state["paused_until"]) == datetime.fromtimestamp(reset, UTC)
        assert state["pause_reason"] == "quota"

        async def all_pending() -> list | None:  # type: ignore[type-arg]
            # The pause may come before the consumer has turned the last event into a delivery.
            found = await svc.deliveries(status="pending")
            return found if len(found) == 3 else None

        waiting = await eventually(all_pending)
        assert all(d["attempts"] == 0 for d in waiting)
        # The one that met the quota waits for the reset; the others were never taken.
        [hit] = [d for d in waiting if d["errcode"] == errcode]
        assert hit["next_attempt_at"] == state["paused_until"]

        for event in events:
            await svc.settled(event, "delivered", "sent", timeout=LEAD + 10)
        stats = await wechat.stats()
    assert stats["rejected"] == {str(errcode): 1}  # the pause held every other send back
    assert stats["template_sends_accepted"] == len(members)
    for _, openid in members:
        assert len(await wechat.messages(openid)) == 1
