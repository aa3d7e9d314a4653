"""Enrolment of a unit for a plan year: which of its staff are covered, from when to when, and the
contributions the unit paid for them.

One aggregate per unit and plan year, so a unit's cover, its contributions and its arrears change
together and stay consistent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from services.mutual_aid.eligibility import MemberStanding
from services.mutual_aid.errors import DuplicateEntry
from services.mutual_aid.money import Fen
from services.mutual_aid.plans import Plan, PlanStatus
from shared.errors import DomainError
from shared.events.base import EventData
from shared.events.mutual_aid import (
    ContributionReceived,
    CoverageEnded,
    MemberCovered,
    UnitEnrolled,
)

NOT_A_MEMBER = "not an active union member on the start date"


@dataclass(frozen=True)
class Coverage:
    member_id: str
    starts_on: date
    # The last day covered (inclusive): the plan's last day, or the day before the member left.
    ends_on: date
    # Start of the member's continuous cover (an earlier year's, if unbroken): the waiting period
    # runs from here, so a member renewing each year does not wait again.
    waiting_from: date
    ended_reason: str | None = None

    def covers(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


@dataclass(frozen=True)
class Contribution:
    receipt_number: str
    amount: Fen
    payer: str
    received_on: date
    period: str = ""


@dataclass(eq=False)
class Enrolment:
    enrolment_id: str
    unit_id: str
    plan_id: str
    scheme_year: int
    enrolled_on: date
    plan_starts_on: date
    plan_ends_on: date
    contribution_per_member: Fen
    coverages: dict[str, Coverage] = field(default_factory=dict)
    # Staff the unit listed who could not be covered, with the reason (shown to the unit).
    not_covered: dict[str, str] = field(default_factory=dict)
    contributions: list[Contribution] = field(default_factory=list)
    events: list[EventData] = field(default_factory=list, repr=False)

    @classmethod
    def enrol(
        cls,
        enrolment_id: str,
        unit_id: str,
        plan: Plan,
        staff: Iterable[str],
        enrolled_on: date,
        standings: Mapping[str, MemberStanding],
        continuous_since: Mapping[str, date] | None = None,
    ) -> Enrolment:
        """Enrol a unit with its staff list; only staff who are active members are covered."""
        if plan.status is not PlanStatus.PUBLISHED:
            raise DomainError("plan_id", "plan_not_published", "the plan is not published")
        if enrolled_on > plan.effective_to:
            raise DomainError("enrolled_on", "after_plan_end", "the plan year has ended by then")
        enrolment = cls(
            enrolment_id=enrolment_id,
            unit_id=unit_id,
            plan_id=plan.plan_id,
            scheme_year=plan.scheme_year,
            enrolled_on=enrolled_on,
            plan_starts_on=plan.effective_from,
            plan_ends_on=plan.effective_to,
            contribution_per_member=plan.contribution_per_member,
        )
        since = continuous_since or {}
        staff_list = list(dict.fromkeys(staff))  # a name listed twice is covered once
        for member_id in staff_list:
            enrolment.cover(member_id, enrolled_on, standings.get(member_id), since.get(member_id))
        enrolment.events.insert(
            0,
            UnitEnrolled(
                enrolment_id=enrolment_id,
                unit_id=unit_id,
                plan_id=plan.plan_id,
                scheme_year=plan.scheme_year,
                enrolled_on=enrolled_on,
                staff_count=len(staff_list),
                covered_count=len(enrolment.coverages),
                not_covered_member_ids=list(enrolment.not_covered),
            ),
        )
        return enrolment

    def cover(
        self,
        member_id: str,
        on: date,
        standing: MemberStanding | None,
        continuous_since: date | None = None,
    ) -> Coverage | None:
        """Cover one more member from ``on`` (or the plan start); None if they are not eligible.

        Covering a member already covered returns their cover unchanged (safe to repeat).
        """
        if member_id in self.coverages:
            return self.coverages[member_id]
        starts_on = max(on, self.plan_starts_on)
        if standing is None or not standing.active_on(starts_on):
            self.not_covered[member_id] = NOT_A_MEMBER
            return None
        self.not_covered.pop(member_id, None)
        waiting_from = min(continuous_since, starts_on) if continuous_since else starts_on
        coverage = Coverage(member_id, starts_on, self.plan_ends_on, waiting_from)
        self.coverages[member_id] = coverage
        self.events.append(
            MemberCovered(
                enrolment_id=self.enrolment_id,
                unit_id=self.unit_id,
                member_id=member_id,
                plan_id=self.plan_id,
                starts_on=starts_on,
                ends_on=self.plan_ends_on,
            )
        )
        return coverage

    def end_coverage(self, member_id: str, left_on: date, reason: str) -> None:
        """The member left the union on ``left_on``: cover ends the day before.

        Claims admitted before that stay valid. Ending again, or later, changes nothing.
        """
        coverage = self.coverages.get(member_id)
        if coverage is None:
            return
        last_day = left_on - timedelta(days=1)
        if last_day >= coverage.ends_on:
            return
        self.coverages[member_id] = replace(coverage, ends_on=last_day, ended_reason=reason)
        self.events.append(
            CoverageEnded(
                enrolment_id=self.enrolment_id,
                unit_id=self.unit_id,
                member_id=member_id,
                last_covered_on=last_day,
                reason=reason,
            )
        )

    def coverage_of(self, member_id: str) -> Coverage | None:
        return self.coverages.get(member_id)

    # Contributions: every member covered at any time in the plan year owes the year's
    # contribution; a member leaving mid-year is not refunded (the plan has no pro-rating rule).

    @property
    def expected(self) -> Fen:
        return len(self.coverages) * self.contribution_per_member

    @property
    def received(self) -> Fen:
        return sum(c.amount for c in self.contributions)

    @property
    def arrears(self) -> Fen:
        """Expected minus received; negative when the unit paid ahead."""
        return self.expected - self.received

    def receive_contribution(
        self, receipt_number: str, amount: Fen, payer: str, received_on: date, period: str = ""
    ) -> Contribution:
        if amount <= 0:
            raise DomainError("amount", "must_be_positive", "must be positive")
        if not receipt_number.strip():
            raise DomainError("receipt_number", "required", "a contribution needs its receipt")
        if any(c.receipt_number == receipt_number for c in self.contributions):
            raise DuplicateEntry(
                "receipt_number", "already_recorded", "this receipt is already recorded"
            )
        contribution = Contribution(receipt_number, amount, payer, received_on, period)
        self.contributions.append(contribution)
        self.events.append(
            ContributionReceived(
                enrolment_id=self.enrolment_id,
                unit_id=self.unit_id,
                receipt_number=receipt_number,
                amount_fen=amount,
                payer=payer,
                received_on=received_on,
                arrears_fen=self.arrears,
            )
        )
        return contribution
