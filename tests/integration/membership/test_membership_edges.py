"""Membership at its edges, signed like a department: bad input is a 4xx problem naming the field
and changes nothing; ids with awkward characters are looked up, not mangled."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.membership.identity import card_number
from tests.integration.membership.conftest import Membership
from tests.integration.membership.test_membership_members import count_members, joining

pytestmark = pytest.mark.integration
SERIAL = 980_000


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    return body["errors"][0]


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ("/members/a%00b", "member_id"),
        ("/organisations/a%09b", "org_id"),
        ("/organisations?name=%00", "name"),
    ],
)
async def test_nul_and_control_characters_in_the_target_are_400(
    membership: Membership, target: str, field: str
) -> None:
    error = problem(await membership.staff.get(target), 400)
    assert (error["field"], error["code"]) == (field, "control_character")


async def test_a_nul_in_a_join_is_refused_naming_the_field_and_nothing_changes(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    before = await count_members(membership)
    for change, field in [({"union_id": "a\x00"}, "union_id"), ({"name": "王\x00芳"}, "name")]:
        answer = await membership.staff.post(
            "/members", json=joining(ids["factory"], SERIAL) | change
        )
        error = problem(answer, 422)
        assert (error["field"], error["code"]) == (field, "nul_character")
    assert await count_members(membership) == before


@pytest.mark.parametrize("org_id", ["a%23b", "a%3Fb", "a%5Cb", "%E5%B7%A5%E4%BC%9A"])
async def test_organisation_ids_with_awkward_characters_are_a_clean_404(
    membership: Membership, org_id: str
) -> None:
    error = problem(await membership.staff.get(f"/organisations/{org_id}"), 404)
    assert (error["field"], error["code"]) == ("organisation_id", "organisation_not_found")


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"from": "-1.705e-11", "to": "2026-01-01"}, "from", "iso_format"),
        ({"from": "2020-01-01", "to": "0667-06-02"}, "to", "out_of_range"),
        ({"from": "20200101", "to": "2026-01-01"}, "from", "iso_format"),
        ({"from": "2026-01-02", "to": "2026-01-01"}, "to", "range_reversed"),
        ({"from": "1990-01-01", "to": "2026-01-01"}, "to", "range_too_long"),
    ],
)
async def test_statistics_take_iso_dates_and_a_sane_period(
    membership: Membership, params: dict[str, str], field: str, code: str
) -> None:
    ids = await membership.union_tree()
    answer = await membership.staff.get(f"/organisations/{ids['city']}/statistics", params=params)
    error = problem(answer, 422)
    assert (error["field"], error["code"]) == (field, code)


async def test_standing_takes_an_iso_date(membership: Membership) -> None:
    ids = await membership.union_tree()
    member = await membership.staff.post("/members", json=joining(ids["factory"], SERIAL + 1))
    assert member.status_code == 201, member.text
    path = f"/members/{member.json()['id']}/standing"
    for bad in ("1e3", "2025-02-30", "0001-01-01"):
        assert (await membership.staff.get(path, params={"on": bad})).status_code == 422
    assert (await membership.staff.get(path, params={"on": "2025-03-01"})).json()["active"] is True


async def test_a_card_number_that_cannot_exist_is_422_and_an_unknown_one_404(
    membership: Membership,
) -> None:
    error = problem(await membership.staff.get("/cards/GH00000000011"), 422)
    assert (error["field"], error["code"]) == ("card_number", "check_character_mismatch")
    error = problem(await membership.staff.get(f"/cards/{card_number(9_999_999_999)}"), 404)
    assert (error["field"], error["code"]) == ("card_number", "card_not_found")


async def test_a_malformed_lookup_body_is_422(membership: Membership) -> None:
    async with await membership.client("members:read_personal") as hr:
        error = problem(await hr.post("/members/lookup", json={"id": "x"}), 422)
        assert error["code"] in ("missing", "extra_forbidden")
        error = problem(await hr.post("/members/lookup", json={"id_number": "1\x00"}), 422)
        assert (error["field"], error["code"]) == ("id_number", "nul_character")
