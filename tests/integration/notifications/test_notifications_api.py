"""The API's edges: members it has not heard of are refused, inputs Postgres could not hold are a
4xx naming the field, and every collection can be searched and paged, openids masked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notifications.domain import mask_openid
from tests.integration.notifications.harness import (
    Ids,
    Service,
    WeChat,
    eventually,
    joined,
    notifications,
    template_id,
)
from tests.integration.notifications.test_notifications_delivery import approved
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration
ANNOUNCEMENT = {"first": "通知", "keyword1": "市总工会", "keyword2": "2026年3月8日", "remark": "无"}


def error_of(answer: Any) -> tuple[int, str, str]:
    [error] = answer.json()["errors"]
    return answer.status_code, error["field"], error["code"]


async def stored(svc: Service, member_id: str) -> tuple[int, int]:
    """How many bindings and preference rows the member has."""
    row = await svc.pool.fetchrow(
        "SELECT (SELECT count(*) FROM bindings WHERE member_id = $1) AS bindings,"
        " (SELECT count(*) FROM preferences WHERE member_id = $1) AS preferences",
        member_id,
    )
    return row["bindings"], row["preferences"]


async def test_a_member_is_bound_and_chooses_only_once_membership_has_announced_them(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    calls = (
        (f"/members/{member}/binding", {"openid": openid}),
        (f"/members/{member}/preferences", {"opted_out": ["announcements"]}),
    )
    async with notifications(db, servers, namespace, wechat) as svc:
        for path, body in calls:
            answer = await svc.api.put(path, json=body)
            assert error_of(answer) == (404, "member_id", "unknown_member"), answer.text
            assert "retry" in answer.json()["errors"][0]["message"]
        assert await stored(svc, member) == (0, 0)

        await svc.publish(joined(member))
        await eventually(
            lambda: svc.pool.fetchval("SELECT true FROM members WHERE member_id = $1", member)
        )
        for path, body in calls:
            answer = await svc.api.put(path, json=body)
            assert answer.status_code == 200, answer.text
        assert await stored(svc, member) == (1, 1)
        binding = (await svc.api.get(f"/members/{member}/binding")).json()
        assert binding["openid"] == mask_openid(openid) != openid


async def test_inputs_postgres_could_not_hold_are_refused_naming_the_field(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member = ids.next("m")
    async with notifications(db, servers, namespace, wechat) as svc:
        cases = [
            ("/deliveries/9223372036854775808", 422, "delivery_id", "less_than_equal"),
            ("/deliveries/0", 422, "delivery_id", "greater_than_equal"),
            ("/deliveries/9223372036854775807", 404, "delivery_id", "unknown_delivery"),
            ("/deliveries?after_id=-99999999999999999999", 422, "after_id", "greater_than_equal"),
            ("/deliveries?limit=1001", 422, "limit", "less_than_equal"),
            ("/deliveries?member_id=a%00b", 400, "member_id", "control_character"),
            ("/deliveries?created_since=-1.705e-11", 422, "created_since", "iso_format"),
            (
                "/deliveries?created_until=0667-06-02T00:00:00Z",
                422,
                "created_until",
                "out_of_range",
            ),
            ("/deliveries?status=lost", 422, "status", "enum"),
            ("/bindings?offset=99999999999999999999", 422, "offset", "less_than_equal"),
            ("/broadcasts/not-a-uuid", 422, "broadcast_id", "uuid_parsing"),
            (f"/members/{'m' * 65}/binding", 422, "member_id", "string_too_long"),
        ]
        for target, status, field, code in cases:
            answer = await svc.api.get(target)
            assert error_of(answer) == (status, field, code), (target, answer.text)
        await svc.known(member)
        answer = await svc.api.put(f"/members/{member}/binding", json={"openid": "o\u0000x"})
        assert error_of(answer) == (422, "openid", "nul_character"), answer.text
        assert await stored(svc, member) == (0, 0)


async def test_bindings_are_found_by_reachability_and_paged_with_openids_masked(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    members = [(ids.next("m"), ids.next("o")) for _ in range(3)]
    await wechat.follower(*(o for _, o in members))
    async with notifications(db, servers, namespace, wechat) as svc:
        for member, openid in members:
            await svc.bind(member, openid)
        closed_member, closed_openid = members[1]
        await wechat.admin("POST", f"/users/{closed_openid}/unfollow")
        await wechat.flush()

        first = (await svc.api.get("/bindings", params={"limit": 2})).json()
        second = (await svc.api.get("/bindings", params={"offset": 2, "limit": 2})).json()
        assert (first["next_offset"], second["next_offset"]) == (2, None)
        assert [b["member_id"] for b in first["items"] + second["items"]] == sorted(
            m for m, _ in members
        )
        assert {b["openid"] for b in first["items"] + second["items"]} == {
            mask_openid(o) for _, o in members
        }
        closed = (await svc.api.get("/bindings", params={"reachable": "false"})).json()
        assert [(b["member_id"], b["unreachable_errcode"]) for b in closed["items"]] == [
            (closed_member, 43004)
        ]
        by_openid = (await svc.api.get("/bindings", params={"openid": closed_openid})).json()
        assert [b["member_id"] for b in by_openid["items"]] == [closed_member]
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        none = (await svc.api.get("/bindings", params={"bound_since": later})).json()
        assert none["items"] == []


async def test_deliveries_are_found_by_member_cause_template_rule_category_and_time(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, other, openid = ids.next("m"), ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        [claim] = await svc.publish(approved(member, ids.next("claim")))
        await svc.settled(claim, "sent", "delivered")
        [welcome] = await svc.publish(joined(other))
        await svc.settled(welcome, "awaiting_binding")

        async def found(**filters: Any) -> list[str]:
            answer = await svc.api.get("/deliveries", params=filters)
            assert answer.status_code == 200, answer.text
            return [d["event_id"] for d in answer.json()["items"]]

        assert await found(member_id=member) == [claim.id]
        assert await found(event_type=welcome.type) == [welcome.id]
        assert await found(template_id=template_id("member_welcome")) == [welcome.id]
        assert await found(rule="member_joined_welcome") == [welcome.id]
        assert await found(category="mutual_aid") == [claim.id]
        assert await found(status="awaiting_binding") == [welcome.id]
        hour = timedelta(hours=1)
        assert await found(created_since=(datetime.now(UTC) - hour).isoformat()) == [
            claim.id,
            welcome.id,
        ]
        assert await found(created_until=(datetime.now(UTC) - hour).isoformat()) == []
        page = (await svc.api.get("/deliveries", params={"limit": 1})).json()
        rest = (await svc.api.get("/deliveries", params={"after_id": page["next_after_id"]})).json()
        assert [d["event_id"] for d in page["items"] + rest["items"]] == [claim.id, welcome.id]
        assert rest["next_after_id"] is None


async def test_broadcasts_are_listed_newest_first_and_found_by_status(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat
) -> None:
    # No fan-out worker: the broadcasts stay planning until one is cancelled.
    async with notifications(db, servers, namespace, wechat, run_sender=False) as svc:
        started = []
        for _ in range(3):
            answer = await svc.api.post(
                "/broadcasts", json={"data": ANNOUNCEMENT, "segment": {"union_id": "nobody"}}
            )
            assert answer.status_code == 202, answer.text
            started.append(answer.json()["id"])
        cancelled = await svc.api.post(f"/broadcasts/{started[0]}/cancel")
        assert cancelled.status_code == 200, cancelled.text

        first = (await svc.api.get("/broadcasts", params={"limit": 2})).json()
        rest = (await svc.api.get("/broadcasts", params={"offset": 2, "limit": 2})).json()
        assert [b["id"] for b in first["items"] + rest["items"]] == started[::-1]
        assert (first["next_offset"], rest["next_offset"]) == (2, None)
        found = (await svc.api.get("/broadcasts", params={"status": "cancelled"})).json()
        assert [b["id"] for b in found["items"]] == [started[0]]
        planning = (await svc.api.get("/broadcasts", params={"status": "planning"})).json()
        assert [b["id"] for b in planning["items"]] == started[:0:-1]
        other = (await svc.api.get("/broadcasts", params={"template": "member_welcome"})).json()
        assert other["items"] == []
