"""A claim from intake to payment, with every step kept: who did what, and when.

States (``action``: from → to)::

    submit                  → submitted
    assess                  submitted | resubmitted → under_review | auto_rejected
    approve, adjust         under_review → approved
    reject                  under_review → rejected
    return_for_documents    under_review → returned
    resubmit                returned → resubmitted
    await_funds             approved → awaiting_funds
    pay                     approved | awaiting_funds → paid

``assess`` runs the automatic checks and values the claim; an officer then decides. A claim the
fund cannot pay yet waits for the finance backstop in ``awaiting_funds``: an approved claim is
always paid. Final states: auto_rejected, rejected, paid.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.mutual_aid.backstop import PayableClaim
from services.mutual_aid.benefits import BenefitCalculation, YearToDate
from services.mutual_aid.enrolment import Coverage
from services.mutual_aid.errors import AdjustmentRefused, InvalidTransition
from services.mutual_aid.intake import (
    ClaimIntake,
    Rejection,
    RejectionCode,
    calculate_claim_benefit,
    check_claim,
)
from services.mutual_aid.money import Fen, format_yuan
from services.mutual_aid.plans import Plan
from shared.errors import DomainError
from shared.events.base import EventData
from shared.events.mutual_aid import (
    ClaimApproved,
    ClaimAwaitingFunds,
    ClaimPaid,
    ClaimRejected,
    ClaimResubmitted,
    ClaimReturned,
    ClaimSubmitted,
)

SYSTEM = "system"


class ClaimState(StrEnum):
    SUBMITTED = "submitted"
    AUTO_REJECTED = "auto_rejected"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    AWAITING_FUNDS = "awaiting_funds"
    PAID = "paid"


S = ClaimState
ALLOWED: dict[str, frozenset[ClaimState]] = {
    "assess": frozenset({S.SUBMITTED, S.RESUBMITTED}),
    "approve": frozenset({S.UNDER_REVIEW}),
    "adjust": frozenset({S.UNDER_REVIEW}),
    "reject": frozenset({S.UNDER_REVIEW}),
    "return_for_documents": frozenset({S.UNDER_REVIEW}),
    "resubmit": frozenset({S.RETURNED}),
    "await_funds": frozenset({S.APPROVED}),
    "pay": frozenset({S.APPROVED, S.AWAITING_FUNDS}),
}
# The benefit of a claim in these states is promised to the member: it counts against the year.
COMMITTED = frozenset({S.APPROVED, S.AWAITING_FUNDS, S.PAID})


@dataclass(frozen=True)
class ClaimStep:
    action: str
    from_state: ClaimState | None
    to_state: ClaimState
    by: str
    at: datetime
    note: str = ""


@dataclass(eq=False)
class Claim:
    claim_id: str
    intake: ClaimIntake
    state: ClaimState = ClaimState.SUBMITTED
    scheme_year: int | None = None
    plan_id: str | None = None
    assessment: BenefitCalculation | None = None
    rejections: tuple[Rejection, ...] = ()
    approved_amount: Fen | None = None
    approved_at: datetime | None = None
    adjustment_reason: str | None = None
    payment_reference: str | None = None
    history: list[ClaimStep] = field(default_factory=list)
    events: list[EventData] = field(default_factory=list, repr=False)

    @property
    def member_id(self) -> str:
        return self.intake.member_id

    @classmethod
    def submit(cls, claim_id: str, intake: ClaimIntake, at: datetime) -> Claim:
        claim = cls(claim_id, intake)
        claim.history.append(ClaimStep("submit", None, S.SUBMITTED, intake.submitted_by.id, at))
        claim.events.append(
            ClaimSubmitted(
                claim_id=claim_id,
                member_id=intake.member_id,
                unit_id=intake.unit_id,
                admission_date=intake.admission_date,
                discharge_date=intake.discharge_date,
                hospital=intake.hospital,
                total_expense_fen=intake.total_expense,
                submitted_by_kind=intake.submitted_by.kind,
                submitted_by=intake.submitted_by.id,
                submitted_at=at,
            )
        )
        return claim

    def assess(
        self,
        *,
        plan: Plan | None,
        coverage: Coverage | None,
        other_invoices: Collection[str],
        year_to_date: YearToDate,
        at: datetime,
    ) -> None:
        """Run the automatic checks; value the claim if it passes and send it to review."""
        self._require("assess")
        if plan is not None:
            self.plan_id, self.scheme_year = plan.plan_id, plan.scheme_year
        rejections = check_claim(
            self.intake,
            plan=plan,
            coverage=coverage,
            other_invoices=other_invoices,
            year_to_date=year_to_date,
        )
        self.rejections = tuple(rejections)
        if plan is not None and not rejections:
            self.assessment = calculate_claim_benefit(plan.rules, self.intake, year_to_date)
            self._move("assess", S.UNDER_REVIEW, SYSTEM, at, format_yuan(self.assessment.benefit))
            return
        first, *others = rejections  # no plan means NOT_COVERED, so there is always a first
        self._move("assess", S.AUTO_REJECTED, SYSTEM, at, str(first.code))
        self.events.append(
            ClaimRejected(
                claim_id=self.claim_id,
                member_id=self.member_id,
                reason_code=first.code,
                reason_text=first.text,
                automatic=True,
                rejected_by=SYSTEM,
                rejected_at=at,
                other_reason_codes=[r.code for r in others],
            )
        )

    def approve(
        self, officer: str, at: datetime, revalued: BenefitCalculation | None = None
    ) -> None:
        """Approve the computed benefit. Pass ``revalued`` (computed with the member's year as it
        is now) when other claims of the member were approved since the claim was assessed."""
        self._require("approve")
        if revalued is not None:
            self.assessment = revalued
        computed = self._computed()
        self._approve(officer, at, computed, computed, None)

    def adjust(self, officer: str, at: datetime, amount: Fen, reason: str) -> None:
        """Approve a lower amount than computed, saying why. Never more than the rules give."""
        self._require("adjust")
        computed = self._computed()
        if not reason.strip():
            raise DomainError("reason", "required", "say why the amount is lower")
        if amount < 0:
            raise AdjustmentRefused("amount", "must_not_be_negative", "must not be negative")
        if amount > computed:
            raise AdjustmentRefused(
                "amount",
                "above_computed",
                f"must not be above the computed benefit {format_yuan(computed)}",
                computed_fen=computed,
            )
        self._approve(officer, at, amount, computed, reason)

    def reject(self, officer: str, at: datetime, code: RejectionCode, text: str) -> None:
        self._require("reject")
        self.rejections = (Rejection(code, text),)
        self._move("reject", S.REJECTED, officer, at, f"{code.value}: {text}")
        self.events.append(
            ClaimRejected(
                claim_id=self.claim_id,
                member_id=self.member_id,
                reason_code=code,
                reason_text=text,
                automatic=False,
                rejected_by=officer,
                rejected_at=at,
            )
        )

    def return_for_documents(
        self, officer: str, at: datetime, missing: Sequence[str], note: str = ""
    ) -> None:
        self._require("return_for_documents")
        if not missing and not note.strip():
            raise DomainError(
                "missing_documents",
                "say_what_is_missing",
                "list the missing documents or write a note",
            )
        self._move("return_for_documents", S.RETURNED, officer, at, note or ", ".join(missing))
        self.events.append(
            ClaimReturned(
                claim_id=self.claim_id,
                member_id=self.member_id,
                missing_documents=list(missing),
                note=note,
                returned_by=officer,
                returned_at=at,
            )
        )

    def resubmit(
        self,
        by: str,
        at: datetime,
        documents: Sequence[str] = (),
        corrected: ClaimIntake | None = None,
    ) -> None:
        """Hand the claim back with the documents asked for (and corrected details, if any).
        It is assessed again; the first submission date still counts for the deadline."""
        self._require("resubmit")
        intake = corrected or self.intake
        if intake.member_id != self.member_id:
            raise DomainError(
                "corrected.member_id",
                "cannot_change_on_resubmission",
                "a claim stays the same member's; submit a new claim instead",
            )
        self.intake = intake.model_copy(
            update={
                "submitted_on": self.intake.submitted_on,
                "documents": (*intake.documents, *documents),
            }
        )
        self._move("resubmit", S.RESUBMITTED, by, at, ", ".join(documents))
        self.events.append(
            ClaimResubmitted(
                claim_id=self.claim_id,
                member_id=self.member_id,
                resubmitted_by=by,
                resubmitted_at=at,
                documents_added=list(documents),
            )
        )

    def await_funds(self, at: datetime) -> None:
        """The fund cannot pay yet; the claim waits for the backstop. Repeating it is harmless."""
        if self.state is S.AWAITING_FUNDS:
            return
        self._require("await_funds")
        self._move("await_funds", S.AWAITING_FUNDS, SYSTEM, at)
        self.events.append(
            ClaimAwaitingFunds(
                claim_id=self.claim_id,
                member_id=self.member_id,
                amount_fen=self._approved(),
                since=at,
            )
        )

    def pay(self, payment_reference: str, at: datetime, by: str = SYSTEM) -> None:
        self._require("pay")
        if not payment_reference.strip():
            raise DomainError("payment_reference", "required", "a payment needs its reference")
        self.payment_reference = payment_reference
        self._move("pay", S.PAID, by, at, payment_reference)
        self.events.append(
            ClaimPaid(
                claim_id=self.claim_id,
                member_id=self.member_id,
                amount_fen=self._approved(),
                payment_reference=payment_reference,
                paid_at=at,
            )
        )

    def payable(self) -> PayableClaim:
        """The claim as the fund queues it for payment (approved or awaiting funds only)."""
        if self.state not in ALLOWED["pay"] or self.approved_at is None:
            raise InvalidTransition(f"claim {self.claim_id}", "queue for payment", self.state)
        return PayableClaim(self.claim_id, self.member_id, self._approved(), self.approved_at)

    def _approve(
        self, officer: str, at: datetime, amount: Fen, computed: Fen, reason: str | None
    ) -> None:
        self.approved_amount, self.approved_at, self.adjustment_reason = amount, at, reason
        action = "approve" if reason is None else "adjust"
        self._move(action, S.APPROVED, officer, at, reason or format_yuan(amount))
        self.events.append(
            ClaimApproved(
                claim_id=self.claim_id,
                member_id=self.member_id,
                amount_fen=amount,
                computed_amount_fen=computed,
                adjustment_reason=reason,
                approved_by=officer,
                approved_at=at,
            )
        )

    def _computed(self) -> Fen:
        assert self.assessment is not None, "a claim under review has been assessed"
        return self.assessment.benefit

    def _approved(self) -> Fen:
        assert self.approved_amount is not None, "an approved claim has an amount"
        return self.approved_amount

    def _require(self, action: str) -> None:
        if self.state not in ALLOWED[action]:
            raise InvalidTransition(f"claim {self.claim_id}", action, self.state)

    def _move(self, action: str, to: ClaimState, by: str, at: datetime, note: str = "") -> None:
        self.history.append(ClaimStep(action, self.state, to, by, at, note))
        self.state = to


def year_to_date(claims: Iterable[Claim], member_id: str, scheme_year: int) -> YearToDate:
    """What a member has committed of a scheme year: the deductible taken off and the benefits
    approved (paid or not) on their claims that year. Pass the member's other claims."""
    deductible = benefits = 0
    for claim in claims:
        if (
            claim.member_id == member_id
            and claim.scheme_year == scheme_year
            and claim.state in COMMITTED
        ):
            deductible += claim.assessment.deductible_applied if claim.assessment else 0
            benefits += claim.approved_amount or 0
    return YearToDate(deductible_used=deductible, benefits_paid=benefits)
