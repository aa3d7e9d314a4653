"""The claim's life: automatic checks, an officer's review, waiting for funds, payment.

The standard claim (builders.intake): 6,000.00 self-paid within the catalogue, 2,000.00 outside →
6,000 − 1,000 deductible = 5,000 × 50% = 2,500.00 computed.
"""

from __future__ import annotations

from datetime import date

import pytest

from services.mutual_aid.benefits import YearToDate, calculate_benefit
from services.mutual_aid.claims import Claim, ClaimState, year_to_date
from services.mutual_aid.errors import AdjustmentRefused, InvalidTransition
from services.mutual_aid.intake import RejectionCode
from services.mutual_aid.money import yuan
from shared.errors import DomainError
from shared.events.mutual_aid import (
    ClaimApproved,
    ClaimAwaitingFunds,
    ClaimPaid,
    ClaimRejected,
    ClaimResubmitted,
    ClaimReturned,
    ClaimSubmitted,
)
from tests.unit.mutual_aid.builders import (
    YEAR,
    at,
    claim_under_review,
    coverage,
    intake,
    published_plan,
    rules,
)

DAY = date(YEAR, 6, 25)


def test_a_passing_claim_goes_to_review_valued() -> None:
    claim = claim_under_review()
    assert claim.state is ClaimState.UNDER_REVIEW
    assert claim.assessment is not None
    assert claim.assessment.benefit == yuan("2500")
    assert claim.scheme_year == YEAR
    [submitted] = claim.events
    assert isinstance(submitted, ClaimSubmitted)
    assert submitted.subject() == "c-1"
    assert submitted.member_id == "m-1"


def test_a_failing_claim_is_rejected_automatically_with_its_codes() -> None:
    claim = Claim.submit("c-2", intake(total_expense=1), at(DAY))
    claim.assess(
        plan=published_plan(),
        coverage=None,
        other_invoices=(),
        year_to_date=YearToDate(),
        at=at(DAY),
    )
    assert claim.state is ClaimState.AUTO_REJECTED
    assert claim.assessment is None
    rejected = claim.events[-1]
    assert isinstance(rejected, ClaimRejected)
    assert rejected.automatic
    assert rejected.reason_code == RejectionCode.NOT_COVERED
    assert rejected.other_reason_codes == [RejectionCode.INCONSISTENT_AMOUNTS]
    assert rejected.member_id == "m-1"
    with pytest.raises(InvalidTransition):
        claim.approve("officer-1", at(DAY))


def test_approve_then_pay() -> None:
    claim = claim_under_review()
    claim.approve("officer-1", at(DAY))
    claim.pay("BANK-42", at(DAY, 15))
    assert claim.state is ClaimState.PAID
    approved, paid = claim.events[-2:]
    assert isinstance(approved, ClaimApproved)
    assert (approved.amount_fen, approved.computed_amount_fen) == (yuan("2500"), yuan("2500"))
    assert approved.adjustment_reason is None
    assert isinstance(paid, ClaimPaid)
    assert (paid.amount_fen, paid.payment_reference) == (yuan("2500"), "BANK-42")
    assert [(s.action, s.to_state, s.by) for s in claim.history] == [
        ("submit", ClaimState.SUBMITTED, "unit-1"),
        ("assess", ClaimState.UNDER_REVIEW, "system"),
        ("approve", ClaimState.APPROVED, "officer-1"),
        ("pay", ClaimState.PAID, "system"),
    ]
    assert claim.history[2].at == at(DAY)


def test_approval_can_use_a_fresh_valuation() -> None:
    claim = claim_under_review()
    # another claim of the member used the deductible meanwhile: 6,000 × 50% = 3,000.00
    fresh = calculate_benefit(
        rules(),
        self_paid_in_catalogue=yuan("6000"),
        year_to_date=YearToDate(deductible_used=yuan("1000"), benefits_paid=yuan("100")),
    )
    claim.approve("officer-1", at(DAY), revalued=fresh)
    assert claim.approved_amount == yuan("3000")


def test_adjust_needs_a_reason_and_never_exceeds_the_computed_benefit() -> None:
    claim = claim_under_review()
    with pytest.raises(AdjustmentRefused) as too_much:
        claim.adjust("officer-1", at(DAY), yuan("2500.01"), "typo")
    assert too_much.value.field == "amount"
    with pytest.raises(DomainError) as no_reason:
        claim.adjust("officer-1", at(DAY), yuan("2000"), " ")
    assert no_reason.value.field == "reason"
    assert claim.state is ClaimState.UNDER_REVIEW
    claim.adjust("officer-1", at(DAY), yuan("2000"), "one invoice is for a private room")
    assert claim.state is ClaimState.APPROVED
    approved = claim.events[-1]
    assert isinstance(approved, ClaimApproved)
    assert approved.amount_fen == yuan("2000")
    assert approved.computed_amount_fen == yuan("2500")
    assert approved.adjustment_reason == "one invoice is for a private room"
    assert claim.history[-1].action == "adjust"


def test_an_officer_rejects_with_a_code() -> None:
    claim = claim_under_review()
    claim.reject("officer-1", at(DAY), RejectionCode.DOCUMENTS_INVALID, "invoice not stamped")
    assert claim.state is ClaimState.REJECTED
    rejected = claim.events[-1]
    assert isinstance(rejected, ClaimRejected)
    assert not rejected.automatic
    assert (rejected.reason_code, rejected.rejected_by) == ("DOCUMENTS_INVALID", "officer-1")
    with pytest.raises(InvalidTransition):
        claim.pay("X", at(DAY))


