"""Organisations and members through the API, against the real database and broker."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.integration.membership.conftest import Membership
from tests.support.people import id_number, mobile

pytestmark = pytest.mark.integration
SERIAL = 900_000


def joining(union_id: str, serial: int, **extra: object) -> dict[str, object]:
    return {
        "name": "王芳",
        "id_number": id_number(serial),
        "mobile": mobile(serial),
        "categories": ["migrant_worker"],
        "channel": "on_site",
        "union_id": union_id,
        "employer_name": "亳州药业有限公司",
        "joined_on": "2025-03-01",
    } | extra


async def count_members(m: Membership) -> int:
    return await m.app.state.runtime.pool.fetchval("SELECT count(*) FROM members")


async def test_organisation_tree_rename_move_and_statistics(membership: Membership) -> None:
    ids = await membership.union_tree()
    staff = membership.staff
    union = (await staff.get(f"/organisations/{ids['factory']}")).json()
    assert union["path"] == [ids["city"], ids["county"]]
    renamed = await staff.patch(f"/organisations/{ids['factory']}", json={"name": "制药厂工会"})
    assert renamed.json()["name"] == "制药厂工会"
    moved = await staff.post(
        f"/organisations/{ids['factory']}/move", json={"parent_id": ids["city"]}
    )
    assert moved.json()["path"] == [ids["city"]]
    under_self = await staff.post(
        f"/organisations/{ids['county']}/move", json={"parent_id": ids["county"]}
    )
    assert under_self.status_code == 422
    for serial in range(3):
        await staff.post("/members", json=joining(ids["depot"], SERIAL + 100 + serial))
    stats = await staff.get(
        f"/organisations/{ids['city']}/statistics",
        params={"from": "2021-01-01", "to": "2025-12-31"},
    )
    totals = stats.json()["totals"]
    assert totals["members"] == 3 and totals["migrant_worker"] == 3
    assert totals["new_members"] == 3 and totals["new_unions"] == 2


async def test_join_masks_personal_data_and_refuses_a_second_join(membership: Membership) -> None:
    ids = await membership.union_tree()
    body = joining(ids["factory"], SERIAL + 1)
    answer = await membership.staff.post("/members", json=body)
    assert answer.status_code == 201, answer.text
    member = answer.json()
    assert member["id_number"] != body["id_number"] and "*" in member["id_number"]
    assert member["mobile"].count("*") == 4
    assert member["card_number"].startswith("GH")
    again = await membership.staff.post("/members", json=body | {"union_id": ids["depot"]})
    assert again.status_code == 409
    assert again.json()["existing_member_id"] == member["id"]
    async with await membership.client("members:read", "members:read_personal") as hr:
        full = (await hr.get(f"/members/{member['id']}")).json()
        assert full["id_number"] == body["id_number"]
        found = await hr.post("/members/lookup", json={"id_number": body["id_number"]})
        assert found.json()["id"] == member["id"]


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"id_number": "341602197001010006"}, "id_number", 422),  # wrong check character
        ({"id_number": "991602197001010005"}, "id_number", 422),  # no such province
        ({"mobile": "12345678901"}, "mobile", 422),
        ({"union_id": "no-such-union"}, "union_id", 404),
        ({"joined_on": (date.today() + timedelta(days=30)).isoformat()}, "joined_on", 422),
        ({"name": "名" * 51}, "name", 422),
        ({"channel": "fax"}, "channel", 422),
        ({"categories": ["astronaut"]}, "categories", 422),
    ],
)
async def test_bad_joins_name_the_field_and_change_nothing(
    membership: Membership, change: dict[str, object], field: str, status: int
) -> None:
    ids = await membership.union_tree()
    before = await count_members(membership)
    answer = await membership.staff.post(
        "/members", json=joining(ids["factory"], SERIAL + 2) | change
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert await count_members(membership) == before


async def test_bad_credit_code_is_refused(membership: Membership) -> None:
    ids = await membership.union_tree()
    answer = await membership.staff.post(
        "/organisations",
        json={
            "name": "某公司工会",
            "kind": "enterprise",
            "parent_id": ids["county"],
            "founded_on": "2020-01-01",
            "employer": {
                "name": "某公司",
                "credit_code": "91341600000000005X",
                "headcount_band": "1-24",
                "address": "亳州",
            },
        },
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "employer.credit_code"


async def test_member_life_transfer_suspend_reinstate_leave_and_standing(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    staff = membership.staff
    member = (await staff.post("/members", json=joining(ids["factory"], SERIAL + 3))).json()
    path = f"/members/{member['id']}"
    moves = [
        ("transfer", {"to_union_id": ids["depot"], "transferred_on": "2025-06-01"}),
        ("suspend", {"suspended_on": "2025-07-01", "reason": "会费欠缴"}),
        ("reinstate", {"reinstated_on": "2025-08-01"}),
        ("leave", {"left_on": "2025-09-01", "reason": "离职"}),
    ]
    for action, body in moves:
        answer = await staff.post(f"{path}/{action}", json=body)
        assert answer.status_code == 200, answer.text
    assert (await staff.post(f"{path}/leave", json={"reason": "again"})).status_code == 409

    async def standing(on: str) -> dict[str, object]:
        return (await staff.get(f"{path}/standing", params={"on": on})).json()

    assert (await standing("2025-02-28"))["member"] is False
    assert (await standing("2025-05-31"))["union_id"] == ids["factory"]
    assert (await standing("2025-06-15"))["union_id"] == ids["depot"]
    assert (await standing("2025-07-15"))["active"] is False
    assert (await standing("2025-08-15"))["active"] is True
    assert (await standing("2025-09-01"))["member"] is False


async def test_card_reissue_retires_the_old_number(membership: Membership) -> None:
    ids = await membership.union_tree()
    staff = membership.staff
    member = (await staff.post("/members", json=joining(ids["factory"], SERIAL + 4))).json()
    old = member["card_number"]
    reissued = await staff.post(f"/members/{member['id']}/card/reissue", json={})
    new = reissued.json()["card_number"]
    assert new != old
    assert (await staff.get(f"/cards/{old}")).json()["card_valid"] is False
    assert (await staff.get(f"/cards/{new}")).json()["card_valid"] is True


async def test_union_roster_is_paginated_and_filtered(membership: Membership) -> None:
    ids = await membership.union_tree()
    staff = membership.staff
    for i in range(5):
        cats = ["migrant_worker"] if i % 2 else []
        await staff.post("/members", json=joining(ids["factory"], SERIAL + 10 + i, categories=cats))
    first = (
        await staff.get(f"/organisations/{ids['factory']}/members", params={"limit": 3})
    ).json()
    rest = (
        await staff.get(
            f"/organisations/{ids['factory']}/members",
            params={"limit": 3, "after": first["next_after"]},
        )
    ).json()
    assert len(first["items"]) == 3 and len(rest["items"]) == 2
    migrants = await staff.get(
        f"/organisations/{ids['factory']}/members", params={"category": "migrant_worker"}
    )
    assert len(migrants.json()["items"]) == 2


async def test_an_hr_system_limited_to_its_union_cannot_act_elsewhere(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    async with await membership.client("members:join", organisations=[ids["factory"]]) as hr:
        ok = await hr.post("/members", json=joining(ids["factory"], SERIAL + 20))
        assert ok.status_code == 201
        before = await count_members(membership)
        refused = await hr.post("/members", json=joining(ids["depot"], SERIAL + 21))
        assert refused.status_code == 403
        assert await count_members(membership) == before
