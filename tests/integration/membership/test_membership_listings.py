"""Finding organisations and members as staff do, a page at a time; roster sync at city scale
sizes and with typed failures."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.integration.membership.conftest import Membership
from tests.integration.membership.test_membership_members import joining
from tests.integration.membership.test_membership_roster import finished, submit_csv
from tests.support.people import credit_code, id_number, mobile, name

pytestmark = pytest.mark.integration
SERIAL = 990_000


async def listed(m: Membership, **params: Any) -> dict[str, Any]:
    answer = await m.staff.get("/organisations", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_organisations_are_found_by_parent_kind_name_and_credit_code(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    city, county, factory, depot = (ids[k] for k in ("city", "county", "factory", "depot"))
    children = await listed(membership, parent_id=county)
    assert [o["id"] for o in children["items"]] == sorted([depot, factory])
    assert (children["total"], children["next_offset"]) == (2, None)
    subtree = await listed(membership, under=city)
    assert {o["id"] for o in subtree["items"]} == {county, factory, depot}
    unions = await listed(membership, under=city, kind="enterprise")
    assert {o["id"] for o in unions["items"]} == {factory, depot}
    by_name = await listed(membership, under=city, name="FACTORY 工")  # any case, a part
    assert [o["id"] for o in by_name["items"]] == [factory]
    code = by_name["items"][0]["employer"]["credit_code"]
    by_code = await listed(membership, credit_code=code.lower())
    assert [o["id"] for o in by_code["items"]] == [factory]
    assert (await listed(membership, under=city, credit_code=credit_code(1)))["items"] == []


async def test_organisations_come_a_page_at_a_time_with_the_total(membership: Membership) -> None:
    ids = await membership.union_tree()
    first = await listed(membership, under=ids["city"], limit=2)
    assert (len(first["items"]), first["total"], first["next_offset"]) == (2, 3, 2)
    second = await listed(membership, under=ids["city"], limit=2, offset=first["next_offset"])
    assert (len(second["items"]), second["next_offset"]) == (1, None)
    every = [o["id"] for o in first["items"] + second["items"]]
    assert every == sorted(every) and len(set(every)) == 3
    far = await listed(membership, under=ids["city"], offset=2**63 - 1)
    assert (far["items"], far["total"]) == ([], 3)
    assert (await membership.staff.get("/organisations", params={"limit": 0})).status_code == 422
    huge = await membership.staff.get("/organisations", params={"offset": 2**63})
    assert huge.status_code == 422


async def test_dissolved_organisations_are_kept_apart_on_request(membership: Membership) -> None:
    ids = await membership.union_tree()
    gone = await membership.staff.post(
        f"/organisations/{ids['depot']}/dissolve", json={"dissolved_on": "2025-01-31"}
    )
    assert gone.status_code == 200, gone.text
    standing = await listed(membership, parent_id=ids["county"], dissolved="false")
    dissolved = await listed(membership, parent_id=ids["county"], dissolved="true")
    assert [o["id"] for o in standing["items"]] == [ids["factory"]]
    assert [(o["id"], o["dissolved_on"]) for o in dissolved["items"]] == [
        (ids["depot"], "2025-01-31")
    ]


async def test_a_unions_members_are_listed_by_status_and_name_masked(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    staff = membership.staff
    joined = []
    for i, who in enumerate(["王芳", "王强", "李娜"]):
        answer = await staff.post(
            "/members", json=joining(ids["factory"], SERIAL + i) | {"name": who}
        )
        assert answer.status_code == 201, answer.text
        joined.append(answer.json())
    left = await staff.post(f"/members/{joined[2]['id']}/leave", json={"reason": "离职"})
    assert left.status_code == 200, left.text
    path = f"/organisations/{ids['factory']}/members"
    active = (await staff.get(path, params={"status": "active"})).json()
    assert sorted(m["name"] for m in active["items"]) == ["王强", "王芳"]
    assert all("*" in m["id_number"] and "*" in m["mobile"] for m in active["items"])
    wangs = (await staff.get(path, params={"name": "王"})).json()
    assert len(wangs["items"]) == 2
    page = (await staff.get(path, params={"limit": 2})).json()
    rest = (await staff.get(path, params={"limit": 2, "after": page["next_after"]})).json()
    assert len(page["items"]) + len(rest["items"]) == 3 and rest["next_after"] is None
    async with await membership.client("members:read", organisations=[ids["depot"]]) as other:
        refused = await other.get(path)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["code"] == "organisation_not_allowed"


async def test_a_roster_larger_than_a_megabyte_is_taken(membership: Membership) -> None:
    ids = await membership.union_tree()
    out = io.StringIO()
    out.write("id_number,name,mobile,categories\n")
    rows = 25_000
    for i in range(rows):
        out.write(f"{id_number(3_000_000 + i)},{name(i)},{mobile(i)},migrant_worker\n")
    data = out.getvalue().encode()
    assert len(data) > 1024 * 1024  # over every other operation's limit
    answer = await submit_csv(membership, ids["factory"], data, "big-1")
    assert answer.status_code == 202, answer.text
    job = await finished(membership.staff, answer.json(), timeout=300)
    assert (job["state"], job["joined"]) == ("done", rows)


async def test_a_failed_job_says_why_with_a_code(membership: Membership) -> None:
    ids = await membership.union_tree()
    rows = [{"id_number": id_number(SERIAL + 10), "name": name(1)}, {"id_number": "x", "name": "?"}]
    answer = await membership.staff.post(
        f"/organisations/{ids['depot']}/rosters/batch",
        json={"batch_id": "complete-with-typo", "complete": True, "rows": rows},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["duplicate"] is False and answer.json()["failure"] is None
    job = await finished(membership.staff, answer.json())
    assert job["state"] == "failed"
    assert (job["failure"]["field"], job["failure"]["code"]) == (
        "complete",
        "unreadable_id_numbers",
    )
    errors = (await membership.staff.get(f"/rosters/{job['id']}/errors")).json()
    assert [(e["row_number"], e["field"], e["code"]) for e in errors["items"]] == [
        (2, "id_number", "wrong_length")
    ]


async def test_roster_errors_page_by_row_keeping_each_rows_errors_together(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    rows = [
        {"id_number": "bad", "name": "", "mobile": "1"},  # row 1: three errors
        {"id_number": "bad", "name": "x"},  # row 2: one
        {"id_number": id_number(SERIAL + 20), "name": "王芳", "mobile": "2"},  # row 3: one
    ]
    answer = await membership.staff.post(
        f"/organisations/{ids['depot']}/rosters/batch", json={"batch_id": "paged", "rows": rows}
    )
    job = await finished(membership.staff, answer.json())
    path = f"/rosters/{job['id']}/errors"
    first = (await membership.staff.get(path, params={"limit": 1})).json()
    assert [e["row_number"] for e in first["items"]] == [1, 1, 1]
    second = (
        await membership.staff.get(path, params={"limit": 2, "after_row": first["next_after_row"]})
    ).json()
    assert [e["row_number"] for e in second["items"]] == [2, 3]
    assert second["next_after_row"] == 3
    assert (await membership.staff.get(path, params={"after_row": 2**31})).status_code == 422
    changes = await membership.staff.get(f"/rosters/{job['id']}/changes", params={"change": "x"})
    assert changes.status_code == 422
