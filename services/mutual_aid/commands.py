"""What the API accepts, and how it becomes domain input.

Every body is a ``shared.inputs.Command``: unknown fields, NUL characters and integers beyond 64
bits are refused with a 422 naming the field before any rule runs. Dates are ISO text
(``IsoDate``, years 1900 to 2199).

MONEY: every amount is an integer number of fen (1 yuan = 100 fen) in a field ending ``_fen``,
never a float or a string: ``"total_expense_fen": 1234567`` is 12,345.67 yuan. A negative amount,
a fraction of a fen, a quoted number or more than ``MAX_FEN`` is refused with a 422 naming the
field, so no sum the fund keeps can overflow. Ratios are decimals of at most 4 places.

The domain names amounts without the suffix (``total_expense``); errors it raises are renamed to
the API's field names here, so a client is always told the field it actually sent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import ConfigDict, Field, ValidationError

from services.mutual_aid.errors import PlanInvalid
from services.mutual_aid.intake import ClaimIntake, RejectionCode, Submitter
from services.mutual_aid.plans import BenefitRules, RatioBand
from shared.errors import DomainError
from shared.inputs import Command, FromRoute, IsoDate

# 1,000,000,000.00 yuan: far above any claim, contribution or grant the scheme sees, and low
# enough that the fund's sums of such amounts stay well inside Postgres' bigint.
MAX_FEN = 100_000_000_000
Amount = Annotated[
    int,
    Field(strict=True, ge=0, le=MAX_FEN, description="fen (1 yuan = 100 fen)", examples=[120000]),
]
PositiveAmount = Annotated[
    int,
    Field(strict=True, gt=0, le=MAX_FEN, description="fen (1 yuan = 100 fen)", examples=[120000]),
]
Text = Annotated[str, Field(min_length=1, max_length=500)]
Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^\S+$")]
SchemeYear = Annotated[int, Field(ge=2000, le=2100, examples=[2026])]

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
    """Rename the field a domain error names to the API's name (``amount`` → ``amount_fen``);
    a plan that cannot be published answers with every problem, each with its own code."""
    try:
        yield
    except PlanInvalid as exc:
        raise RequestValidationError(
            [
                {"loc": ("body", api_field(p.field)), "msg": p.message, "type": p.code}
                for p in exc.problems
            ]
        ) from exc
    except DomainError as exc:
        renamed = api_field(exc.field)
        if renamed != exc.field:
            exc.field = renamed
            exc.args = (f"{renamed}: {exc.message}",)
        raise


C = TypeVar("C", bound=Command)
U = TypeVar("U")
R = TypeVar("R")


def in_api_terms(handler: Callable[[C, U], Awaitable[R]]) -> Callable[[C, U], Awaitable[R]]:
    """The handler with :func:`api_fields` around it, for ``shared.routes.action`` (which calls
    the handler itself); its name stays the route's name."""

    @functools.wraps(handler)
    async def run(cmd: C, uow: U) -> R:
        with api_fields():
            return await handler(cmd, uow)

    return run


def _validation_error(exc: ValidationError, prefix: Sequence[str | int] = ()) -> Exception:
    errors: list[dict[str, Any]] = []
    for e in exc.errors():
        loc = [api_field(p) if isinstance(p, str) else p for p in e["loc"]]
        errors.append({"loc": ("body", *prefix, *loc), "msg": e["msg"], "type": e["type"]})
    return RequestValidationError(errors)


# Plans -----------------------------------------------------------------------------------------


class BandIn(Command):
    lower_fen: Amount
    upper_fen: Amount | None = Field(None, description="null for the open-ended top band")
    ratio: Decimal = Field(
        ge=0,
        le=1,
        max_digits=5,
        decimal_places=4,
        description='share paid in this band, 0 to 1 with at most 4 decimals: "0.5" is 50%',
        examples=["0.5"],
    )


class RulesIn(Command):
    deductible_fen: Amount
    bands: list[BandIn] = Field(max_length=20, description="in increasing order, from 0")
    per_claim_ceiling_fen: Amount
    yearly_ceiling_fen: Amount
    outside_catalogue_counts: bool = False
    waiting_period_days: int = Field(0, ge=0, le=3650)
    accident_exempt_from_waiting: bool = True
    submission_deadline_days: int = Field(ge=0, le=3650, examples=[180])

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


STANDARD_RULES: dict[str, Any] = {
    "deductible_fen": 100_000,
    "bands": [
        {"lower_fen": 0, "upper_fen": 1_000_000, "ratio": "0.5"},
        {"lower_fen": 1_000_000, "upper_fen": 5_000_000, "ratio": "0.6"},
        {"lower_fen": 5_000_000, "upper_fen": None, "ratio": "0.7"},
    ],
    "per_claim_ceiling_fen": 5_000_000,
    "yearly_ceiling_fen": 8_000_000,
    "waiting_period_days": 90,
    "submission_deadline_days": 180,
}


