"""Broadcasts: a segment (a union's subtree, a member category) gets one message each, with the
members' own names; progress as it goes; a fan-out that fails half-way resumes without sending
anyone a second message; cancelling; and a member who unfollows while it runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.notifications.broadcast_repository import Broadcasts
from shared.events.notifications import BroadcastCompleted
from tests.integration.notifications.harness import (
    Ids,
    Service,
    WeChat,
    eventually,
    joined,
    notifications,
    template_id,
    union,
)
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration
# The roster's members bind after their joins: no welcome may wait for them and muddle the counts.
NO_WELCOME = {"binding_grace_seconds": 0}
ANNOUNCEMENT = {
    "first": "{member_name}，您好：市总工会通知",
    "keyword1": "{union_name}",
    "keyword2": "2026年3月8日",
    "remark": "请按时参加。",
}


async def roster(
    svc: Service,
    wechat: WeChat,
    ids: Ids,
    count: int,
    union_id: str,
    path: list[str],
    *,
    bound: bool = True,
    categories: list[str] | None = None,
) -> list[tuple[str, str]]:
    """``count`` members of ``union_id`` known to the service (and, if bound, following)."""
    members = [(ids.next("m"), ids.next("o")) for _ in range(count)]
    await svc.publish(*(joined(m, f"会员{m[-4:]}", union_id, path, categories) for m, _ in members))

    async def known() -> bool:
        found = await svc.pool.fetchval(
            "SELECT count(*) FROM members WHERE member_id = ANY($1)", [m for m, _ in members]
        )
        return bool(found == count)

    await eventually(known)
    if bound:
        await wechat.follower(*(o for _, o in members))
        for member, openid in members:
            await svc.bind(member, openid)
    return members


async def broadcast(svc: Service, **body: Any) -> dict[str, Any]:
    answer = await svc.api.post("/broadcasts", json={"data": ANNOUNCEMENT, **body})
    assert answer.status_code == 202, answer.text
    progress: dict[str, Any] = answer.json()
    return progress


async def finished(svc: Service, broadcast_id: str, timeout: float = 60) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        progress: dict[str, Any] = (await svc.api.get(f"/broadcasts/{broadcast_id}")).json()
        return progress if progress["status"] in ("completed", "cancelled") else None

    return await eventually(check, timeout, f"broadcast {broadcast_id} finished")


async def test_a_union_subtree_gets_one_message_each_and_progress_adds_up(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    city, district, factory, other = (ids.next("u") for _ in range(4))
    async with notifications(db, servers, namespace, wechat, **NO_WELCOME) as svc:
        await svc.publish(
            union(city, "市总工会"),
            union(district, "谯城区总工会", [city]),
            union(factory, "卷烟厂工会", [city, district]),
            union(other, "涡阳县总工会", [city]),
        )
        await eventually(
            lambda: svc.pool.fetchval("SELECT count(*) = 4 FROM organisations")
        )  # before members: in life unions come first (they are on other partitions)
        in_factory = await roster(svc, wechat, ids, 6, factory, [city, district])
        in_district = await roster(svc, wechat, ids, 3, district, [city], categories=["女职工"])
        unbound = await roster(svc, wechat, ids, 2, district, [city], bound=False)
        elsewhere = await roster(svc, wechat, ids, 4, other, [city], categories=["女职工"])
        opted_out, unreachable = in_factory[0], in_factory[1]
        await svc.api.put(
            f"/members/{opted_out[0]}/preferences", json={"opted_out": ["announcements"]}
        )
        await wechat.admin("POST", f"/users/{unreachable[1]}/unfollow")
        await wechat.flush()

        started = await broadcast(svc, segment={"union_id": district})
        assert started["status"] == "planning" and started["audience"] == 11
        done = await finished(svc, started["id"])
        assert done["status"] == "completed"
        assert (done["queued"], done["sent"], done["failed"], done["remaining"]) == (7, 7, 0, 0)
        assert done["skipped"] == {"no_binding": 2, "no_channel": 1, "opted_out": 1, "total": 4}
        [completed] = await eventually(lambda: svc.outbox(BroadcastCompleted.type))
        assert (completed["queued"], completed["sent"], completed["skipped"]) == (7, 7, 4)

        women = await broadcast(svc, segment={"member_category": "女职工"})
        assert (await finished(svc, women["id"]))["sent"] == 7

    expected = {o for _, o in in_factory[2:] + in_district}
    for member, openid in in_factory + in_district + unbound + elsewhere:
        got = await wechat.messages(openid, template_id=template_id("announcement"))
        wants = (openid in expected) + (any(openid == o for _, o in in_district + elsewhere))
        assert len(got) == wants, (member, got)
        if got:
            assert got[0]["data"]["first"]["value"] == f"会员{member[-4:]}，您好：市总工会通知"
    both = await wechat.messages(in_district[0][1], template_id=template_id("announcement"))
    assert [m["data"]["keyword1"]["value"] for m in both] == ["谯城区总工会"] * 2


async def test_a_broadcast_request_is_checked_before_anything_is_queued(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat
) -> None:
    async with notifications(db, servers, namespace, wechat, **NO_WELCOME) as svc:
        cases = [
            ({"template": "nope", "data": ANNOUNCEMENT}, "template", "unknown_template"),
            ({"data": {"first": "x"}}, "data", "missing_template_keys"),
            ({"data": ANNOUNCEMENT | {"extra": "x"}}, "data", "unknown_template_keys"),
            (
                {"data": ANNOUNCEMENT | {"remark": "{card_number}"}},
                "data.remark",
                "unknown_placeholder",
            ),
            ({"data": ANNOUNCEMENT | {"remark": "{member_name"}}, "data.remark", "invalid_pattern"),
            ({"data": ANNOUNCEMENT, "url": "https://x.cn/{openid}"}, "url", "unknown_placeholder"),
            ({"data": ANNOUNCEMENT | {"remark": "a\u0000"}}, "data.remark", "nul_character"),
        ]
        for body, field, code in cases:
            answer = await svc.api.post("/broadcasts", json=body)
            assert answer.status_code == 422, answer.text
            [error] = answer.json()["errors"]
            assert (error["field"], error["code"]) == (field, code), error
        assert await svc.pool.fetchval("SELECT count(*) FROM broadcasts") == 0


async def test_a_fan_out_that_dies_half_way_resumes_without_duplicates(
    db: ScratchDatabase,
    servers: Servers,
    namespace: str,
    wechat: WeChat,
    ids: Ids,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_advance = Broadcasts.advance
    batches = 0
    died = asyncio.Event()

    async def dies_in_the_third(self: Broadcasts, *args: Any) -> None:
        nonlocal batches
        batches += 1
        await real_advance(self, *args)  # the batch's deliveries and cursor are written
        if batches == 3:
            died.set()
            await asyncio.Event().wait()  # hangs in the transaction until the process dies

    u = ids.next("u")
    options = {"broadcast_batch_size": 10, "send_rate_per_second": 500.0, **NO_WELCOME}
    async with notifications(db, servers, namespace, wechat, **options) as svc:
        members = await roster(svc, wechat, ids, 45, u, [])
        monkeypatch.setattr(Broadcasts, "advance", dies_in_the_third)
        started = await broadcast(svc, segment={"union_id": u})
        await asyncio.wait_for(died.wait(), 30)
        b = await svc.pool.fetchrow("SELECT * FROM broadcasts WHERE id = $1::uuid", started["id"])
    assert (b["status"], b["examined"]) == ("planning", 20)
    monkeypatch.setattr(Broadcasts, "advance", real_advance)
    await wechat.advance(61)  # the restart takes a minute: any send left in doubt is retried
    async with notifications(db, servers, namespace, wechat, **options) as svc:
        done = await finished(svc, started["id"])
        rows = await svc.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE broadcast_id = $1::uuid", started["id"]
        )
    assert (done["status"], done["sent"], rows) == ("completed", 45, 45)
    for _, openid in members:
        assert len(await wechat.messages(openid)) == 1
    assert (await wechat.stats())["template_sends_accepted"] == 45


async def test_cancelling_withdraws_what_was_not_sent(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    u = ids.next("u")
    async with notifications(
        db, servers, namespace, wechat, send_rate_per_second=10.0, **NO_WELCOME
    ) as svc:
        await roster(svc, wechat, ids, 40, u, [])
        started = await broadcast(svc, segment={"union_id": u})

        async def some_sent() -> bool:
            return (await wechat.stats())["template_sends_accepted"] >= 5

        await eventually(some_sent)
        answer = await svc.api.post(f"/broadcasts/{started['id']}/cancel")
        assert answer.status_code == 200, answer.text
        assert (await finished(svc, started["id"]))["status"] == "cancelled"

        async def withdrawn() -> bool:  # blocks already claimed stop too
            progress = (await svc.api.get(f"/broadcasts/{started['id']}")).json()
            return bool(progress["remaining"] == 0)

        await eventually(withdrawn, 5)
        await asyncio.sleep(1.0)  # ten sends' worth: none may go now
        sent = (await wechat.stats())["template_sends_accepted"]
        again = await svc.api.post(f"/broadcasts/{started['id']}/cancel")
        final = (await svc.api.get(f"/broadcasts/{started['id']}")).json()
    assert 5 <= sent < 40 and final["sent"] == sent
    assert final["cancelled"] == 40 - sent
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "broadcast_closed"
    assert again.json()["broadcast_status"] == "cancelled"


async def test_a_member_who_unfollows_mid_broadcast_is_not_written_to(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    u = ids.next("u")
    async with notifications(
        db, servers, namespace, wechat, send_rate_per_second=20.0, **NO_WELCOME
    ) as svc:
        members = await roster(svc, wechat, ids, 30, u, [])
        leaver = max(members)  # member ids are sent in order: the last one goes last
        started = await broadcast(svc, segment={"union_id": u})

        async def under_way() -> bool:
            return (await wechat.stats())["template_sends_accepted"] >= 3

        await eventually(under_way)
        await wechat.admin("POST", f"/users/{leaver[1]}/unfollow")
        done = await finished(svc, started["id"])
        [row] = await svc.deliveries(member_id=leaver[0], broadcast_id=started["id"])
    assert (done["sent"], done["failed"]) == (29, 1)
    assert (row["status"], row["reason"], row["errcode"]) == ("undeliverable", "no_channel", 43004)
    assert row["attempts"] == 0  # known from the unsubscribe push: WeChat was not asked
    assert await wechat.messages(leaver[1]) == []
    assert (await wechat.stats())["rejected_total"] == 0
