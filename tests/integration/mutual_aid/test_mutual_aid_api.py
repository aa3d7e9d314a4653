"""The API's edges: bad input is a 4xx problem naming the field and changes nothing; every
endpoint needs a signed request holding the scope declared beside it."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.integration.mutual_aid.harness import (
    YEAR,
    claim_body,
    clock_at,
    eventually,
    joined,
    mutual_aid,
    rules,
    table_counts,
)
from tests.support.auth import WEBHOOK_ROUTES
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

SCOPES = {
    ("POST", "/plans"): "plans:write",
    ("POST", "/plans/{plan_id}/publish"): "plans:write",
    ("GET", "/plans"): "plans:read",
    ("GET", "/plans/{plan_id}"): "plans:read",
    ("POST", "/enrolments"): "enrolment:write",
    ("POST", "/enrolments/{enrolment_id}/staff"): "enrolment:write",
    ("GET", "/enrolments"): "enrolment:read",
    ("GET", "/enrolments/{enrolment_id}"): "enrolment:read",
    ("GET", "/enrolments/{enrolment_id}/coverages"): "enrolment:read",
    ("GET", "/contributions"): "enrolment:read",
    ("GET", "/members/{member_id}/coverage"): "enrolment:read",
    ("POST", "/enrolments/{enrolment_id}/contributions"): "contributions:write",
    ("POST", "/claims"): "claims:submit",
    ("POST", "/claims/{claim_id}/resubmit"): "claims:submit",
    ("GET", "/claims"): "claims:read",
    ("GET", "/claims/{claim_id}"): "claims:read",
    ("POST", "/claims/{claim_id}/approve"): "claims:review",
    ("POST", "/claims/{claim_id}/adjust"): "claims:review",
    ("POST", "/claims/{claim_id}/reject"): "claims:review",
    ("POST", "/claims/{claim_id}/return"): "claims:review",
    ("GET", "/fund"): "reports:read",
    ("GET", "/fund/journal"): "reports:read",
    ("GET", "/backstop/requests"): "backstop:read",
    ("GET", "/backstop/requests/{request_id}"): "backstop:read",
    ("POST", "/backstop/requests/{request_id}/grants"): "backstop:grant",
    ("GET", "/reports/fund-position"): "reports:read",
    ("GET", "/reports/claims"): "reports:read",
    ("GET", "/reports/benefits-paid"): "reports:read",
    ("GET", "/reports/backstop"): "reports:read",
    ("GET", "/reports/arrears"): "reports:read",
    # Department systems subscribe here, e.g. finance to backstop requests.
    **WEBHOOK_ROUTES,
}
OPS = {"/healthz", "/readyz"}


async def test_bad_input_is_a_4xx_naming_the_field_and_changes_nothing(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    clock = clock_at(date(YEAR, 6, 20))
    async with mutual_aid(servers, fund_database, namespace, clock) as service:
        await service.publish_plan()
        await service.feed(joined("m-1"))
        enrolment = await service.enrol("unit-1", ["m-1"])
        enrolment_id = enrolment["enrolment_id"]
        await service.contribute(enrolment_id, 1_000_000, "R-1")
        review = await service.submit(claim_body("m-1", "unit-1", invoice="INV-A"))
        paid = await service.submit(claim_body("m-1", "unit-1", invoice="INV-B"))
        await service.office.post(f"/claims/{paid['claim_id']}/approve", json={"officer": "o"})
        await eventually(lambda: _is_paid(service, paid["claim_id"]))
        draft = await service.office.post(
            "/plans",
            json={
                "scheme_year": YEAR + 1,
                "contribution_per_member_fen": 0,
                "rules": rules(
                    bands=[{"lower_fen": 100, "upper_fen": 50, "ratio": "0.5"}],
                    per_claim_ceiling_fen=9_000_000,
                ),
            },
        )
        assert draft.status_code == 201  # a draft may be incomplete; publishing checks it
        good = claim_body("m-1", "unit-1", invoice="INV-C")
        claims, office = "/claims", service.office

        before = await table_counts(service.pool)
        cases: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
            ("POST", claims, good | {"total_expense_fen": -1}, 422, "total_expense_fen"),
            (
                "POST",
                claims,
                good | {"self_paid_in_catalogue_fen": 12.5},
                422,
                "self_paid_in_catalogue_fen",
            ),
            (
                "POST",
                claims,
                good | {"paid_by_basic_insurance_fen": "100"},
                422,
                "paid_by_basic_insurance_fen",
            ),
            ("POST", claims, good | {"discharge_date": f"{YEAR}-06-01"}, 422, "discharge_date"),
            ("POST", claims, good | {"discharge_date": f"{YEAR}-06-21"}, 422, "discharge_date"),
            ("POST", claims, good | {"member_id": "m-nobody"}, 422, "member_id"),
            ("POST", claims, good | {"diagnosis_code": "appendix"}, 422, "diagnosis_code"),
            ("POST", claims, good | {"invoice_numbers": ["A-1", "a-1"]}, 422, "invoice_numbers"),
            ("POST", claims, {k: v for k, v in good.items() if k != "hospital"}, 422, "hospital"),
            (
                "POST",
                f"/enrolments/{enrolment_id}/contributions",
                {"receipt_number": "R-2", "amount_fen": -100, "payer": "x"},
                422,
                "amount_fen",
            ),
            (
                "POST",
                f"/enrolments/{enrolment_id}/contributions",
                {"receipt_number": "R-1", "amount_fen": 100, "payer": "x"},
                409,
                "receipt_number",
            ),
            (
                "POST",
                "/enrolments/EN-1999-00001/contributions",
                {"receipt_number": "R-3", "amount_fen": 100, "payer": "x"},
                404,
                "enrolment_id",
            ),
            (
                "POST",
                "/enrolments",
                {"unit_id": "unit-1", "scheme_year": YEAR, "staff": ["m-1"]},
                409,
                "unit_id",
            ),
            (
                "POST",
                "/enrolments",
                {"unit_id": "unit-2", "scheme_year": YEAR + 2, "staff": ["m-1"]},
                422,
                "scheme_year",
            ),
            (
                "POST",
                "/plans",
                {
                    "scheme_year": YEAR,
                    "contribution_per_member_fen": 1,
                    "rules": rules(deductible_fen=-1),
                },
                422,
                "rules.deductible_fen",
            ),
            (
                "POST",
                f"/plans/{draft.json()['plan_id']}/publish",
                None,
                422,
                "contribution_per_member_fen",
            ),
            (
                "POST",
                f"/claims/{review['claim_id']}/adjust",
                {"officer": "o", "amount_fen": 10**9, "reason": "x"},
                422,
                "amount_fen",
            ),
            (
                "POST",
                f"/claims/{review['claim_id']}/adjust",
                {"officer": "o", "amount_fen": -1, "reason": "x"},
                422,
                "amount_fen",
            ),
            (
                "POST",
                f"/claims/{review['claim_id']}/reject",
                {"officer": "o", "reason_code": "BECAUSE", "reason_text": "x"},
                422,
                "reason_code",
            ),
            ("POST", f"/claims/{paid['claim_id']}/approve", {"officer": "o"}, 409, "state"),
            ("POST", "/claims/CL-1999-000001/approve", {"officer": "o"}, 404, "claim_id"),
            ("GET", "/claims?state=lost", None, 422, "state"),
            ("GET", "/plans?scheme_year=1066", None, 422, "scheme_year"),
        ]
        for method, path, body, status, field in cases:
            answer = await office.request(method, path, json=body)
            assert (answer.status_code, answer.headers["content-type"]) == (
                status,
                "application/problem+json",
            ), (path, body, answer.text)
            assert field in [e["field"] for e in answer.json()["errors"]], (path, answer.text)
        assert await table_counts(service.pool) == before

        # Publishing names every problem at once, each as the API spells the field, each with
        # a code of its own.
        published = await office.post(f"/plans/{draft.json()['plan_id']}/publish")
        assert {(e["field"], e["code"]) for e in published.json()["errors"]} == {
            ("contribution_per_member_fen", "must_be_positive"),
            ("rules.bands[0].lower_fen", "first_band_not_at_zero"),
            ("rules.bands[0].upper_fen", "top_band_not_open"),
            ("rules.bands[0].upper_fen", "band_not_increasing"),
            ("rules.per_claim_ceiling_fen", "above_yearly_ceiling"),
        }
        assert all(e["message"] for e in published.json()["errors"])
        shown = (await office.get(f"/plans/{draft.json()['plan_id']}")).json()
        assert shown["status"] == "draft"


async def test_every_endpoint_needs_a_signed_request_with_its_declared_scope(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    async with mutual_aid(servers, fund_database, namespace, clock_at(date(YEAR, 6, 20))) as s:
        openapi = (await s.anonymous.get("/openapi.json")).json()
        operations = {
            (method.upper(), path)
            for path, item in openapi["paths"].items()
            if path not in OPS
            for method in item
        }
        assert operations == set(SCOPES)  # a new endpoint must be added here with its scope
        unrelated = await s.client("notes:read", department="finance")
        for (method, path), scope in SCOPES.items():
            operation = openapi["paths"][path][method.lower()]
            assert operation["security"] == [{"GonghuiSignature": [scope]}], path
            url = path.replace("{", "x-").replace("}", "")
            unsigned = await s.anonymous.request(method, url, json={})
            assert unsigned.status_code == 401, (path, unsigned.text)
            refused = await unrelated.request(method, url, json={})
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["errors"] == [
                {
                    "field": "scope",
                    "code": "missing_scope",
                    "message": f"this credential lacks the scope {scope!r}",
                }
            ]
            holder = await s.client(scope, department="finance")
            admitted = await holder.request(method, url, json={})
            assert admitted.status_code not in (401, 403) and admitted.status_code < 500, (
                path,
                admitted.text,
            )


async def _is_paid(service, claim_id: str) -> bool:
    return (await service.claim(claim_id))["state"] == "paid"
