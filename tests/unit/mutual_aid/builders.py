"""Test data in the union's words: the standard plan of the worked examples, and ready claims.

The standard plan (2024) used by the worked examples:
    deductible 1,000.00 a year; bands 0–10,000 at 50%, 10,000–50,000 at 60%, above 50,000 at 70%;
    per-claim ceiling 50,000.00; yearly ceiling 80,000.00; waiting period 90 days (accidents
    exempt); claims within 180 days of discharge; contribution 120.00 per member.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from services.mutual_aid.benefits import YearToDate
from services.mutual_aid.claims import Claim
from services.mutual_aid.eligibility import ActivePeriod, MemberStanding
from services.mutual_aid.enrolment import Coverage
from services.mutual_aid.intake import ClaimIntake, Submitter
from services.mutual_aid.money import yuan
from services.mutual_aid.plans import BenefitRules, Plan, RatioBand

YEAR = 2024


def bands() -> tuple[RatioBand, ...]:
    return (
        RatioBand(lower=0, upper=yuan("10000"), ratio=Decimal("0.5")),
        RatioBand(lower=yuan("10000"), upper=yuan("50000"), ratio=Decimal("0.6")),
        RatioBand(lower=yuan("50000"), upper=None, ratio=Decimal("0.7")),
    )


def rules(**overrides: Any) -> BenefitRules:
    values: dict[str, Any] = {
        "deductible": yuan("1000"),
        "bands": bands(),
        "per_claim_ceiling": yuan("50000"),
        "yearly_ceiling": yuan("80000"),
        "outside_catalogue_counts": False,
        "waiting_period_days": 90,
        "accident_exempt_from_waiting": True,
        "submission_deadline_days": 180,
    }
    values.update(overrides)
    return BenefitRules(**values)


def draft_plan(**overrides: Any) -> Plan:
    values: dict[str, Any] = {
        "plan_id": f"plan-{YEAR}-v1",
        "scheme_year": YEAR,
        "version": 1,
        "effective_from": date(YEAR, 1, 1),
        "effective_to": date(YEAR, 12, 31),
        "contribution_per_member": yuan("120"),
        "rules": rules(),
    }
    values.update(overrides)
    return Plan(**values)


def published_plan(**overrides: Any) -> Plan:
    plan = draft_plan(**overrides)
    plan.publish(date(YEAR - 1, 12, 1))
    plan.events.clear()
    return plan


def active_since(member_id: str, day: date, until: date | None = None) -> MemberStanding:
    return MemberStanding(member_id, [ActivePeriod(day, until)])


def coverage(member_id: str = "m-1", starts_on: date = date(YEAR, 1, 1)) -> Coverage:
    return Coverage(member_id, starts_on, date(YEAR, 12, 31), waiting_from=starts_on)


def intake(**overrides: Any) -> ClaimIntake:
    """A claim admitted 2024-06-03, discharged 2024-06-10: 20,000.00 spent, basic medical insurance
    paid 12,000.00, self-paid 6,000.00 within the catalogue and 2,000.00 outside it."""
    values: dict[str, Any] = {
        "member_id": "m-1",
        "unit_id": "unit-1",
        "admission_date": date(YEAR, 6, 3),
        "discharge_date": date(YEAR, 6, 10),
        "hospital": "亳州市人民医院",
        "invoice_numbers": ["INV-001"],
        "total_expense": yuan("20000"),
        "paid_by_basic_insurance": yuan("12000"),
        "self_paid_in_catalogue": yuan("6000"),
        "self_paid_outside_catalogue": yuan("2000"),
        "diagnosis": "appendicitis",
        "diagnosis_code": "K35.2",
        "documents": ["doc-invoice", "doc-discharge-summary"],
        "submitted_by": Submitter(kind="unit", id="unit-1"),
        "submitted_on": date(YEAR, 6, 20),
        "accident": False,
    }
    values.update(overrides)
    return ClaimIntake(**values)


def at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour))


def claim_under_review(claim_id: str = "c-1", **overrides: Any) -> Claim:
    claim = Claim.submit(claim_id, intake(**overrides), at(date(YEAR, 6, 20)))
    claim.assess(
        plan=published_plan(),
        coverage=coverage(claim.member_id),
        other_invoices=(),
        year_to_date=YearToDate(),
        at=at(date(YEAR, 6, 20), 10),
    )
    return claim
