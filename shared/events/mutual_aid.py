"""Events the medical mutual-aid service publishes: plans, cover, contributions, claims, the fund
and the finance backstop.

Money is always an integer of fen in a field ending ``_fen`` (1 yuan = 100 fen), never a float, so a
consumer cannot mistake units. Every claim event carries ``member_id`` so notifications can address
the member without asking the mutual-aid service who made the claim.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from pydantic import Field

from shared.events.base import EventData, event

SOURCE = "gonghui/mutual_aid"


class PlanEvent(EventData):
    source: ClassVar[str] = SOURCE
    plan_id: str

    def subject(self) -> str:
        return self.plan_id


@event
class PlanPublished(PlanEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.plan.published"
    scheme_year: int
    # Not ``version``: that is the event schema's version on every event class.
    plan_version: int
    effective_from: date
    effective_to: date
    contribution_per_member_fen: int
    published_on: date


class EnrolmentEvent(EventData):
    """Enrolment of one unit for one plan year: the aggregate that holds its members' cover and its
    contributions, so cover, contributions and arrears of a unit stay in order on one key."""

    source: ClassVar[str] = SOURCE
    enrolment_id: str
    unit_id: str

    def subject(self) -> str:
        return self.enrolment_id


@event
class UnitEnrolled(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.unit.enrolled"
    plan_id: str
    scheme_year: int
    enrolled_on: date
    staff_count: int
    covered_count: int
    # Staff on the list who could not be covered (not an active union member on the start date).
    not_covered_member_ids: list[str]


@event
class MemberCovered(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.member.covered"
    member_id: str
    plan_id: str
    starts_on: date
    ends_on: date


@event
class CoverageEnded(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.coverage.ended"
    member_id: str
    # The last day covered: claims admitted on or before it stay valid.
    last_covered_on: date
    reason: str


@event
class ContributionReceived(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.contribution.received"
    receipt_number: str
    amount_fen: int
    payer: str
    received_on: date
    # What the unit still owes for the plan year after this payment (negative: paid ahead).
    arrears_fen: int


class ClaimEvent(EventData):
    source: ClassVar[str] = SOURCE
    claim_id: str
    member_id: str

    def subject(self) -> str:
        return self.claim_id


@event
class ClaimSubmitted(ClaimEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.claim.submitted"
    unit_id: str
    admission_date: date
    discharge_date: date
    hospital: str
    total_expense_fen: int
    submitted_by_kind: str
    submitted_by: str
    submitted_at: datetime


@event
class ClaimResubmitted(ClaimEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.claim.resubmitted"
    resubmitted_by: str
    resubmitted_at: datetime
    documents_added: list[str]


@event
class ClaimRejected(ClaimEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.claim.rejected"
    reason_code: str
    reason_text: str
    # True when the automatic checks rejected it, False when an officer did.
    automatic: bool
    rejected_by: str
    rejected_at: datetime
    # Further reasons the automatic checks found, after the first one.
    other_reason_codes: list[str] = Field(default_factory=list)


@event
class ClaimApproved(ClaimEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.claim.approved"
    amount_fen: int
    computed_amount_fen: int
    # Set when an officer adjusted the amount below the computed benefit.
    adjustment_reason: str | None = None
    approved_by: str
    approved_at: datetime


@event
class ClaimReturned(ClaimEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.claim.returned"
    missing_documents: list[str]
    note: str
    returned_by: str
    returned_at: datetime


@event
class ClaimAwaitingFunds(ClaimEvent):
    """Approved but the fund cannot pay yet: finance has been asked to cover the shortfall."""

    type: ClassVar[str] = "gonghui.mutual_aid.claim.awaiting_funds"
    amount_fen: int
    since: datetime


@event
class ClaimPaid(ClaimEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.claim.paid"
    amount_fen: int
    payment_reference: str
    paid_at: datetime


class BackstopEvent(EventData):
    source: ClassVar[str] = SOURCE
    request_id: str

    def subject(self) -> str:
        return self.request_id


@event
class BackstopRequested(BackstopEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.backstop.requested"
    amount_fen: int
    claim_ids: list[str]
    fund_balance_fen: int
    requested_on: date


@event
class BackstopGranted(BackstopEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.backstop.granted"
    amount_fen: int
    reference: str
    granted_on: date
    outstanding_fen: int


@event
class BackstopReminded(BackstopEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.backstop.reminded"
    outstanding_fen: int
    reminded_on: date
    reminder_number: int
    days_open: int


@event
class BackstopEscalated(BackstopEvent):
    type: ClassVar[str] = "gonghui.mutual_aid.backstop.escalated"
    outstanding_fen: int
    escalated_on: date
    days_open: int


@event
class BackstopWithdrawn(BackstopEvent):
    """Finance need not send ``amount_fen`` of the request any more: contributions paid the claims
    first. ``outstanding_fen`` is what is still asked for (0: the request is closed)."""

    type: ClassVar[str] = "gonghui.mutual_aid.backstop.withdrawn"
    amount_fen: int
    outstanding_fen: int
    withdrawn_on: date


@event
class FundBalanceLow(EventData):
    type: ClassVar[str] = "gonghui.mutual_aid.fund.balance_low"
    source: ClassVar[str] = SOURCE
    fund_id: str
    balance_fen: int
    threshold_fen: int
    on: date

    def subject(self) -> str:
        return self.fund_id
