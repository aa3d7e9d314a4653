"""Claim intake: what a unit or member hands in, and the automatic checks run on it.

Bad input (discharge before admission, a negative amount, a malformed diagnosis code) is refused at
once as a validation error naming the field, with a code of its own (``before_admission``...).
A well-formed claim the rules do not allow is not an error: the checks return coded
``Rejection``s, which the claim records and the member is told.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from services.mutual_aid.benefits import BenefitCalculation, YearToDate, calculate_benefit
from services.mutual_aid.enrolment import Coverage
from services.mutual_aid.money import NonNegativeFen, format_yuan
from services.mutual_aid.plans import BenefitRules, Plan

# ICD-10 category (A00–Z99), optionally a subcategory of 1–3 digits, optionally the extension used
# by China's national clinical version ("I21.900x001").
ICD10 = re.compile(r"^[A-Z]\d{2}(\.\d{1,3}(x\d{3})?)?$")


class RejectionCode(StrEnum):
    # Found by the automatic checks.
    NOT_COVERED = "NOT_COVERED"
    WAITING_PERIOD = "WAITING_PERIOD"
    DUPLICATE_INVOICE = "DUPLICATE_INVOICE"
    INCONSISTENT_AMOUNTS = "INCONSISTENT_AMOUNTS"
    LATE_SUBMISSION = "LATE_SUBMISSION"
    OVER_CEILING = "OVER_CEILING"
    # Given by an officer on review.
    DOCUMENTS_INVALID = "DOCUMENTS_INVALID"
    NOT_ELIGIBLE_EXPENSE = "NOT_ELIGIBLE_EXPENSE"
    OTHER = "OTHER"


@dataclass(frozen=True)
class Rejection:
    code: RejectionCode
    text: str


class Submitter(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["unit", "member"]
    id: str = Field(min_length=1)


class ClaimIntake(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    member_id: str = Field(min_length=1)
    unit_id: str = Field(min_length=1)
    admission_date: date
    discharge_date: date
    hospital: str = Field(min_length=1)
    invoice_numbers: tuple[str, ...] = Field(min_length=1)
    total_expense: NonNegativeFen
    paid_by_basic_insurance: NonNegativeFen
    self_paid_in_catalogue: NonNegativeFen
    self_paid_outside_catalogue: NonNegativeFen
    diagnosis: str = ""
    diagnosis_code: str | None = None
    documents: tuple[str, ...] = ()
    submitted_by: Submitter
    submitted_on: date
    accident: bool = False

    @field_validator("discharge_date")
    @classmethod
    def _discharge_after_admission(cls, value: date, info: ValidationInfo) -> date:
        admitted = info.data.get("admission_date")
        if admitted is not None and value < admitted:
            raise PydanticCustomError("before_admission", "must not be before the admission date")
        return value

    @field_validator("submitted_on")
    @classmethod
    def _submitted_after_discharge(cls, value: date, info: ValidationInfo) -> date:
        discharged = info.data.get("discharge_date")
        if discharged is not None and value < discharged:
            raise PydanticCustomError("before_discharge", "must not be before the discharge date")
        return value

    @field_validator("invoice_numbers")
    @classmethod
    def _invoices(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        numbers = tuple(normalise_invoice(n) for n in value)
        if any(not n for n in numbers):
            raise PydanticCustomError("empty_invoice_number", "an invoice number is empty")
        if len(set(numbers)) != len(numbers):
            raise PydanticCustomError("duplicate_invoice", "the same invoice is listed twice")
        return numbers

    @field_validator("diagnosis_code")
    @classmethod
    def _icd10(cls, value: str | None) -> str | None:
        if value is None or not value:
            return None
        code = value[0].upper() + value[1:].lower()
        if not ICD10.match(code):
            raise PydanticCustomError(
                "not_icd10", "not an ICD-10 code like A00, K35.2 or I21.900x001"
            )
        return code

    @property
    def parts_total(self) -> int:
        return (
            self.paid_by_basic_insurance
            + self.self_paid_in_catalogue
            + self.self_paid_outside_catalogue
        )


def normalise_invoice(number: str) -> str:
    """Invoice numbers are compared without spaces and case, as clerks type them differently."""
    return "".join(number.split()).upper()


def check_claim(
    intake: ClaimIntake,
    *,
    plan: Plan | None,
    coverage: Coverage | None,
    other_invoices: Collection[str],
    year_to_date: YearToDate,
) -> list[Rejection]:
    """Every rule the claim breaks, most fundamental first; empty when it may go to review.

    ``plan`` is the plan in force on the admission date; ``coverage`` the member's cover;
    ``other_invoices`` the invoice numbers on the member's other claims that were not rejected;
    ``year_to_date`` what the member has used of the scheme year. Deadlines run from the first
    submission (``intake.submitted_on``), so returning a claim for documents never makes it late.
    """
    found: list[Rejection] = []
    admitted = intake.admission_date
    if plan is None or coverage is None or not coverage.covers(admitted):
        found.append(Rejection(RejectionCode.NOT_COVERED, f"not covered on {admitted}"))
    elif admitted < coverage.waiting_from + timedelta(days=plan.rules.waiting_period_days) and not (
        intake.accident and plan.rules.accident_exempt_from_waiting
    ):
        ends = coverage.waiting_from + timedelta(days=plan.rules.waiting_period_days)
        found.append(
            Rejection(RejectionCode.WAITING_PERIOD, f"admitted {admitted}, waiting until {ends}")
        )

    seen = {normalise_invoice(n) for n in other_invoices}
    duplicates = [n for n in intake.invoice_numbers if n in seen]
    if duplicates:
        found.append(
            Rejection(RejectionCode.DUPLICATE_INVOICE, f"already claimed: {', '.join(duplicates)}")
        )

    amounts = (
        intake.total_expense,
        intake.paid_by_basic_insurance,
        intake.self_paid_in_catalogue,
        intake.self_paid_outside_catalogue,
    )
    # Negatives cannot pass intake validation; checked again for claims built another way.
    if any(amount < 0 for amount in amounts) or intake.parts_total != intake.total_expense:
        found.append(
            Rejection(
                RejectionCode.INCONSISTENT_AMOUNTS,
                f"parts add up to {format_yuan(intake.parts_total)}, "
                f"total is {format_yuan(intake.total_expense)}",
            )
        )

    if plan is not None:
        deadline = intake.discharge_date + timedelta(days=plan.rules.submission_deadline_days)
        if intake.submitted_on > deadline:
            found.append(
                Rejection(RejectionCode.LATE_SUBMISSION, f"submitted after the deadline {deadline}")
            )
        if year_to_date.benefits_paid >= plan.rules.yearly_ceiling:
            found.append(
                Rejection(
                    RejectionCode.OVER_CEILING,
                    f"yearly ceiling {format_yuan(plan.rules.yearly_ceiling)} already used",
                )
            )
    return found


def calculate_claim_benefit(
    rules: BenefitRules, intake: ClaimIntake, year_to_date: YearToDate
) -> BenefitCalculation:
    return calculate_benefit(
        rules,
        self_paid_in_catalogue=intake.self_paid_in_catalogue,
        self_paid_outside_catalogue=intake.self_paid_outside_catalogue,
        year_to_date=year_to_date,
    )
