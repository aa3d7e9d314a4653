"""Every collection can be listed and searched a page at a time, as staff and departments ask:
plans, enrolments and their cover, contributions, claims, backstop requests, the journal. What
Postgres could not hold (NUL, integers beyond 64 bits, dates that are not ISO, amounts beyond the
fund's range) is a 4xx naming the field, and changes nothing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.mutual_aid.harness import (
    YEAR,
    MutualAid,
    clock_at,
    eventually,
    joined,
    mutual_aid,
    rules,
    scene,
    table_counts,
)
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

LISTS = (
    "/plans",
    "/enrolments",
    "/contributions",
    "/claims",
    "/backstop/requests",
    "/fund/journal",
)
TODAY = date(YEAR, 6, 20)


def reader(service: MutualAid, path: str) -> httpx.AsyncClient:
    """Finance reads backstop requests; the federation's office reads the rest."""
    return service.finance if path.startswith("/backstop") else service.office


async def found(service: MutualAid, path: str, key: str, **query: Any) -> list[str]:
    answer = await reader(service, path).get(path, params=query)
    assert answer.status_code == 200, (path, query, answer.text)
    return [item[key] for item in answer.json()]


async def setting(service: MutualAid) -> dict[str, Any]:
    """Two units; four claims of unit-saga: paid, awaiting funds (asked of finance), rejected,
    under review."""
    enrolment_id, claims = await scene(service, 4, 1_000)  # benefits 5.01, 10.01, 15.02, 20.02
    await service.feed(joined("m-x"))
    other = await service.enrol("unit-2", ["m-x"])
    await service.contribute(other["enrolment_id"], 500, "R-U2-1")
    for claim_id in claims[:2]:
        answer = await service.office.post(f"/claims/{claim_id}/approve", json={"officer": "o"})
        assert answer.status_code == 200, answer.text
    await service.settled()
    service.clock.advance(timedelta(minutes=11))
    service.app.state.payouts.wake()
    [request] = await eventually(service.requests)
    rejected = await service.office.post(
        f"/claims/{claims[2]}/reject",
        json={"officer": "o", "reason_code": "DOCUMENTS_INVALID", "reason_text": "unstamped"},
    )
    assert rejected.status_code == 200, rejected.text
    return {
        "enrolment": enrolment_id,
        "other": other["enrolment_id"],
        "claims": claims,
        "request": request["request_id"],
    }


