"""How the API answers about plans, enrolments and claims: one pydantic model per answer, built
from domain objects. The fund, the backstop and reports answer with ``ledger_views``' models.

Every amount is integer fen in a ``*_fen`` field; the main ones also come as ``*_yuan`` text
("12,345.67") so a person reading a response (or a demo) need not divide by 100. Member and unit
ids are the membership service's opaque ids; no name, ID number or phone is ever answered here.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

import asyncpg
from pydantic import AliasChoices, ConfigDict, Field

from services.mutual_aid.benefits import BenefitCalculation
from services.mutual_aid.claims import Claim, ClaimState
from services.mutual_aid.enrolment import Enrolment
from services.mutual_aid.intake import RejectionCode
from services.mutual_aid.money import Fen, format_yuan
from services.mutual_aid.plans import Plan, PlanStatus
from services.mutual_aid.repository import MemberCoverage
from shared.views import View

Yuan = Annotated[
    str, Field(description="the same amount in yuan, for people", examples=["1,200.00"])
]
Money = Annotated[int, Field(description="fen (1 yuan = 100 fen)", examples=[120000])]


def yuan_or_none(amount: Fen | None) -> str | None:
    return None if amount is None else format_yuan(amount)


# Plans -----------------------------------------------------------------------------------------


class BandView(View):
    lower_fen: Money
    upper_fen: Money | None = Field(description="null for the open-ended top band")
    ratio: Decimal = Field(description="share paid in this band", examples=["0.5"])
    label: str = Field(examples=["band 0–10,000 at 50%"])


class RulesView(View):
    deductible_fen: Money = Field(description="paid by the member first, once per scheme year")
    bands: list[BandView]
    per_claim_ceiling_fen: Money
    yearly_ceiling_fen: Money
    outside_catalogue_counts: bool = Field(
        description="whether self-paid costs outside the medical-insurance catalogue count"
    )
    waiting_period_days: int = Field(description="from the start of continuous cover")
    accident_exempt_from_waiting: bool
    submission_deadline_days: int = Field(description="from discharge to the first submission")


class PlanView(View):
    plan_id: str = Field(examples=["plan-2026-v1"])
    scheme_year: int = Field(examples=[2026])
    version: int = Field(description="1, 2...: a published version is never edited")
    status: PlanStatus
    effective_from: date
    effective_to: date = Field(description="the last day in effect")
    published_on: date | None
    contribution_per_member_fen: Money = Field(description="what a unit pays a member a year")
    contribution_per_member_yuan: Yuan
    rules: RulesView

    @classmethod
    def of(cls, plan: Plan) -> PlanView:
        rules = plan.rules
        return cls(
            plan_id=plan.plan_id,
            scheme_year=plan.scheme_year,
            version=plan.version,
            status=plan.status,
            effective_from=plan.effective_from,
            effective_to=plan.effective_to,
            published_on=plan.published_on,
            contribution_per_member_fen=plan.contribution_per_member,
            contribution_per_member_yuan=format_yuan(plan.contribution_per_member),
            rules=RulesView(
                deductible_fen=rules.deductible,
                bands=[
                    BandView(lower_fen=b.lower, upper_fen=b.upper, ratio=b.ratio, label=b.label())
                    for b in rules.bands
                ],
                per_claim_ceiling_fen=rules.per_claim_ceiling,
                yearly_ceiling_fen=rules.yearly_ceiling,
                outside_catalogue_counts=rules.outside_catalogue_counts,
                waiting_period_days=rules.waiting_period_days,
                accident_exempt_from_waiting=rules.accident_exempt_from_waiting,
                submission_deadline_days=rules.submission_deadline_days,
            ),
        )


# Enrolment -------------------------------------------------------------------------------------


class CoverageView(View):
    member_id: str = Field(examples=["M00012345"])
    starts_on: date
    ends_on: date = Field(description="the last day covered")
    waiting_from: date = Field(
        description="start of continuous cover: the waiting period runs from here"
    )
    ended_reason: str | None = Field(description="why cover ended early (the member left)")


class NotCoveredView(View):
    member_id: str
    reason: str = Field(examples=["not an active union member on the start date"])


class ContributionView(View):
    receipt_number: str = Field(examples=["R-2026-000123"])
    # Read off a ``Contribution`` (``amount``) or a row (``amount_fen``).
    amount_fen: Money = Field(validation_alias=AliasChoices("amount_fen", "amount"))
    payer: str
    received_on: date
    period: str = Field(examples=["2026"])


class ContributionRecord(ContributionView):
    """A contribution found across enrolments, with the enrolment and unit it was paid for."""

    enrolment_id: str
    unit_id: str
    scheme_year: int
    recorded_at: datetime


class EnrolmentSummary(View):
    """An enrolment without its lists of staff and receipts (see ``GET /enrolments/{id}``)."""

    enrolment_id: str = Field(examples=["EN-2026-00001"])
    unit_id: str
    plan_id: str
    scheme_year: int
    enrolled_on: date
    covered_count: int
    not_covered_count: int
    contribution_per_member_fen: Money
    contribution_per_member_yuan: Yuan
    expected_fen: Money = Field(description="a year's contribution for every member ever covered")
    expected_yuan: Yuan
    received_fen: Money
    received_yuan: Yuan
    arrears_fen: int = Field(description="expected minus received; negative when paid ahead")
    arrears_yuan: Yuan

    @classmethod
    def of_row(cls, r: asyncpg.Record) -> EnrolmentSummary:
        return cls(
            enrolment_id=r["enrolment_id"],
            unit_id=r["unit_id"],
            plan_id=r["plan_id"],
            scheme_year=r["scheme_year"],
            enrolled_on=r["enrolled_on"],
            covered_count=r["covered_count"],
            not_covered_count=r["not_covered_count"],
            **_contribution_money(
                r["contribution_per_member_fen"],
                # As ``Enrolment.expected``: a year's contribution for every member covered.
                r["contribution_per_member_fen"] * r["covered_count"],
                r["received_fen"],
            ),
        )


def _contribution_money(per_member: Fen, expected: Fen, received: Fen) -> dict[str, int | str]:
    return {
        "contribution_per_member_fen": per_member,
        "contribution_per_member_yuan": format_yuan(per_member),
        "expected_fen": expected,
        "expected_yuan": format_yuan(expected),
        "received_fen": received,
        "received_yuan": format_yuan(received),
        "arrears_fen": expected - received,
        "arrears_yuan": format_yuan(expected - received),
    }


class EnrolmentView(EnrolmentSummary):
    covered: list[CoverageView]
    not_covered: list[NotCoveredView]
    contributions: list[ContributionView]

    @classmethod
    def of(cls, e: Enrolment) -> EnrolmentView:
        return cls(
            enrolment_id=e.enrolment_id,
            unit_id=e.unit_id,
            plan_id=e.plan_id,
            scheme_year=e.scheme_year,
            enrolled_on=e.enrolled_on,
            covered_count=len(e.coverages),
            not_covered_count=len(e.not_covered),
            covered=[CoverageView.model_validate(c) for c in e.coverages.values()],
            not_covered=[NotCoveredView(member_id=m, reason=r) for m, r in e.not_covered.items()],
            contributions=[ContributionView.model_validate(c) for c in e.contributions],
            **_contribution_money(e.contribution_per_member, e.expected, e.received),
        )


class ActivePeriodView(View):
    starts_on: date
    ends_on: date | None = Field(description="the first day no longer active; null while active")


class MemberCoverView(CoverageView):
    enrolment_id: str
    unit_id: str
    scheme_year: int
    plan_id: str

    @classmethod
    def of_member(cls, x: MemberCoverage) -> MemberCoverView:
        return cls(
            enrolment_id=x.enrolment_id,
            unit_id=x.unit_id,
            scheme_year=x.scheme_year,
            plan_id=x.plan_id,
            **CoverageView.model_validate(x.coverage).model_dump(),
        )


class MemberCoverageView(View):
    member_id: str
    union_id: str | None = Field(description="the member's union as membership last said")
    active_periods: list[ActivePeriodView] = Field(description="when the member was active")
    coverages: list[MemberCoverView] = Field(description="cover through units the caller may see")


# Claims ----------------------------------------------------------------------------------------


class BenefitStepView(View):
    rule: Literal[
        "eligible_expense", "deductible", "band", "per_claim_ceiling", "yearly_ceiling", "benefit"
    ]
    base_fen: Money
    amount_fen: Money
    text: str = Field(examples=["deductible applied 1,000.00 (remaining this year 0.00)"])


class AssessmentView(View):
    """How the benefit was computed, step by step (docs/mutual_aid.md, the benefit formula)."""

    benefit_fen: Money
    benefit_yuan: Yuan
    eligible_expense_fen: Money
    deductible_applied_fen: Money
    banded_fen: Money
    explanation: list[str] = Field(description="the steps' texts, for the member")
    steps: list[BenefitStepView]

    @classmethod
    def of(cls, calc: BenefitCalculation) -> AssessmentView:
        return cls(
            benefit_fen=calc.benefit,
            benefit_yuan=format_yuan(calc.benefit),
            eligible_expense_fen=calc.eligible_expense,
            deductible_applied_fen=calc.deductible_applied,
            banded_fen=calc.banded,
            explanation=calc.explanation(),
            steps=[
                BenefitStepView.model_validate(
                    {"rule": s.rule, "base_fen": s.base, "amount_fen": s.amount, "text": s.text}
                )
                for s in calc.steps
            ],
        )


class SubmitterView(View):
    kind: Literal["unit", "member"]
    id: str


class RejectionView(View):
    code: RejectionCode
    text: str


class PaymentView(View):
    reference: str = Field(examples=["PAY-2026-000001"])
    amount_fen: Money
    amount_yuan: Yuan
    paid_at: datetime


class ClaimStepView(View):
    model_config = ConfigDict(populate_by_name=True)

    action: str = Field(examples=["approve"])
    from_state: ClaimState | None = Field(alias="from", description="null for the submission")
    to_state: ClaimState = Field(alias="to")
    by: str = Field(description='who took the step; "system" for the automatic ones')
    via: str | None = Field(description="the department system (app id) it came through")
    at: datetime
    note: str


class ClaimView(View):
    claim_id: str = Field(examples=["CL-2026-000001"])
    state: ClaimState
    member_id: str
    unit_id: str
    scheme_year: int | None = Field(description="the plan's year; null when no plan covered it")
    plan_id: str | None
    admission_date: date
    discharge_date: date
    hospital: str
    invoice_numbers: list[str]
    total_expense_fen: Money
    paid_by_basic_insurance_fen: Money
    self_paid_in_catalogue_fen: Money
    self_paid_outside_catalogue_fen: Money
    diagnosis_code: str | None
    accident: bool
    documents: list[str]
    submitted_by: SubmitterView
    submitted_on: date
    rejections: list[RejectionView] = Field(description="why it was rejected, most basic first")
    assessment: AssessmentView | None = Field(description="null until the checks passed")
    approved_amount_fen: Money | None
    approved_amount_yuan: Yuan | None
    approved_at: datetime | None
    adjustment_reason: str | None
    payment: PaymentView | None
    backstop_requests: list[str] = Field(description="backstop requests that asked for it")
    history: list[ClaimStepView]

    @classmethod
    def of(
        cls,
        claim: Claim,
        *,
        vias: list[str | None],
        payment: asyncpg.Record | None,
        backstop_requests: list[str],
    ) -> ClaimView:
        i = claim.intake
        return cls(
            claim_id=claim.claim_id,
            state=claim.state,
            member_id=i.member_id,
            unit_id=i.unit_id,
            scheme_year=claim.scheme_year,
            plan_id=claim.plan_id,
            admission_date=i.admission_date,
            discharge_date=i.discharge_date,
            hospital=i.hospital,
            invoice_numbers=list(i.invoice_numbers),
            total_expense_fen=i.total_expense,
            paid_by_basic_insurance_fen=i.paid_by_basic_insurance,
            self_paid_in_catalogue_fen=i.self_paid_in_catalogue,
            self_paid_outside_catalogue_fen=i.self_paid_outside_catalogue,
            diagnosis_code=i.diagnosis_code,
            accident=i.accident,
            documents=list(i.documents),
            submitted_by=SubmitterView(kind=i.submitted_by.kind, id=i.submitted_by.id),
            submitted_on=i.submitted_on,
            rejections=[RejectionView(code=r.code, text=r.text) for r in claim.rejections],
            assessment=AssessmentView.of(claim.assessment) if claim.assessment else None,
            approved_amount_fen=claim.approved_amount,
            approved_amount_yuan=yuan_or_none(claim.approved_amount),
            approved_at=claim.approved_at,
            adjustment_reason=claim.adjustment_reason,
            payment=None
            if payment is None
            else PaymentView(
                reference=payment["payment_reference"],
                amount_fen=payment["amount_fen"],
                amount_yuan=format_yuan(payment["amount_fen"]),
                paid_at=payment["paid_at"],
            ),
            backstop_requests=backstop_requests,
            history=[
                ClaimStepView(
                    action=s.action,
                    from_state=s.from_state,
                    to_state=s.to_state,
                    by=s.by,
                    via=via,
                    at=s.at,
                    note=s.note,
                )
                for s, via in zip(claim.history, vias, strict=True)
            ],
        )
