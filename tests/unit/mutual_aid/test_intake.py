from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from services.mutual_aid.benefits import YearToDate
from services.mutual_aid.enrolment import Coverage
from services.mutual_aid.intake import ClaimIntake, RejectionCode, check_claim
from services.mutual_aid.money import yuan
from services.mutual_aid.plans import Plan
from tests.unit.mutual_aid.builders import YEAR, coverage, intake, published_plan, rules


def refused_field(**overrides: Any) -> tuple[str | int, ...]:
    with pytest.raises(ValidationError) as refused:
        intake(**overrides)
    return refused.value.errors()[0]["loc"]


def test_a_good_intake_is_normalised() -> None:
    claim = intake(invoice_numbers=[" inv 001 ", "Inv-002"], diagnosis_code="i21.900X001")
    assert claim.invoice_numbers == ("INV001", "INV-002")
    assert claim.diagnosis_code == "I21.900x001"
    assert claim.parts_total == claim.total_expense


def test_discharge_before_admission_names_the_field() -> None:
    assert refused_field(discharge_date=date(YEAR, 6, 1)) == ("discharge_date",)


def test_negative_amounts_name_the_field() -> None:
    assert refused_field(self_paid_in_catalogue=-1) == ("self_paid_in_catalogue",)
    assert refused_field(total_expense=-100) == ("total_expense",)


def test_money_is_whole_fen_never_a_float() -> None:
    assert refused_field(total_expense=20000.5) == ("total_expense",)


@pytest.mark.parametrize("code", ["A00", "Z99", "K35.2", "S72.00", "I21.900x001", "u07.1"])
def test_icd10_codes_accepted(code: str) -> None:
    assert intake(diagnosis_code=code).diagnosis_code == code[0].upper() + code[1:]


@pytest.mark.parametrize("code", ["A0", "AA00", "100", "K35.", "K35.2345", "K35-2"])
def test_icd10_codes_refused(code: str) -> None:
    assert refused_field(diagnosis_code=code) == ("diagnosis_code",)


def test_other_refusals_name_their_field() -> None:
    assert refused_field(invoice_numbers=[]) == ("invoice_numbers",)
    assert refused_field(invoice_numbers=["A1", "a1"]) == ("invoice_numbers",)
    assert refused_field(submitted_on=date(YEAR, 6, 5)) == ("submitted_on",)
    assert refused_field(hospital="  ") == ("hospital",)
    assert refused_field(submitted_by={"kind": "officer", "id": "x"}) == ("submitted_by", "kind")


def codes(
    claim: ClaimIntake,
    *,
    plan: Plan | None = None,
    cover: Coverage | None = None,
    other_invoices: tuple[str, ...] = (),
    ytd: YearToDate = YearToDate(),
    default_cover: bool = True,
) -> list[RejectionCode]:
    found = check_claim(
        claim,
        plan=plan or published_plan(),
        coverage=cover if cover or not default_cover else coverage(),
        other_invoices=other_invoices,
        year_to_date=ytd,
    )
    return [rejection.code for rejection in found]


def test_a_good_claim_passes_every_check() -> None:
    assert codes(intake()) == []


def test_not_covered_without_cover_or_outside_it() -> None:
    assert codes(intake(), default_cover=False) == [RejectionCode.NOT_COVERED]
    left = Coverage("m-1", date(YEAR, 1, 1), date(YEAR, 5, 31), date(YEAR, 1, 1), "left")
    assert codes(intake(), cover=left) == [RejectionCode.NOT_COVERED]
    no_plan = check_claim(
        intake(), plan=None, coverage=coverage(), other_invoices=(), year_to_date=YearToDate()
    )
    assert [r.code for r in no_plan] == [RejectionCode.NOT_COVERED]


def test_admission_before_the_end_of_cover_stays_valid() -> None:
    # cover ended 2024-06-05 (left on 06-06), admitted 06-03, discharged and claimed later
    left = Coverage("m-1", date(YEAR, 1, 1), date(YEAR, 6, 5), date(YEAR, 1, 1), "left")
    assert codes(intake(), cover=left) == []


def test_waiting_period_and_the_accident_exception() -> None:
    # cover from 2024-04-01; 90 days of waiting → admissions from 2024-06-30 are fine
    new = coverage(starts_on=date(YEAR, 4, 1))
    later = {"discharge_date": date(YEAR, 7, 2), "submitted_on": date(YEAR, 7, 9)}
    waiting = intake(admission_date=date(YEAR, 6, 29), **later)
    assert codes(waiting, cover=new) == [RejectionCode.WAITING_PERIOD]
    served = intake(admission_date=date(YEAR, 6, 30), **later)
    assert codes(served, cover=new) == []
    accident = waiting.model_copy(update={"accident": True})
    assert codes(accident, cover=new) == []
    no_exception = published_plan(rules=rules(accident_exempt_from_waiting=False))
    assert codes(accident, cover=new, plan=no_exception) == [RejectionCode.WAITING_PERIOD]


def test_duplicate_invoice() -> None:
    found = check_claim(
        intake(invoice_numbers=["INV-001", "INV-777"]),
        plan=published_plan(),
        coverage=coverage(),
        other_invoices=("inv-001",),
        year_to_date=YearToDate(),
    )
    assert [r.code for r in found] == [RejectionCode.DUPLICATE_INVOICE]
    assert "INV-001" in found[0].text and "INV-777" not in found[0].text


def test_inconsistent_amounts() -> None:
    assert codes(intake(total_expense=yuan("20000.01"))) == [RejectionCode.INCONSISTENT_AMOUNTS]
    # negatives cannot get past intake, but a claim built without validation is still caught
    forged = intake().model_copy(update={"self_paid_outside_catalogue": -1})
    assert RejectionCode.INCONSISTENT_AMOUNTS in codes(forged)


def test_late_submission() -> None:
    # discharged 2024-06-10, 180 days → last day 2024-12-07
    assert codes(intake(submitted_on=date(YEAR, 12, 7))) == []
    assert codes(intake(submitted_on=date(YEAR, 12, 8))) == [RejectionCode.LATE_SUBMISSION]


def test_over_ceiling_when_the_year_is_used_up() -> None:
    used_up = YearToDate(deductible_used=yuan("1000"), benefits_paid=yuan("80000"))
    assert codes(intake(), ytd=used_up) == [RejectionCode.OVER_CEILING]
    almost = YearToDate(deductible_used=yuan("1000"), benefits_paid=yuan("79999.99"))
    assert codes(intake(), ytd=almost) == []


def test_every_broken_rule_is_reported_most_fundamental_first() -> None:
    claim = intake(total_expense=1, submitted_on=date(YEAR + 1, 6, 1))
    assert codes(claim, default_cover=False, other_invoices=("INV-001",)) == [
        RejectionCode.NOT_COVERED,
        RejectionCode.DUPLICATE_INVOICE,
        RejectionCode.INCONSISTENT_AMOUNTS,
        RejectionCode.LATE_SUBMISSION,
    ]
