"""What the API accepts, and how it becomes domain input.

MONEY: every amount is an integer number of fen (1 yuan = 100 fen) in a field ending ``_fen``,
never a float or a string: ``"total_expense_fen": 1234567`` is 12,345.67 yuan. A negative amount,
a fraction of a fen or a quoted number is refused with a 422 naming the field.

The domain names amounts without the suffix (``total_expense``); errors it raises are renamed to
the API's field names here, so a client is always told the field it actually sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.mutual_aid.errors import PlanInvalid
from services.mutual_aid.intake import ClaimIntake, RejectionCode, Submitter
from services.mutual_aid.plans import BenefitRules, RatioBand
from shared.errors import DomainError

Amount = Annotated[int, Field(strict=True, ge=0, description="fen (1 yuan = 100 fen)")]
PositiveAmount = Annotated[int, Field(strict=True, gt=0, description="fen (1 yuan = 100 fen)")]
Text = Annotated[str, Field(min_length=1, max_length=500)]
Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^\S+$")]

# Domain amount names and their API names.
_AMOUNTS = {
    "amount",
    "deductible",
    "per_claim_ceiling",
    "yearly_ceiling",
    "lower",
    "upper",
    "contribution_per_member",
    "total_expense",
    "paid_by_basic_insurance",
    "self_paid_in_catalogue",
    "self_paid_outside_catalogue",
}
_LAST_NAME = re.compile(r"([A-Za-z_]+)(\[\d+\])?$")


def api_field(field: str) -> str:
    """``rules.bands[1].lower`` → ``rules.bands[1].lower_fen``; other names stay as they are."""
    head, _, last = field.rpartition(".")
    match = _LAST_NAME.match(last)
    if match is None or match.group(1) not in _AMOUNTS:
        return field
    renamed = f"{match.group(1)}_fen{match.group(2) or ''}"
    return f"{head}.{renamed}" if head else renamed


@contextmanager
def api_fields() -> Iterator[None]:
    """Rename the field a domain error names to the API's name (``amount`` → ``amount_fen``)."""
    try:
        yield
    except PlanInvalid as exc:
        raise RequestValidationError(
            [
                {"loc": ("body", api_field(p.field)), "msg": p.message, "type": "plan_invalid"}
                for p in exc.problems
            ]
        ) from exc
    except DomainError as exc:
        renamed = api_field(exc.field)
        if renamed != exc.field:
            exc.field = renamed
            exc.args = (f"{renamed}: {exc.reason}",)
        raise


def _validation_error(exc: ValidationError, prefix: Sequence[str | int] = ()) -> Exception:
    errors: list[dict[str, Any]] = []
    for e in exc.errors():
        loc = [api_field(p) if isinstance(p, str) else p for p in e["loc"]]
        errors.append({"loc": ("body", *prefix, *loc), "msg": e["msg"], "type": e["type"]})
    return RequestValidationError(errors)


# Plans -----------------------------------------------------------------------------------------


class BandIn(BaseModel):
    lower_fen: Amount
    upper_fen: Amount | None = Field(None, description="null for the open-ended top band")
    ratio: Decimal = Field(ge=0, le=1, description='e.g. "0.5" for 50%')


class RulesIn(BaseModel):
    deductible_fen: Amount
    bands: list[BandIn] = Field(max_length=20)
    per_claim_ceiling_fen: Amount
    yearly_ceiling_fen: Amount
    outside_catalogue_counts: bool = False
    waiting_period_days: int = Field(0, ge=0, le=3650)
    accident_exempt_from_waiting: bool = True
    submission_deadline_days: int = Field(ge=0, le=3650)

    def to_domain(self) -> BenefitRules:
        return BenefitRules(
            deductible=self.deductible_fen,
            bands=tuple(
                RatioBand(lower=b.lower_fen, upper=b.upper_fen, ratio=b.ratio) for b in self.bands
            ),
            per_claim_ceiling=self.per_claim_ceiling_fen,
            yearly_ceiling=self.yearly_ceiling_fen,
            outside_catalogue_counts=self.outside_catalogue_counts,
            waiting_period_days=self.waiting_period_days,
            accident_exempt_from_waiting=self.accident_exempt_from_waiting,
            submission_deadline_days=self.submission_deadline_days,
        )


