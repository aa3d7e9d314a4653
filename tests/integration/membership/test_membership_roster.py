"""HR roster sync: CSV (UTF-8 or GBK) and JSON batches, per-row errors, idempotency, leavers."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx
import psutil
import pytest

from services.membership.roster_import import CHILD_MODULE
from tests.integration.membership.conftest import Membership
from tests.support.people import id_number, mobile, name
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
SERIAL = 950_000


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


async def finished(
    client: httpx.AsyncClient, job: dict[str, Any], timeout: float = 120
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while job["state"] not in ("done", "failed"):
        assert asyncio.get_running_loop().time() < deadline, f"job still {job['state']}"
        await asyncio.sleep(0.2)
        job = (await client.get(f"/rosters/{job['id']}")).json()
    return job


async def submit_csv(
    m: Membership, union: str, data: bytes, batch: str, complete: bool = False
) -> httpx.Response:
    return await m.staff.post(
        f"/organisations/{union}/rosters",
        files={"file": ("roster.csv", data, "text/csv")},
        data={"batch_id": batch, "complete": str(complete).lower()},
    )


async def test_a_gbk_roster_with_chinese_headers_imports_with_row_errors(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    rows = [["身份证号", "姓名", "手机号", "类别"]]
    rows += [[id_number(SERIAL + i), name(i), mobile(i), "农民工"] for i in range(3)]
    rows.append([id_number(SERIAL + 3), "李四", "1234", ""])  # malformed mobile
    rows.append([id_number(SERIAL + 0), "重复", mobile(9), ""])  # same person twice
    answer = await submit_csv(membership, ids["factory"], csv_bytes(rows, "gbk"), "gbk-1")
    assert answer.status_code == 202, answer.text
    job = await finished(membership.staff, answer.json())
    assert job["state"] == "done", job
    assert (job["rows_read"], job["joined"], job["rejected"]) == (5, 3, 2)
    errors = (await membership.staff.get(f"/rosters/{job['id']}/errors")).json()["items"]
    # As the spreadsheet shows them: the header is row 1, the bad mobile row 5.
    assert [(e["row_number"], e["field"], e["code"]) for e in errors] == [
        (5, "mobile", "not_11_digits"),
        (6, "id_number", "duplicate_id_number"),
    ]
    roster = (await membership.staff.get(f"/organisations/{ids['factory']}/members")).json()
    assert sorted(m["name"] for m in roster["items"]) == sorted(name(i) for i in range(3))
    assert all("migrant_worker" in m["categories"] for m in roster["items"])


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        (csv_bytes([["id", "who"], ["1", "x"]], "utf-8"), "unknown_column", "unknown column"),
        (
            csv_bytes([["name", "mobile"], ["x", "13900000000"]], "utf-8"),
            "missing_columns",
            "lacks id_number",
        ),
        ("id_number,name\n".encode("utf-16"), "unsupported_encoding", "UTF-8 or GBK"),
        (b"", "empty_file", "empty"),
    ],
)
async def test_unusable_files_are_refused_before_any_job(
    membership: Membership, data: bytes, code: str, reason: str
) -> None:
    ids = await membership.union_tree()
    answer = await submit_csv(membership, ids["factory"], data, "bad-file")
    assert answer.status_code == 422
    assert (answer.json()["errors"][0]["field"], answer.json()["errors"][0]["code"]) == (
        "file",
        code,
    )
    assert reason in answer.json()["detail"]
    pool = membership.app.state.runtime.pool
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM roster_jobs WHERE organisation_id = $1", ids["factory"]
        )
        == 0
    )


async def test_the_same_batch_twice_changes_nothing_the_second_time(membership: Membership) -> None:
    ids = await membership.union_tree()
    body = {
        "batch_id": "hr-2025-06",
        "rows": [{"id_number": id_number(SERIAL + 10 + i), "name": name(i)} for i in range(4)],
    }
    first = await membership.staff.post(f"/organisations/{ids['depot']}/rosters/batch", json=body)
    assert first.status_code == 202
    job = await finished(membership.staff, first.json())
    pool = membership.app.state.runtime.pool
    members = await pool.fetchval("SELECT count(*) FROM members")
    events = await pool.fetchval("SELECT count(*) FROM outbox")
    again = await membership.staff.post(f"/organisations/{ids['depot']}/rosters/batch", json=body)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["id"] == job["id"]
    await asyncio.sleep(0.5)
    assert await pool.fetchval("SELECT count(*) FROM members") == members
    assert await pool.fetchval("SELECT count(*) FROM outbox") == events


async def test_a_complete_roster_corrects_details_and_takes_off_leavers(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    staff = membership.staff
    people = [
        {"id_number": id_number(SERIAL + 20 + i), "name": name(i), "mobile": mobile(i)}
        for i in range(4)
    ]
    first = await staff.post(
        f"/organisations/{ids['factory']}/rosters/batch", json={"batch_id": "b1", "rows": people}
    )
    await finished(staff, first.json())
    corrected = [people[0] | {"name": "更正名"}, people[1], people[2]]  # people[3] is gone
    second = await staff.post(
        f"/organisations/{ids['factory']}/rosters/batch",
        json={"batch_id": "b2", "complete": True, "rows": corrected},
    )
    job = await finished(staff, second.json())
    assert (job["changed"], job["unchanged"], job["left_union"]) == (1, 2, 1), job
    changes = (await staff.get(f"/rosters/{job['id']}/changes")).json()["items"]
    assert sorted((c["change"], tuple(c["fields"])) for c in changes) == [
        ("corrected", ("name",)),
        ("left", ()),
    ]
    active = (
        await staff.get(f"/organisations/{ids['factory']}/members", params={"status": "active"})
    ).json()["items"]
    assert sorted(m["name"] for m in active) == sorted(["更正名", name(1), name(2)])


async def test_an_incomplete_roster_never_takes_anyone_off(membership: Membership) -> None:
    ids = await membership.union_tree()
    staff = membership.staff
    people = [{"id_number": id_number(SERIAL + 30 + i), "name": name(i)} for i in range(3)]
    await finished(
        staff,
        (
            await staff.post(
                f"/organisations/{ids['depot']}/rosters/batch",
                json={"batch_id": "c1", "rows": people},
            )
        ).json(),
    )
    partial = await staff.post(
        f"/organisations/{ids['depot']}/rosters/batch", json={"batch_id": "c2", "rows": people[:1]}
    )
    job = await finished(staff, partial.json())
    assert job["left_union"] == 0 and job["unchanged"] == 1


async def test_a_roster_job_whose_process_is_killed_resumes_and_applies_each_row_once(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    count = 8_000  # four chunks: the process is killed after the first commits
    rows = [["id_number", "name", "mobile"]]
    rows += [[id_number(SERIAL + 1000 + i), name(i), mobile(i)] for i in range(count)]
    answer = await submit_csv(membership, ids["depot"], csv_bytes(rows, "utf-8"), "killed-1")
    assert answer.status_code == 202, answer.text
    job_url = f"/rosters/{answer.json()['id']}"

    async def job_process() -> psutil.Process | None:
        job = (await membership.staff.get(job_url)).json()
        if not 0 < job["rows_read"] < count:
            assert job["state"] != "done", "the job ended before its process could be killed"
            return None
        children = psutil.Process().children(recursive=True)
        return next((p for p in children if CHILD_MODULE in p.cmdline()), None)

    (await eventually(job_process, timeout=120, what="a job process mid-way")).kill()
    job = await finished(membership.staff, answer.json(), timeout=300)
    assert (job["state"], job["rows_read"], job["joined"]) == ("done", count, count), job
    pool = membership.app.state.runtime.pool
    joined = await pool.fetchval("SELECT count(*) FROM members WHERE union_id = $1", ids["depot"])
    events = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'gonghui.membership.member.joined'"
        " AND key IN (SELECT id FROM members WHERE union_id = $1)",
        ids["depot"],
    )
    assert (joined, events) == (count, count)