class DraftPlan(Command):
    """A new version of a scheme year's plan, as a draft; the rules are checked on publishing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scheme_year": 2026,
                    "contribution_per_member_fen": 12_000,
                    "rules": STANDARD_RULES,
                }
            ]
        }
    )

    scheme_year: SchemeYear
    effective_from: IsoDate | None = Field(None, description="default: 1 January of the year")
    effective_to: IsoDate | None = Field(None, description="last day in effect; default 31 Dec")
    contribution_per_member_fen: Amount
    rules: RulesIn


class PublishPlan(Command):
    """Publish a draft; the route names the plan and sends no body."""

    plan_id: FromRoute = ""


# Enrolment and contributions -------------------------------------------------------------------


class EnrolUnit(Command):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "unit_id": "u-factory-7",
                    "scheme_year": 2026,
                    "staff": ["M00012345", "M00012346"],
                    "enrolled_on": "2026-01-01",
                }
            ]
        }
    )

    unit_id: Id = Field(description="the enrolling unit (an organisation id from membership)")
    scheme_year: SchemeYear
    staff: list[Id] = Field(min_length=1, max_length=20000, description="member ids")
    enrolled_on: IsoDate | None = Field(None, description="default: today")


class CoverStaff(Command):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"member_ids": ["M00012347"], "on": "2026-03-01"}]}
    )

    enrolment_id: FromRoute = ""
    member_ids: list[Id] = Field(min_length=1, max_length=20000)
    on: IsoDate | None = Field(None, description="cover starts this day; default: today")


class RecordContribution(Command):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "receipt_number": "R-2026-000123",
                    "amount_fen": 24_000,
                    "payer": "单位财务科",
                    "received_on": "2026-02-10",
                    "period": "2026",
                }
            ]
        }
    )

    enrolment_id: FromRoute = ""
    receipt_number: Id = Field(description="the receipt's number; unique across all units")
    amount_fen: PositiveAmount
    payer: Text
    received_on: IsoDate | None = Field(None, description="default: today; not in the future")
    period: str = Field("", max_length=50, description='e.g. "2025" or "2025-H1"')


# Claims ----------------------------------------------------------------------------------------


class SubmitterIn(Command):
    kind: Literal["unit", "member"]
    id: Id


CLAIM_EXAMPLE: dict[str, Any] = {
    "member_id": "M00012345",
    "unit_id": "u-factory-7",
    "admission_date": "2026-06-03",
    "discharge_date": "2026-06-10",
    "hospital": "亳州市人民医院",
    "invoice_numbers": ["34010026000123"],
    "total_expense_fen": 1_100_000,
    "paid_by_basic_insurance_fen": 500_000,
    "self_paid_in_catalogue_fen": 600_000,
    "self_paid_outside_catalogue_fen": 0,
    "diagnosis_code": "K35.2",
    "documents": ["invoice", "discharge-summary"],
}


class ClaimIn(Command):
    model_config = ConfigDict(json_schema_extra={"examples": [CLAIM_EXAMPLE]})

    member_id: Id
    unit_id: Id
    admission_date: IsoDate
    discharge_date: IsoDate = Field(description="not before admission, not in the future")
    hospital: Text
    invoice_numbers: list[Id] = Field(
        min_length=1, max_length=50, description="each at most once, on this and other claims"
    )
    total_expense_fen: Amount
    paid_by_basic_insurance_fen: Amount
    self_paid_in_catalogue_fen: Amount
    self_paid_outside_catalogue_fen: Amount
    diagnosis: str = Field("", max_length=500)
    diagnosis_code: str | None = Field(
        None, max_length=20, description="ICD-10, e.g. K35.2", examples=["K35.2"]
    )
    documents: list[Id] = Field(default_factory=list, max_length=50)
    accident: bool = Field(False, description="an accident is exempt from the waiting period")

    def to_intake(
        self, submitted_by: Submitter, submitted_on: date, prefix: Sequence[str] = ()
    ) -> ClaimIntake:
        if self.discharge_date > submitted_on:
            raise DomainError(
                ".".join([*prefix, "discharge_date"]), "in_the_future", "must not be in the future"
            )
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [CLAIM_EXAMPLE | {"submitted_by": {"kind": "unit", "id": "u-factory-7"}}]
        }
    )

    via: FromRoute = ""  # the department system (app id) the claim came through
    submitted_by: SubmitterIn = Field(description="the unit or member handing the claim in")


class Resubmit(Command):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"by": "u-factory-7", "documents": ["itemised-bill"]}]}
    )

    claim_id: FromRoute = ""
    via: FromRoute = ""
    by: Id = Field(description="who hands the documents in")
    documents: list[Id] = Field(default_factory=list, max_length=50)
    corrected: ClaimIn | None = Field(None, description="corrected details, if any")


class Officer(Command):
    model_config = ConfigDict(json_schema_extra={"examples": [{"officer": "officer-wang"}]})

    claim_id: FromRoute = ""
    via: FromRoute = ""  # the department system (app id) the decision came through
    officer: Id = Field(description="the reviewing officer (kept in the claim's history)")


class Adjust(Officer):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "officer": "officer-wang",
                    "amount_fen": 200_000,
                    "reason": "one invoice is for a private room",
                }
            ]
        }
    )

    amount_fen: Amount = Field(description="the amount approved; not above the computed benefit")
    reason: Text


class Reject(Officer):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "officer": "officer-wang",
                    "reason_code": "DOCUMENTS_INVALID",
                    "reason_text": "the invoice is not stamped",
                }
            ]
        }
    )

    reason_code: RejectionCode
    reason_text: Text


class ReturnForDocuments(Officer):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "officer": "officer-wang",
                    "missing_documents": ["itemised bill"],
                    "note": "page 2 of the bill is missing",
                }
            ]
        }
    )

    missing_documents: list[Text] = Field(default_factory=list, max_length=50)
    note: str = Field("", max_length=500, description="needed when no document is listed")


# The backstop ----------------------------------------------------------------------------------


class RecordGrant(Command):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"amount_fen": 5_000_000, "reference": "CZ-2026-0042", "granted_on": "2026-07-15"}
            ]
        }
    )

    request_id: FromRoute = ""
    recorded_by: FromRoute = ""  # finance's app id
    amount_fen: PositiveAmount = Field(description="not above what the request has outstanding")
    reference: Id = Field(description="finance's reference for the transfer; unique")
    granted_on: IsoDate = Field(description="not in the future")