class DraftPlan(BaseModel):
    """A new version of a scheme year's plan, as a draft; the rules are checked on publishing."""

    scheme_year: int = Field(ge=2000, le=2100)
    effective_from: date | None = Field(None, description="default: 1 January of the year")
    effective_to: date | None = Field(None, description="last day in effect; default 31 Dec")
    contribution_per_member_fen: Amount
    rules: RulesIn


# Enrolment and contributions -------------------------------------------------------------------


class EnrolUnit(BaseModel):
    unit_id: Id
    scheme_year: int = Field(ge=2000, le=2100)
    staff: list[Id] = Field(min_length=1, max_length=20000, description="member ids")
    enrolled_on: date | None = Field(None, description="default: today")


class CoverStaff(BaseModel):
    member_ids: list[Id] = Field(min_length=1, max_length=20000)
    on: date | None = Field(None, description="cover starts this day; default: today")


class RecordContribution(BaseModel):
    receipt_number: Id
    amount_fen: PositiveAmount
    payer: Text
    received_on: date | None = Field(None, description="default: today")
    period: str = Field("", max_length=50, description='e.g. "2025" or "2025-H1"')


# Claims ----------------------------------------------------------------------------------------


class SubmitterIn(BaseModel):
    kind: Literal["unit", "member"]
    id: Id


class ClaimIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    member_id: Id
    unit_id: Id
    admission_date: date
    discharge_date: date
    hospital: Text
    invoice_numbers: list[Id] = Field(min_length=1, max_length=50)
    total_expense_fen: Amount
    paid_by_basic_insurance_fen: Amount
    self_paid_in_catalogue_fen: Amount
    self_paid_outside_catalogue_fen: Amount
    diagnosis: str = Field("", max_length=500)
    diagnosis_code: str | None = Field(None, description="ICD-10, e.g. K35.2")
    documents: list[Id] = Field(default_factory=list, max_length=50)
    accident: bool = False

    def to_intake(
        self, submitted_by: Submitter, submitted_on: date, prefix: Sequence[str] = ()
    ) -> ClaimIntake:
        if self.discharge_date > submitted_on:
            raise DomainError(".".join([*prefix, "discharge_date"]), "must not be in the future")
        try:
            return ClaimIntake(
                member_id=self.member_id,
                unit_id=self.unit_id,
                admission_date=self.admission_date,
                discharge_date=self.discharge_date,
                hospital=self.hospital,
                invoice_numbers=tuple(self.invoice_numbers),
                total_expense=self.total_expense_fen,
                paid_by_basic_insurance=self.paid_by_basic_insurance_fen,
                self_paid_in_catalogue=self.self_paid_in_catalogue_fen,
                self_paid_outside_catalogue=self.self_paid_outside_catalogue_fen,
                diagnosis=self.diagnosis,
                diagnosis_code=self.diagnosis_code,
                documents=tuple(self.documents),
                submitted_by=submitted_by,
                submitted_on=submitted_on,
                accident=self.accident,
            )
        except ValidationError as exc:
            raise _validation_error(exc, prefix) from exc


class SubmitClaim(ClaimIn):
    submitted_by: SubmitterIn = Field(description="the unit or member handing the claim in")


class Resubmit(BaseModel):
    by: Id = Field(description="who hands the documents in")
    documents: list[Id] = Field(default_factory=list, max_length=50)
    corrected: ClaimIn | None = Field(None, description="corrected details, if any")


class Officer(BaseModel):
    officer: Id = Field(description="the reviewing officer (kept in the claim's history)")


class Adjust(Officer):
    amount_fen: Amount
    reason: Text


class Reject(Officer):
    reason_code: RejectionCode
    reason_text: Text


class ReturnForDocuments(Officer):
    missing_documents: list[Text] = Field(default_factory=list, max_length=50)
    note: str = Field("", max_length=500)


# The backstop ----------------------------------------------------------------------------------


class RecordGrant(BaseModel):
    amount_fen: PositiveAmount
    reference: Id = Field(description="finance's reference for the transfer; unique")
    granted_on: date