def test_returned_for_documents_then_resubmitted_and_assessed_again() -> None:
    claim = claim_under_review()
    claim.return_for_documents("officer-1", at(DAY), ["discharge summary"], "page 2 missing")
    assert claim.state is ClaimState.RETURNED
    returned = claim.events[-1]
    assert isinstance(returned, ClaimReturned)
    assert returned.missing_documents == ["discharge summary"]
    with pytest.raises(InvalidTransition):
        claim.approve("officer-1", at(DAY))

    # resubmitted months later: the first submission date still counts for the deadline
    corrected = intake(submitted_on=date(YEAR + 1, 3, 1), hospital="亳州市中医院")
    claim.resubmit("unit-1", at(date(YEAR + 1, 3, 1)), ["doc-summary-p2"], corrected)
    assert claim.state is ClaimState.RESUBMITTED
    assert claim.intake.submitted_on == date(YEAR, 6, 20)
    assert claim.intake.hospital == "亳州市中医院"
    assert claim.intake.documents[-1] == "doc-summary-p2"
    assert isinstance(claim.events[-1], ClaimResubmitted)

    claim.assess(
        plan=published_plan(),
        coverage=coverage(),
        other_invoices=(),
        year_to_date=YearToDate(),
        at=at(date(YEAR + 1, 3, 1)),
    )
    assert claim.state is ClaimState.UNDER_REVIEW
    assert [s.to_state for s in claim.history] == [
        ClaimState.SUBMITTED,
        ClaimState.UNDER_REVIEW,
        ClaimState.RETURNED,
        ClaimState.RESUBMITTED,
        ClaimState.UNDER_REVIEW,
    ]


def test_a_return_says_what_is_missing_and_the_member_cannot_change() -> None:
    claim = claim_under_review()
    with pytest.raises(DomainError) as unsaid:
        claim.return_for_documents("officer-1", at(DAY), [], "")
    assert (unsaid.value.field, unsaid.value.code) == ("missing_documents", "say_what_is_missing")
    claim.return_for_documents("officer-1", at(DAY), ["invoice"])
    with pytest.raises(DomainError) as refused:
        claim.resubmit("unit-1", at(DAY), corrected=intake(member_id="m-2"))
    assert (refused.value.field, refused.value.code) == (
        "corrected.member_id",
        "cannot_change_on_resubmission",
    )


def test_approved_claim_waits_for_funds_then_is_paid() -> None:
    claim = claim_under_review()
    claim.approve("officer-1", at(DAY))
    claim.await_funds(at(DAY, 10))
    claim.await_funds(at(DAY, 11))  # asked again: nothing new
    waiting = [e for e in claim.events if isinstance(e, ClaimAwaitingFunds)]
    assert len(waiting) == 1 and waiting[0].amount_fen == yuan("2500")
    payable = claim.payable()
    assert (payable.claim_id, payable.member_id, payable.amount) == ("c-1", "m-1", yuan("2500"))
    assert payable.approved_at == at(DAY)
    claim.pay("BANK-43", at(date(YEAR, 7, 10)))
    assert claim.state is ClaimState.PAID
    with pytest.raises(InvalidTransition):
        claim.payable()
    with pytest.raises(InvalidTransition):
        claim.await_funds(at(DAY))


@pytest.mark.parametrize(
    "action",
    ["approve", "reject", "return", "resubmit", "await_funds", "pay"],
)
def test_a_submitted_claim_must_be_assessed_first(action: str) -> None:
    claim = Claim.submit("c-1", intake(), at(DAY))
    steps = {
        "approve": lambda: claim.approve("o", at(DAY)),
        "reject": lambda: claim.reject("o", at(DAY), RejectionCode.OTHER, "x"),
        "return": lambda: claim.return_for_documents("o", at(DAY), ["x"]),
        "resubmit": lambda: claim.resubmit("u", at(DAY)),
        "await_funds": lambda: claim.await_funds(at(DAY)),
        "pay": lambda: claim.pay("ref", at(DAY)),
    }
    with pytest.raises(InvalidTransition):
        steps[action]()
    assert claim.state is ClaimState.SUBMITTED


def test_year_to_date_counts_committed_claims_of_the_member_and_year() -> None:
    approved = claim_under_review("c-1")
    approved.approve("o", at(DAY))  # 1,000.00 deductible, 2,500.00 benefit
    paid = claim_under_review(
        "c-2",
        invoice_numbers=["INV-2"],
        paid_by_basic_insurance=yuan("16000"),
        self_paid_in_catalogue=yuan("2000"),
    )
    paid.adjust("o", at(DAY), yuan("300"), "partly cosmetic")  # computed with a fresh deductible
    paid.pay("B-1", at(DAY))
    under_review = claim_under_review("c-3", invoice_numbers=["INV-3"])
    someone_else = claim_under_review("c-4", member_id="m-2", invoice_numbers=["INV-4"])
    someone_else.approve("o", at(DAY))
    claims = [approved, paid, under_review, someone_else]
    ytd = year_to_date(claims, "m-1", YEAR)
    assert ytd == YearToDate(deductible_used=yuan("2000"), benefits_paid=yuan("2800"))
    assert year_to_date(claims, "m-1", YEAR + 1) == YearToDate()
