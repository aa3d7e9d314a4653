"""Union funds through the API: the tax bureau's remittance batches matched to unions by credit
code, the arrears and unorganised-employer reports, finance's subsidies, and refusals. Unions are
announced as membership's events, through the service's own handler (conftest)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.union_funds.conftest import UnionFunds
from tests.support.people import credit_code

pytestmark = pytest.mark.integration
# The names they were first published under, when union funds ran inside membership: unchanged.
MATCHED = "gonghui.membership.remittance.matched"
UNMATCHED = "gonghui.membership.remittance.unmatched"


SUBSIDY_GRANTED = "gonghui.union_funds.subsidy.granted"


async def department(m: UnionFunds, name: str, *scopes: str) -> httpx.AsyncClient:
    return await m.client(*scopes, department=name)


def employer_code() -> str:
    # Above the serials union_tree() uses (at most 16**6 x 10): an employer no union has.
    return credit_code(random.randrange(200_000_000, 999_999_999))


def remitted(code: str, period: str, **changes: Any) -> dict[str, Any]:
    return {
        "employer_credit_code": code,
        "employer_name": "亳州某有限公司",
        "period": period,
        "payroll_base_fen": 40_000_000,
        "amount_fen": 800_000,  # 2% of the base
        "paid_on": "2025-12-10",
    } | changes


async def counts(m: UnionFunds) -> tuple[int, int, int, int]:
    pool = m.app.state.runtime.pool
    return (
        await pool.fetchval("SELECT count(*) FROM remittance_batches"),
        await pool.fetchval("SELECT count(*) FROM remittances"),
        await pool.fetchval("SELECT count(*) FROM subsidies"),
        await pool.fetchval("SELECT count(*) FROM outbox"),
    )


async def events_about(m: UnionFunds, *codes: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = await m.app.state.runtime.pool.fetch(
        "SELECT type, key, payload FROM outbox WHERE key = ANY($1) ORDER BY id", list(codes)
    )
    return [(r["type"], r["key"], orjson.loads(r["payload"])) for r in rows]


async def test_a_tax_batch_is_matched_by_credit_code_and_recorded_once(
    union_funds: UnionFunds,
) -> None:
    ids = await union_funds.union_tree()
    factory, depot = (
        await union_funds.code_of(ids["factory"]),
        await union_funds.code_of(ids["depot"]),
    )
    stranger = employer_code()
    batch = {
        "batch_id": f"tax-{ids['city']}",
        "records": [
            remitted(factory, "2025-10"),
            remitted(stranger, "2025-10", employer_name="亳州未建会有限公司"),
            remitted(factory, "2025-10"),  # sent twice in one batch: counted once
            remitted(factory[:-1] + ("0" if factory[-1] != "0" else "1"), "2025-10"),
            remitted(depot, "2025Q3", amount_fen=400_000, record_id="Q3-77"),  # 1%, not 2%
            remitted(depot, "2025-11", paid_on="2099-01-01", amount_fen=1.5),
        ],
    }
    async with await department(union_funds, "tax", "remittances:submit") as tax:
        first = await tax.post("/remittances/batches", json=batch)
        assert first.status_code == 201, first.text
        answer = first.json()
        assert [r["outcome"] for r in answer["records"]] == [
            "matched",
            "unmatched",
            "duplicate",
            "rejected",
            "matched",
            "rejected",
        ]
        assert answer["records"][0]["union_id"] == ids["factory"]
        assert answer["records"][4]["union_id"] == ids["depot"]
        assert answer["records"][1]["union_id"] is None
        assert answer["records"][2]["remittance_id"] == answer["records"][0]["remittance_id"]
        assert (answer["recorded"], answer["matched"], answer["unmatched"]) == (3, 2, 1)
        assert [(e["index"], e["field"]) for e in answer["errors"]] == [
            (3, "employer_credit_code"),
            (5, "amount_fen"),
            (5, "paid_on"),
        ]
        # Flagged, still recorded: the bureau has collected it, the federation reconciles.
        assert answer["records"][4]["rate"] == {"expected_fen": 800_000, "deviation_fen": -400_000}
        assert answer["off_rate"] == 1 and answer["records"][0]["rate"] is None

        events = await events_about(union_funds, factory, depot, stranger)
        assert [(t, k) for t, k, _ in events] == [
            (MATCHED, factory),
            (UNMATCHED, stranger),
            (MATCHED, depot),
        ]
        assert events[0][2] == {
            "credit_code": factory,
            "union_id": ids["factory"],
            "period": "2025-10",
            "amount_fen": 800_000,
        }
        assert events[1][2] == {
            "credit_code": stranger,
            "employer_name": "亳州未建会有限公司",
            "period": "2025-10",
            "amount_fen": 800_000,
        }

        before = await counts(union_funds)
        again = await tax.post("/remittances/batches", json=batch)
        assert again.status_code == 200 and again.json() == answer
        other = await tax.post(
            "/remittances/batches", json=batch | {"records": batch["records"][:2]}
        )
        assert other.status_code == 409 and other.json()["errors"][0]["field"] == "batch_id"
        assert await counts(union_funds) == before

        # An overlapping batch: the October record again, the Q3 record corrected, November new.
        overlap = await tax.post(
            "/remittances/batches",
            json={
                "batch_id": f"tax-{ids['city']}-2",
                "records": [
                    remitted(factory, "2025-10"),
                    remitted(depot, "2025Q3", amount_fen=800_000, record_id="Q3-77"),
                    remitted(factory, "2025-11", paid_on="2025-12-11"),
                ],
            },
        )
        assert overlap.status_code == 201, overlap.text
        assert [r["outcome"] for r in overlap.json()["records"]] == [
            "duplicate",
            "rejected",
            "matched",
        ]
        assert overlap.json()["errors"][0]["field"] == "record_id"
    listed = await union_funds.staff.get("/remittances", params={"union_id": ids["factory"]})
    assert [(r["period"], r["amount_fen"]) for r in listed.json()["items"]] == [
        ("2025-10", 800_000),
        ("2025-11", 800_000),
    ]
    q3 = await union_funds.staff.get(
        "/remittances", params={"union_id": ids["depot"], "period": "2025-08"}
    )
    assert [(r["period"], r["amount_fen"], r["deviation_fen"]) for r in q3.json()["items"]] == [
        ("2025Q3", 400_000, -400_000)  # the first figures stand; the correction was refused
    ]
    assert len(await events_about(union_funds, factory, depot, stranger)) == 4


async def test_the_same_batch_sent_twice_at_once_is_recorded_once(union_funds: UnionFunds) -> None:
    ids = await union_funds.union_tree()
    factory = await union_funds.code_of(ids["factory"])
    batch = {
        "batch_id": f"tax-race-{ids['city']}",
        "records": [remitted(factory, p) for p in ("2025-07", "2025-08", "2025-09")],
    }
    async with await department(union_funds, "tax", "remittances:submit") as tax:
        answers = await asyncio.gather(
            *(tax.post("/remittances/batches", json=batch) for _ in "ab")
        )
    assert sorted(a.status_code for a in answers) == [200, 201]
    assert answers[0].json() == answers[1].json()
    assert len(await events_about(union_funds, factory)) == 3
    pool = union_funds.app.state.runtime.pool
    assert (
        await pool.fetchval("SELECT count(*) FROM remittances WHERE credit_code = $1", factory) == 3
    )


async def test_arrears_and_unorganised_employers_for_a_period(union_funds: UnionFunds) -> None:
    ids = await union_funds.union_tree()
    staff = union_funds.staff
    county = ids["county"]
    mill_code, late_code, closed_code = employer_code(), employer_code(), employer_code()
    mill = await union_funds.establish(county, "enterprise", "2020-01-01", mill_code)
    late = await union_funds.establish(county, "enterprise", "2025-11-20", late_code)
    closed = await union_funds.establish(county, "enterprise", "2020-01-01", closed_code)
    await union_funds.dissolve(closed, "2025-09-30")
    factory, depot = (
        await union_funds.code_of(ids["factory"]),
        await union_funds.code_of(ids["depot"]),
    )
    stranger = employer_code()
    async with await department(union_funds, "tax", "remittances:submit") as tax:
        sent = await tax.post(
            "/remittances/batches",
            json={
                "batch_id": f"tax-arrears-{ids['city']}",
                "records": [
                    remitted(factory, "2025Q4", payroll_base_fen=120_000_000, amount_fen=2_400_000),
                    remitted(depot, "2025-10"),
                    remitted(stranger, "2025-11", employer_name="亳州新开物流有限公司"),
                    remitted(stranger, "2025-10", employer_name="亳州新开物流有限公司"),
                    remitted(closed_code, "2025-10"),  # its union is dissolved: unorganised
                ],
            },
        )
        assert sent.status_code == 201, sent.text
        assert [r["outcome"] for r in sent.json()["records"]] == [
            "matched",
            "matched",
            "unmatched",
            "unmatched",
            "unmatched",
        ]

    async def arrears(period: str, under: str) -> dict[str, list[str]]:
        answer = await staff.get("/remittances/arrears", params={"period": period, "under": under})
        assert answer.status_code == 200, answer.text
        return {i["union_id"]: i["missing_months"] for i in answer.json()["items"]}

    # October: the factory's quarterly remittance covers it; the late union did not exist yet.
    assert await arrears("2025-10", ids["city"]) == {mill: ["2025-10"]}
    assert await arrears("2025Q4", county) == {
        ids["depot"]: ["2025-11", "2025-12"],
        mill: ["2025-10", "2025-11", "2025-12"],
        late: ["2025-11", "2025-12"],
    }
    assert await arrears("2025Q4", ids["factory"]) == {}
    assert await arrears("2025Q4", mill) == {mill: ["2025-10", "2025-11", "2025-12"]}

    async def unorganised(period: str) -> dict[str, dict[str, Any]]:
        answer = await staff.get("/remittances/unorganised", params={"period": period})
        assert answer.status_code == 200, answer.text
        return {i["credit_code"]: i for i in answer.json()["items"]}

    october = await unorganised("2025-10")
    assert {factory, depot} & october.keys() == set()
    assert october[stranger]["amount_fen"] == 800_000
    assert october[stranger]["employer_name"] == "亳州新开物流有限公司"
    assert october[closed_code]["periods"] == ["2025-10"]
    quarter = (await unorganised("2025Q4"))[stranger]
    assert (quarter["records"], quarter["amount_fen"], quarter["periods"]) == (
        2,
        1_600_000,
        ["2025-10", "2025-11"],
    )

    # Organised since: off the list, and its earlier remittances are found under its union.
    organised = await union_funds.establish(county, "enterprise", "2025-12-01", stranger)
    assert stranger not in await unorganised("2025Q4")
    listed = await staff.get("/remittances", params={"union_id": organised, "period": "2025Q4"})
    items = listed.json()["items"]
    assert [(r["period"], r["matched_union_id"]) for r in items] == [
        ("2025-10", None),
        ("2025-11", None),
    ]
    by_code = await staff.get("/remittances", params={"credit_code": stranger.lower()})
    assert [r["id"] for r in by_code.json()["items"]] == [r["id"] for r in items]

    bad = await staff.get("/remittances/arrears", params={"period": "2025-13"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "period"
    missing = await staff.get(
        "/remittances/arrears", params={"period": "2025-10", "under": "no-such"}
    )
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "under"


async def test_finance_subsidies_are_recorded_once_and_totalled_per_unit_and_year(
    union_funds: UnionFunds,
) -> None:
    ids = await union_funds.union_tree()
    school = await union_funds.establish(
        ids["county"], "public_institution", "2010-09-01", employer_code()
    )
    hospital = await union_funds.establish(
        ids["city"], "public_institution", "2012-01-01", employer_code()
    )
    tag = ids["city"]

    def grant(ref: str, union: str, period: str, amount: int, members: int) -> dict[str, Any]:
        return {
            "reference": f"{ref}-{tag}",
            "union_id": union,
            "period": period,
            "amount_fen": amount,
            "members_covered": members,
        }

    grants = [
        grant("A", school, "2025Q1", 300_000, 100),
        grant("B", school, "2025Q2", 300_000, 120),
        grant("C", school, "2025Q2", 50_000, 10),  # a second grant for other members in Q2
        grant("D", school, "2024", 1_000_000, 90),
        grant("E", hospital, "2025", 800_000, 300),
    ]
    async with await department(union_funds, "finance", "subsidies:write") as finance:
        for body in grants:
            answer = await finance.post("/subsidies", json=body)
            assert answer.status_code == 201, answer.text
            assert answer.json()["year"] == int(body["period"][:4])
        granted = await events_about(union_funds, school, hospital)
        assert [(t, k) for t, k, _ in granted] == [(SUBSIDY_GRANTED, school)] * 4 + [
            (SUBSIDY_GRANTED, hospital)
        ]
        assert granted[0][2] == {
            "reference": f"A-{tag}",
            "union_id": school,
            "period": "2025Q1",
            "amount_fen": 300_000,
            "members_covered": 100,
        }
        before = await counts(union_funds)
        again = await finance.post("/subsidies", json=grants[0])
        assert again.status_code == 200 and again.json()["amount_fen"] == 300_000
        changed = await finance.post("/subsidies", json=grants[0] | {"amount_fen": 300_001})
        assert changed.status_code == 409 and changed.json()["errors"][0]["field"] == "reference"
        unknown = await finance.post("/subsidies", json=grant("F", "no-such-union", "2025", 1, 1))
        assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "union_id"
        bad = await finance.post("/subsidies", json=grant("G", school, "2025-13", 1, 1))
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "period"
        early = await finance.post("/subsidies", json=grant("H", school, "2009", 1, 1))
        assert early.status_code == 422 and early.json()["errors"][0]["field"] == "period"
        assert await counts(union_funds) == before

    async def totals(**params: Any) -> list[tuple[str, int, int, int, int]]:
        answer = await union_funds.staff.get("/subsidies/totals", params=params)
        assert answer.status_code == 200, answer.text
        return [
            (i["union_id"], i["year"], i["amount_fen"], i["members_covered"], i["count"])
            for i in answer.json()["items"]
        ]

    # Members covered: Q2's two grants add up (130); Q1 and Q2 are the same people, so the
    # year's figure is the larger period's, not 230.
    assert sorted(await totals(year=2025, under=tag)) == sorted(
        [(school, 2025, 650_000, 130, 3), (hospital, 2025, 800_000, 300, 1)]
    )
    assert await totals(under=ids["county"]) == [
        (school, 2024, 1_000_000, 90, 1),
        (school, 2025, 650_000, 130, 3),
    ]
    assert await totals(year=2025, under=hospital) == [(hospital, 2025, 800_000, 300, 1)]
    missing = await union_funds.staff.get("/subsidies/totals", params={"under": "no-such"})
    assert missing.status_code == 404


async def test_refused_calls_change_nothing(union_funds: UnionFunds) -> None:
    ids = await union_funds.union_tree()
    factory = await union_funds.code_of(ids["factory"])
    batch = {"batch_id": f"refused-{ids['city']}", "records": [remitted(factory, "2025-10")]}
    subsidy = {
        "reference": f"refused-{ids['city']}",
        "union_id": ids["factory"],
        "period": "2025",
        "amount_fen": 100_000,
        "members_covered": 10,
    }
    before = await counts(union_funds)
    # The federation's own tool holding the scope is still not the tax bureau.
    async with await department(union_funds, "federation", "remittances:submit") as tool:
        refused = await tool.post("/remittances/batches", json=batch)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["field"] == "department"
    async with await department(union_funds, "finance", "remittances:submit") as finance:
        refused = await finance.post("/remittances/batches", json=batch)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["field"] == "department"
    async with await department(union_funds, "tax", "reports:read", "subsidies:write") as tax:
        refused = await tax.post("/remittances/batches", json=batch)
        assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "scope"
        refused = await tax.post("/subsidies", json=subsidy)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["field"] == "department"
    async with await department(union_funds, "finance", "reports:read") as finance:
        refused = await finance.post("/subsidies", json=subsidy)
        assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "scope"
    async with await department(union_funds, "tax", "remittances:submit") as tax:
        empty = await tax.post("/remittances/batches", json=batch | {"records": []})
        assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "records"
        refused = await tax.get("/remittances/arrears", params={"period": "2025-10"})
        assert refused.status_code == 403
    transport = httpx.ASGITransport(app=union_funds.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as anyone:
        unsigned = await anyone.post("/remittances/batches", json=batch)
        assert unsigned.status_code == 401
    assert await counts(union_funds) == before
    assert await events_about(union_funds, factory) == []


async def test_a_credential_limited_to_a_union_sees_only_its_subtree(
    union_funds: UnionFunds,
) -> None:
    ids = await union_funds.union_tree()
    async with await union_funds.client("reports:read", organisations=[ids["factory"]]) as union:
        own = await union.get(
            "/remittances/arrears", params={"period": "2025-10", "under": ids["factory"]}
        )
        assert own.status_code == 200 and own.json()["unions_checked"] == 1
        for path, params in [
            ("/remittances/arrears", {"period": "2025-10"}),
            ("/remittances/arrears", {"period": "2025-10", "under": ids["county"]}),
            ("/remittances/unorganised", {"period": "2025-10"}),
            ("/remittances", {"union_id": ids["depot"]}),
            ("/subsidies/totals", {"under": ids["city"]}),
        ]:
            refused = await union.get(path, params=params)
            assert refused.status_code == 403, (path, params)


async def test_control_characters_and_far_periods_are_4xx_naming_the_field(
    union_funds: UnionFunds,
) -> None:
    nul = await union_funds.staff.get("/remittances?union_id=a%00b")
    assert nul.status_code == 400, nul.text
    assert nul.headers["content-type"] == "application/problem+json"
    assert (nul.json()["errors"][0]["field"], nul.json()["errors"][0]["code"]) == (
        "union_id",
        "control_character",
    )
    far = await union_funds.staff.get("/remittances/arrears", params={"period": "9999-12"})
    assert far.status_code == 422, far.text
    assert (far.json()["errors"][0]["field"], far.json()["errors"][0]["code"]) == (
        "period",
        "year_out_of_range",
    )
