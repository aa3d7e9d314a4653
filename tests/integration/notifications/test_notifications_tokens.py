"""One access token for every worker: a token that dies in the middle of a burst, seen by every
in-flight send of two replicas at once, is replaced by a single fetch."""

from __future__ import annotations

import pytest

from tests.integration.notifications.harness import Ids, WeChat, eventually, notifications
from tests.integration.notifications.test_notifications_delivery import approved
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration
MEMBERS = 150


async def test_a_token_expiring_during_a_burst_is_refreshed_once_for_all_workers(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    members = [(ids.next("m"), ids.next("o")) for _ in range(MEMBERS)]
    await wechat.follower(*(openid for _, openid in members))
    # WeChat's usual latency: at 100 sends a second, some 30 are in flight at any moment.
    await wechat.faults(latency_ms=300)
    pace = {"send_rate_per_second": 100.0, "sender_concurrency": 16}
    async with (
        notifications(db, servers, namespace, wechat, **pace) as first,
        notifications(db, servers, namespace, wechat, **pace),
    ):
        for member, openid in members:
            await first.bind(member, openid)
        await first.publish(*(approved(member, ids.next("claim")) for member, _ in members))

        async def some_sent() -> bool:
            return (await wechat.stats())["template_sends_accepted"] >= 20

        await eventually(some_sent)
        # WeChat's clock passes the token's two hours while ours does not: to the service the
        # token still looks good, and every send in flight, in both replicas, gets 42001.
        await wechat.advance(7200, service_too=False)

        async def all_sent() -> int | None:
            done = await first.pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE status IN ('sent', 'delivered')"
            )
            return done if done == MEMBERS else None

        await eventually(all_sent, 60)
        stats = await wechat.stats()
        refreshes = await first.pool.fetchval("SELECT refreshes FROM wechat_tokens")
    assert stats["rejected"].get("42001", 0) >= 10, stats["rejected"]
    assert stats["token_fetches"] == 2 == refreshes  # the first token, then one refresh
    assert stats["template_sends_accepted"] == MEMBERS
    for _, openid in members:
        assert len(await wechat.messages(openid)) == 1
