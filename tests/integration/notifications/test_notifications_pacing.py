"""One pace for all: two replicas, each with several sender loops, together keep to the
configured rate instead of each sending at it."""

from __future__ import annotations

import pytest

from tests.integration.notifications.harness import Ids, WeChat, eventually, notifications
from tests.integration.notifications.test_notifications_delivery import approved
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration
RATE, COUNT = 20.0, 60


async def test_two_replicas_share_one_send_rate(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    members = [(ids.next("m"), ids.next("o")) for _ in range(COUNT)]
    await wechat.follower(*(o for _, o in members))
    async with (
        notifications(db, servers, namespace, wechat, send_rate_per_second=RATE) as first,
        notifications(db, servers, namespace, wechat, send_rate_per_second=RATE),
    ):
        for member, openid in members:
            await first.bind(member, openid)
        await first.publish(*(approved(m, ids.next("claim")) for m, _ in members))

        async def all_sent() -> bool:
            return bool((await wechat.stats())["template_sends_accepted"] == COUNT)

        await eventually(all_sent, 30)
    times = sorted(m["created_at"] for m in await wechat.messages())
    assert len(times) == COUNT
    elapsed = times[-1] - times[0]
    # 60 sends at 20 a second: the last goes (60 - 1) / 20 s after the first. Each replica
    # pacing on its own would have taken half that.
    assert (COUNT - 1) / RATE * 0.95 <= elapsed <= (COUNT - 1) / RATE * 1.5, elapsed
    # Within any second no more than the rate, give or take a send or two the machine delayed
    # and the next caught up with: replicas pacing on their own would reach twice the rate.
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    assert busiest <= RATE * 1.2, busiest
