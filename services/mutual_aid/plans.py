"""Plans: one per scheme year, versioned, whose benefit rules are data checked when published.

A plan is drafted freely (a draft may be half-filled) and checked in full by ``publish``: every
problem is reported at once, each naming its field, so an officer fixes the form in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from services.mutual_aid.errors import InvalidTransition, PlanInvalid, PlanProblem
from services.mutual_aid.money import Fen, FenAmount, format_bound, format_ratio
from shared.events.base import EventData
from shared.events.mutual_aid import PlanPublished


class RatioBand(BaseModel):
    """The part of the reimbursable amount between ``lower`` and ``upper`` is paid at ``ratio``.

    Bands work like income-tax brackets: each band's part is paid at that band's ratio only.
    ``upper`` is None for the open-ended top band.
    """

    model_config = ConfigDict(frozen=True)

    lower: FenAmount
    upper: FenAmount | None = None
    ratio: Decimal

    def part_of(self, base: Fen) -> Fen:
        top = base if self.upper is None else min(base, self.upper)
        return max(0, top - self.lower)

    def label(self) -> str:
        if self.upper is None:
            span = f"above {format_bound(self.lower)}"
        else:
            span = f"{format_bound(self.lower)}–{format_bound(self.upper)}"
        return f"band {span} at {format_ratio(self.ratio)}"


class BenefitRules(BaseModel):
    """The benefit rules of a plan, all per member. Amounts in fen."""

    model_config = ConfigDict(frozen=True)

    # Paid by the member first, once per scheme year (carried over the year's claims).
    deductible: FenAmount
    bands: tuple[RatioBand, ...]
    per_claim_ceiling: FenAmount
    yearly_ceiling: FenAmount
    # Only the self-paid part within the medical-insurance catalogue counts, unless this says so.
    outside_catalogue_counts: bool = False
    waiting_period_days: int = 0
    # An accident cannot be foreseen, so joining to claim for it is not a risk: no waiting period.
    accident_exempt_from_waiting: bool = True
    submission_deadline_days: int

    def problems(self, prefix: str = "rules") -> list[PlanProblem]:
        found: list[PlanProblem] = []

        def problem(name: str, code: str, message: str) -> None:
            found.append(PlanProblem(f"{prefix}.{name}", code, message))

        if self.deductible < 0:
            problem("deductible", "must_not_be_negative", "must not be negative")
        found += _band_problems(self.bands, f"{prefix}.bands")
        if self.per_claim_ceiling <= 0:
            problem("per_claim_ceiling", "must_be_positive", "must be positive")
        if self.yearly_ceiling <= 0:
            problem("yearly_ceiling", "must_be_positive", "must be positive")
        elif self.per_claim_ceiling > self.yearly_ceiling:
            problem(
                "per_claim_ceiling", "above_yearly_ceiling", "must not exceed the yearly ceiling"
            )
        if self.waiting_period_days < 0:
            problem("waiting_period_days", "must_not_be_negative", "must not be negative")
        if self.submission_deadline_days <= 0:
            problem("submission_deadline_days", "must_be_positive", "must be positive")
        return found


def _band_problems(bands: tuple[RatioBand, ...], prefix: str) -> list[PlanProblem]:
    if not bands:
        return [PlanProblem(prefix, "no_bands", "at least one band is needed")]
    found: list[PlanProblem] = []
    if bands[0].lower != 0:
        found.append(
            PlanProblem(
                f"{prefix}[0].lower", "first_band_not_at_zero", "the first band must start at 0"
            )
        )
    for i, band in enumerate(bands):
        here = f"{prefix}[{i}]"
        if not Decimal(0) <= band.ratio <= Decimal(1):
            found.append(
                PlanProblem(f"{here}.ratio", "ratio_out_of_range", "must be between 0 and 1")
            )
        is_top = i == len(bands) - 1
        if band.upper is None and not is_top:
            found.append(
                PlanProblem(
                    f"{here}.upper", "open_band_not_top", "only the top band may be open-ended"
                )
            )
        if band.upper is not None and is_top:
            # Otherwise amounts above the top band would silently get no ratio at all.
            found.append(
                PlanProblem(f"{here}.upper", "top_band_not_open", "the top band must be open-ended")
            )
        if band.upper is not None and band.upper <= band.lower:
            found.append(
                PlanProblem(
                    f"{here}.upper", "band_not_increasing", "must be above lower (bands increase)"
                )
            )
        if i > 0 and bands[i - 1].upper is not None and band.lower != bands[i - 1].upper:
            found.append(
                PlanProblem(
                    f"{here}.lower",
                    "bands_not_contiguous",
                    "must equal the previous band's upper (contiguous)",
                )
            )
    return found


class PlanStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


@dataclass(eq=False)
class Plan:
    """One version of the plan of a scheme year. ``effective_to`` is the last day in effect."""

    plan_id: str
    scheme_year: int
    version: int
    effective_from: date
    effective_to: date
    contribution_per_member: Fen
    rules: BenefitRules
    status: PlanStatus = PlanStatus.DRAFT
    published_on: date | None = None
    events: list[EventData] = field(default_factory=list, repr=False)

    def problems(self) -> list[PlanProblem]:
        found: list[PlanProblem] = []
        if not self.plan_id.strip():
            found.append(PlanProblem("plan_id", "required", "must not be empty"))
        if self.version < 1:
            found.append(PlanProblem("version", "must_be_positive", "must be 1 or more"))
        if self.effective_from.year != self.scheme_year:
            found.append(
                PlanProblem("effective_from", "outside_scheme_year", "must fall in the scheme year")
            )
        if self.effective_to < self.effective_from:
            found.append(
                PlanProblem(
                    "effective_to", "before_effective_from", "must not be before effective_from"
                )
            )
        if self.contribution_per_member <= 0:
            found.append(
                PlanProblem("contribution_per_member", "must_be_positive", "must be positive")
            )
        return found + self.rules.problems()

    def publish(self, on: date) -> None:
        if self.status is not PlanStatus.DRAFT:
            raise InvalidTransition(f"plan {self.plan_id}", "publish", self.status)
        problems = self.problems()
        if problems:
            raise PlanInvalid(problems)
        self.status = PlanStatus.PUBLISHED
        self.published_on = on
        self.events.append(
            PlanPublished(
                plan_id=self.plan_id,
                scheme_year=self.scheme_year,
                plan_version=self.version,
                effective_from=self.effective_from,
                effective_to=self.effective_to,
                contribution_per_member_fen=self.contribution_per_member,
                published_on=on,
            )
        )

    def in_effect_on(self, day: date) -> bool:
        return (
            self.status is PlanStatus.PUBLISHED and self.effective_from <= day <= self.effective_to
        )

    def revise(self, plan_id: str, effective_from: date, rules: BenefitRules | None = None) -> Plan:
        """A new draft version of this plan, in effect from ``effective_from`` once published.

        A published plan is never edited: claims already valued under it must stay explainable.
        """
        return replace(
            self,
            plan_id=plan_id,
            version=self.version + 1,
            effective_from=effective_from,
            rules=rules or self.rules,
            status=PlanStatus.DRAFT,
            published_on=None,
            events=[],
        )


def plan_in_force(plans: Iterable[Plan], on: date) -> Plan | None:
    """The published plan that applies to a day: the highest version whose period covers it."""
    candidates = [plan for plan in plans if plan.in_effect_on(on)]
    return max(candidates, key=lambda plan: (plan.scheme_year, plan.version), default=None)
