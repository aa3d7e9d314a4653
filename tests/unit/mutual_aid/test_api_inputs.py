"""What the mutual-aid API accepts: every body a shared Command, every integer within 64 bits,
every date ISO, amounts and ratios bounded, and errors named as the client sent the field.
No servers: the models and the routes' declared parameters are checked directly."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from annotated_types import Ge, Le
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.mutual_aid import api, api_claims, api_ledger, api_reports
from services.mutual_aid import commands as c
from services.mutual_aid.api_common import Days, IdFilter, PageLimit, PageOffset
from services.mutual_aid.commands import MAX_FEN, api_fields
from services.mutual_aid.errors import PlanInvalid, PlanProblem
from services.mutual_aid.intake import Submitter
from shared.errors import DomainError
from shared.http import create_app, router
from shared.inputs import INT64_MAX, INT64_MIN, Command, IsoDate

ROUTES = [
    r
    for m in (api, api_claims, api_ledger, api_reports)
    for r in m.router.routes
    if isinstance(r, APIRoute)
]
# The documented examples, which must themselves be valid.
CLAIM = c.CLAIM_EXAMPLE | {"submitted_by": {"kind": "unit", "id": "u-factory-7"}}
PLAN = {"scheme_year": 2026, "contribution_per_member_fen": 12_000, "rules": c.STANDARD_RULES}


def rules(**overrides: Any) -> dict[str, Any]:
    return c.STANDARD_RULES | overrides


def refusal(model: type[Command], body: dict[str, Any]) -> tuple[str, str]:
    """(field as shared.http names it, code) of the first error validating ``body``."""
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    first = refused.value.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    inner = (first.get("ctx") or {}).get("field")
    return (f"{where}.{inner}" if where and inner else where or inner or ""), first["type"]


def parameters(dependant: Dependant) -> list[Any]:
    found = list(dependant.query_params) + list(dependant.path_params)
    for sub in dependant.dependencies:
        found += parameters(sub)
    return found


def test_every_body_is_a_shared_command() -> None:
    bodies = [r.body_field.field_info.annotation for r in ROUTES if r.body_field is not None]
    assert len(bodies) == 11
    assert all(isinstance(b, type) and issubclass(b, Command) for b in bodies), bodies


def test_every_integer_in_a_path_or_query_fits_64_bits_and_every_date_is_iso() -> None:
    checked = 0
    for route in ROUTES:
        for p in parameters(route.dependant):
            annotation = p.field_info.annotation
            if annotation in (int, int | None):
                bounds = p.field_info.metadata
                low = [b.ge for b in bounds if isinstance(b, Ge)]
                high = [b.le for b in bounds if isinstance(b, Le)]
                assert low and high, (route.path, p.name)
                assert low[0] >= INT64_MIN and high[0] <= INT64_MAX, (route.path, p.name)
                checked += 1
            assert annotation not in (date, date | None), (route.path, p.name)
            if p.name in ("since", "until", "covered_on"):
                assert annotation == IsoDate | None, (route.path, p.name)
    assert checked >= 20


def test_every_list_is_paged_with_the_shared_offset_and_limit() -> None:
    lists = [r for r in ROUTES if "GET" in (r.methods or ()) and "list" in str(r.response_model)]
    paged = {
        r.path for r in lists if {"limit", "offset"} <= {p.name for p in parameters(r.dependant)}
    }
    reports = {"/reports/fund-position", "/reports/backstop", "/reports/arrears"}
    assert paged == {r.path for r in lists} - reports
    assert len(paged) == 7


def test_the_documented_examples_are_valid() -> None:
    c.SubmitClaim.model_validate(CLAIM)
    c.DraftPlan.model_validate(PLAN)


@pytest.mark.parametrize(
    ("model", "body", "field", "code"),
    [
        (c.SubmitClaim, CLAIM | {"member_id": "a\x00b"}, "member_id", "nul_character"),
        (
            c.SubmitClaim,
            CLAIM | {"invoice_numbers": ["ok", "x\x00"]},
            "invoice_numbers[1]",
            "nul_character",
        ),
        (
            c.EnrolUnit,
            {"unit_id": "u", "scheme_year": 2026, "staff": ["a\x00"]},
            "staff[0]",
            "nul_character",
        ),
        (
            c.SubmitClaim,
            CLAIM | {"total_expense_fen": 2**64},
            "total_expense_fen",
            "integer_out_of_range",
        ),
        (
            c.SubmitClaim,
            CLAIM | {"total_expense_fen": MAX_FEN + 1},
            "total_expense_fen",
            "less_than_equal",
        ),
        (c.SubmitClaim, CLAIM | {"total_expense_fen": 1e30}, "total_expense_fen", "int_type"),
        (c.SubmitClaim, CLAIM | {"total_expense_fen": 12.5}, "total_expense_fen", "int_type"),
        (c.SubmitClaim, CLAIM | {"total_expense_fen": "100"}, "total_expense_fen", "int_type"),
        (c.SubmitClaim, CLAIM | {"admission_date": "-1.705e-11"}, "admission_date", "iso_format"),
        (c.SubmitClaim, CLAIM | {"admission_date": "0667-06-02"}, "admission_date", "out_of_range"),
        (c.SubmitClaim, CLAIM | {"discharge_date": 1_700_000_000}, "discharge_date", "iso_format"),
        (c.SubmitClaim, CLAIM | {"diagnosis_code": "K" * 21}, "diagnosis_code", "string_too_long"),
        (c.SubmitClaim, CLAIM | {"surprise": 1}, "surprise", "extra_forbidden"),
        (
            c.RecordGrant,
            {"amount_fen": MAX_FEN + 1, "reference": "r", "granted_on": "2026-07-01"},
            "amount_fen",
            "less_than_equal",
        ),
        (
            c.RecordGrant,
            {"amount_fen": 1, "reference": "r", "granted_on": "2026-7-1"},
            "granted_on",
            "iso_format",
        ),
        (
            c.RecordContribution,
            {"receipt_number": "r", "amount_fen": 2**63, "payer": "p"},
            "amount_fen",
            "integer_out_of_range",
        ),
        (
            c.Adjust,
            {"officer": "o", "amount_fen": -1, "reason": "x"},
            "amount_fen",
            "greater_than_equal",
        ),
        (
            c.DraftPlan,
            PLAN | {"contribution_per_member_fen": 10**19},
            "contribution_per_member_fen",
            "integer_out_of_range",
        ),
        (
            c.DraftPlan,
            PLAN | {"effective_to": "2026-02-30"},
            "effective_to",
            "date_from_datetime_parsing",
        ),
    ],
)
def test_bodies_postgres_could_not_hold_are_refused_naming_the_field(
    model: type[Command], body: dict[str, Any], field: str, code: str
) -> None:
    assert refusal(model, body) == (field, code)


@pytest.mark.parametrize(
    ("ratio", "code"),
    [
        ("0.12345", "decimal_max_places"),
        ("1E-1000000", "decimal_max_digits"),
        ("NaN", "finite_number"),
        ("Infinity", "finite_number"),
        ("1.5", "less_than_equal"),
        ("-0.1", "greater_than_equal"),
        ("half", "decimal_parsing"),
    ],
)
def test_a_ratio_is_a_plain_decimal_of_at_most_four_places(ratio: str, code: str) -> None:
    bands = [{"lower_fen": 0, "upper_fen": None, "ratio": ratio}]
    body = PLAN | {"rules": rules(bands=bands)}
    assert refusal(c.DraftPlan, body) == ("rules.bands.0.ratio", code)


def test_a_ratio_of_four_places_is_kept_exactly() -> None:
    bands = [{"lower_fen": 0, "upper_fen": None, "ratio": "0.6250"}]
    plan = c.DraftPlan.model_validate(PLAN | {"rules": rules(bands=bands)})
    assert str(plan.rules.to_domain().bands[0].ratio) == "0.6250"


def test_domain_errors_name_the_field_as_the_client_sent_it() -> None:
    with pytest.raises(DomainError) as refused, api_fields():
        raise DomainError("amount", "above_computed", "must not be above 100.00")
    assert (refused.value.field, refused.value.code) == ("amount_fen", "above_computed")
    assert refused.value.message == "must not be above 100.00"
    assert str(refused.value) == "amount_fen: must not be above 100.00"


def test_an_unpublishable_plan_names_every_problem_with_its_own_code() -> None:
    problems = [
        PlanProblem("rules.bands[1].lower", "bands_not_contiguous", "must equal ..."),
        PlanProblem("contribution_per_member", "must_be_positive", "must be positive"),
    ]
    with pytest.raises(RequestValidationError) as refused, api_fields():
        raise PlanInvalid(problems)
    assert [(e["loc"], e["type"]) for e in refused.value.errors()] == [
        (("body", "rules.bands[1].lower_fen"), "bands_not_contiguous"),
        (("body", "contribution_per_member_fen"), "must_be_positive"),
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"discharge_date": "2026-06-01"}, "corrected.discharge_date", "before_admission"),
        ({"invoice_numbers": ["A-1", "a-1"]}, "corrected.invoice_numbers", "duplicate_invoice"),
        ({"diagnosis_code": "appendix"}, "corrected.diagnosis_code", "not_icd10"),
        ({"self_paid_in_catalogue_fen": 0}, None, None),
    ],
)
def test_intake_rules_answer_with_a_code_each(
    overrides: dict[str, Any], field: str | None, code: str | None
) -> None:
    claim = c.ClaimIn.model_validate(c.CLAIM_EXAMPLE | overrides)
    submitter = Submitter(kind="unit", id="unit-1")
    if code is None:
        claim.to_intake(submitter, date(2026, 6, 20), prefix=("corrected",))
        return
    with pytest.raises(RequestValidationError) as refused:
        claim.to_intake(submitter, date(2026, 6, 20), prefix=("corrected",))
    [error] = refused.value.errors()
    assert (".".join(map(str, error["loc"][1:])), error["type"]) == (field, code)


def test_a_discharge_in_the_future_is_refused() -> None:
    claim = c.ClaimIn.model_validate(c.CLAIM_EXAMPLE)
    with pytest.raises(DomainError) as refused:
        claim.to_intake(Submitter(kind="unit", id="u"), date(2026, 6, 9))
    assert (refused.value.field, refused.value.code) == ("discharge_date", "in_the_future")


# The shared query parameters, served by a route of their own (the service's routes admit only
# signed callers; tests/integration/mutual_aid has those).
app = create_app("test")
routes = router()


@routes.get("/page")
async def page(
    days: Days, limit: PageLimit = 100, offset: PageOffset = 0, unit_id: IdFilter = None
) -> dict[str, str | int | None]:
    return {"limit": limit, "offset": offset, "since": str(days.since), "until": str(days.until)}


app.include_router(routes)
client = TestClient(app)


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("offset=99999999999999999999", "offset", "less_than_equal"),
        ("offset=10000000000000000000000000", "offset", "less_than_equal"),
        ("offset=-1", "offset", "greater_than_equal"),
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=1001", "limit", "less_than_equal"),
        ("limit=1e3", "limit", "int_parsing"),
        ("since=-1.705e-11", "since", "iso_format"),
        ("until=0667-06-02", "until", "out_of_range"),
        ("since=2026-07-02&until=2026-07-01", "until", "before_since"),
        ("unit_id=" + "u" * 101, "unit_id", "string_too_long"),
    ],
)
def test_paging_and_periods_are_bounded(query: str, field: str, code: str) -> None:
    answer = client.get(f"/page?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["code"]) for e in answer.json()["errors"]] == [(field, code)]


def test_the_largest_offset_and_a_one_day_period_are_fine() -> None:
    answer = client.get(f"/page?offset={INT64_MAX}&since=2026-07-01&until=2026-07-01")
    assert answer.status_code == 200, answer.text
    assert answer.json()["offset"] == INT64_MAX