async def test_every_collection_can_be_listed_and_searched_a_page_at_a_time(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    async with mutual_aid(servers, fund_database, namespace, clock_at(TODAY)) as service:
        s = await setting(service)
        paid, awaiting, rejected, review = s["claims"]

        # Plans: by year and status.
        assert await found(service, "/plans", "plan_id", status="published") == [f"plan-{YEAR}-v1"]
        assert await found(service, "/plans", "plan_id", status="draft") == []
        assert await found(service, "/plans", "plan_id", scheme_year=YEAR + 1) == []

        # Enrolments by unit, with their counts and money; the cover a page at a time.
        [saga] = (await service.office.get("/enrolments", params={"unit_id": "unit-saga"})).json()
        assert (saga["covered_count"], saga["expected_fen"], saga["received_fen"]) == (
            4,
            4 * 12_000,
            1_000,
        )
        assert saga["arrears_fen"] == 47_000 and saga["arrears_yuan"] == "470.00"
        # By year, then unit: "unit-2" before "unit-saga".
        assert await found(service, "/enrolments", "enrolment_id", limit=1) == [s["other"]]
        assert await found(service, "/enrolments", "enrolment_id", limit=1, offset=1) == [
            s["enrolment"]
        ]
        cover = f"/enrolments/{s['enrolment']}/coverages"
        assert await found(service, cover, "member_id", limit=2, offset=1) == ["m-001", "m-002"]
        assert await found(service, cover, "member_id", covered_on=f"{YEAR - 1}-12-31") == []
        missing = await service.office.get("/enrolments/EN-1999-00001/coverages")
        assert (missing.status_code, missing.json()["errors"][0]["code"]) == (
            404,
            "unknown_enrolment",
        )

        # Contributions across enrolments: by receipt, unit, year and day received.
        assert await found(service, "/contributions", "unit_id", receipt_number="R-SAGA-1") == [
            "unit-saga"
        ]
        assert await found(service, "/contributions", "receipt_number", unit_id="unit-2") == [
            "R-U2-1"
        ]
        day = TODAY.isoformat()
        assert len(await found(service, "/contributions", "receipt_number", since=day)) == 2
        assert await found(service, "/contributions", "receipt_number", until="2025-01-01") == []

        # Claims: by member, state, plan, year and day submitted; pages slice the same order.
        everything = await found(service, "/claims", "claim_id")
        assert everything == s["claims"]
        assert await found(service, "/claims", "claim_id", member_id="m-000") == [paid]
        assert await found(service, "/claims", "claim_id", state="awaiting_funds") == [awaiting]
        assert await found(service, "/claims", "claim_id", state="rejected") == [rejected]
        assert await found(service, "/claims", "claim_id", plan_id=f"plan-{YEAR}-v1") == everything
        assert await found(service, "/claims", "claim_id", scheme_year=YEAR - 1) == []
        assert await found(service, "/claims", "claim_id", since=day, until=day) == everything
        assert await found(service, "/claims", "claim_id", until="2025-06-19") == []
        assert await found(service, "/claims", "claim_id", limit=2, offset=1) == everything[1:3]

        # A unit's own credential sees only its unit, whatever it asks for.
        unit = await service.client("claims:read", "enrolment:read", organisations=["unit-2"])
        assert (await unit.get("/claims")).json() == []
        assert [e["unit_id"] for e in (await unit.get("/enrolments")).json()] == ["unit-2"]
        assert (await unit.get("/contributions", params={"unit_id": "unit-saga"})).json() == []
        refused = await unit.get(cover)
        assert (refused.status_code, refused.json()["errors"][0]["code"]) == (
            403,
            "organisation_not_allowed",
        )

        # Backstop requests by claim and status; the journal by kind, reference and day.
        requests = "/backstop/requests"
        assert await found(service, requests, "request_id", claim_id=awaiting) == [s["request"]]
        assert await found(service, requests, "request_id", claim_id=paid) == []
        assert await found(service, requests, "request_id", status="open") == [s["request"]]
        kinds = await found(service, "/fund/journal", "kind")
        assert sorted(kinds) == sorted(
            ["contribution", "contribution", "benefit_approved", "benefit_approved", "payout"]
        )
        assert await found(service, "/fund/journal", "reference", reference="R-SAGA-1") == [
            "R-SAGA-1"
        ]
        assert await found(service, "/fund/journal", "kind", kind="payout") == ["payout"]
        assert await found(service, "/fund/journal", "seq", since=f"{YEAR + 1}-01-01") == []

        # Reports answer their typed bodies.
        [position] = (await service.office.get("/reports/fund-position")).json()
        assert position["date"] == day and position["moved"]["contributions_income_fen"] == 1_500
        claims_report = (await service.office.get("/reports/claims")).json()
        assert claims_report["by_unit"]["unit-saga"] == {
            "paid": 1,
            "awaiting_funds": 1,
            "rejected": 1,
            "under_review": 1,
        }
        paid_report = (await service.office.get("/reports/benefits-paid")).json()
        assert (paid_report["payments"], paid_report["paid_fen"]) == (1, 501)
        [year] = (await service.office.get("/reports/backstop")).json()
        # The fund held 15.00, paid 5.01 and asks for what the 10.01 claim still lacks.
        assert year["outstanding_fen"] == year["requested_fen"] == 1_001 - (1_500 - 501)
        arrears = (await service.office.get("/reports/arrears")).json()
        assert {a["unit_id"]: a["arrears_fen"] for a in arrears} == {
            "unit-saga": 47_000,
            "unit-2": 11_500,
        }
        assert review in everything


async def test_what_postgres_could_not_hold_is_a_4xx_naming_the_field(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    async with mutual_aid(servers, fund_database, namespace, clock_at(TODAY)) as service:
        s = await setting(service)
        office, review = service.office, s["claims"][3]
        good_claim = {
            "member_id": "m-003",
            "unit_id": "unit-saga",
            "admission_date": f"{YEAR}-06-03",
            "discharge_date": f"{YEAR}-06-10",
            "hospital": "亳州市人民医院",
            "invoice_numbers": ["INV-NEW"],
            "total_expense_fen": 100,
            "paid_by_basic_insurance_fen": 0,
            "self_paid_in_catalogue_fen": 100,
            "self_paid_outside_catalogue_fen": 0,
            "submitted_by": {"kind": "unit", "id": "unit-saga"},
        }
        plan = {"scheme_year": YEAR + 1, "contribution_per_member_fen": 1, "rules": rules()}
        grant = f"/backstop/requests/{s['request']}/grants"
        before = await table_counts(service.pool)

        for path in LISTS:
            for offset in ("99999999999999999999", "10000000000000000000000000", "-1"):
                answer = await reader(service, path).get(f"{path}?offset={offset}")
                assert answer.status_code == 422, (path, answer.text)
                assert [e["field"] for e in answer.json()["errors"]] == ["offset"], path
        queries: list[tuple[str, int, str, str]] = [
            ("/claims?member_id=a%00b", 400, "member_id", "control_character"),
            ("/claims?unit_id=a%0Ab", 400, "unit_id", "control_character"),
            ("/claims/CL-1%00", 400, "claim_id", "control_character"),
            ("/claims?limit=100000", 422, "limit", "less_than_equal"),
            ("/claims?since=2025-07-02&until=2025-07-01", 422, "until", "before_since"),
            ("/fund/journal?since=-1.705e-11", 422, "since", "iso_format"),
            (
                "/reports/fund-position?since=-1.705e-11&until=0667-06-02",
                422,
                "since",
                "iso_format",
            ),
            ("/reports/fund-position?until=0667-06-02", 422, "until", "out_of_range"),
            (
                "/contributions?scheme_year=99999999999999999999",
                422,
                "scheme_year",
                "less_than_equal",
            ),
            ("/backstop/requests?status=lost", 422, "status", "enum"),
        ]
        for target, status, field, code in queries:
            answer = await reader(service, target).get(target)
            assert answer.status_code == status, (target, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert (field, code) in [(e["field"], e["code"]) for e in answer.json()["errors"]], (
                target,
                answer.text,
            )

        bodies: list[tuple[str, dict[str, Any], str, str]] = [
            ("/claims", good_claim | {"member_id": "a\x00b"}, "member_id", "nul_character"),
            ("/claims", good_claim | {"hospital": "医院\x00"}, "hospital", "nul_character"),
            (
                "/claims",
                good_claim | {"total_expense_fen": 2**64},
                "total_expense_fen",
                "integer_out_of_range",
            ),
            (
                "/claims",
                good_claim | {"total_expense_fen": 10**12},
                "total_expense_fen",
                "less_than_equal",
            ),
            (
                "/claims",
                good_claim | {"admission_date": "0667-06-02"},
                "admission_date",
                "out_of_range",
            ),
            (
                "/enrolments",
                {"unit_id": "u-9", "scheme_year": YEAR, "staff": ["m\x00"]},
                "staff[0]",
                "nul_character",
            ),
            (
                "/plans",
                plan | {"contribution_per_member_fen": 9223372036854775808},
                "contribution_per_member_fen",
                "integer_out_of_range",
            ),
            (
                "/plans",
                plan | {"rules": rules(deductible_fen=10**15)},
                "rules.deductible_fen",
                "less_than_equal",
            ),
            (
                "/plans",
                plan
                | {"rules": rules(bands=[{"lower_fen": 0, "upper_fen": None, "ratio": "0.12345"}])},
                "rules.bands[0].ratio",
                "decimal_max_places",
            ),
            (
                "/plans",
                plan
                | {
                    "rules": rules(
                        bands=[{"lower_fen": 0, "upper_fen": None, "ratio": "1E-1000000"}]
                    )
                },
                "rules.bands[0].ratio",
                "decimal_max_digits",
            ),
            (
                f"/enrolments/{s['enrolment']}/contributions",
                {"receipt_number": "R-9", "amount_fen": 10**12, "payer": "x"},
                "amount_fen",
                "less_than_equal",
            ),
            (
                f"/claims/{review}/adjust",
                {"officer": "o", "amount_fen": 2**70, "reason": "x"},
                "amount_fen",
                "integer_out_of_range",
            ),
            (
                grant,
                {"amount_fen": 10**12, "reference": "CZ-9", "granted_on": f"{YEAR}-06-20"},
                "amount_fen",
                "less_than_equal",
            ),
            (
                grant,
                {"amount_fen": 1, "reference": "CZ-9", "granted_on": 1_750_000_000},
                "granted_on",
                "iso_format",
            ),
            (
                grant,
                {"amount_fen": 1, "reference": "CZ-9", "granted_on": f"{YEAR}-06-21"},
                "granted_on",
                "in_the_future",
            ),
        ]
        for path, body, field, code in bodies:
            client = service.finance if path == grant else office
            answer = await client.post(path, json=body)
            assert answer.status_code == 422, (path, body, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert (field, code) in [(e["field"], e["code"]) for e in answer.json()["errors"]], (
                path,
                answer.text,
            )
        assert await table_counts(service.pool) == before
