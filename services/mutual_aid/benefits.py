"""The benefit formula: a pure function from a claim's self-paid amounts, the plan's rules and the
member's year so far, to a benefit in fen with a step-by-step explanation.

Order of the steps (each recorded as a ``BenefitStep``):

1. eligible expense: the self-paid part within the medical-insurance catalogue (what basic medical
   insurance left to the member); the outside-catalogue part only if the plan says it counts;
2. the deductible still open this year is taken off (it carries over the year's claims);
3. what is left is paid band by band, each band's part at its ratio, rounded half-up to the fen
   (see ``money.apply_ratio``);
4. the sum is capped by the per-claim ceiling, then by what remains of the yearly ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.mutual_aid.money import Fen, apply_ratio, format_yuan
from services.mutual_aid.plans import BenefitRules


@dataclass(frozen=True)
class YearToDate:
    """What a member has already used of this scheme year: the deductible taken off earlier claims
    and the benefits committed to them (approved or paid, so two claims cannot both use the same
    room under the yearly ceiling)."""

    deductible_used: Fen = 0
    benefits_paid: Fen = 0


@dataclass(frozen=True)
class BenefitStep:
    """One line of the explanation. ``rule`` is a stable code; ``text`` is for people."""

    rule: str
    base: Fen
    amount: Fen
    text: str


@dataclass(frozen=True)
class BenefitCalculation:
    eligible_expense: Fen
    deductible_applied: Fen
    banded: Fen
    benefit: Fen
    steps: tuple[BenefitStep, ...]

    def explanation(self) -> list[str]:
        return [step.text for step in self.steps]


def calculate_benefit(
    rules: BenefitRules,
    *,
    self_paid_in_catalogue: Fen,
    self_paid_outside_catalogue: Fen = 0,
    year_to_date: YearToDate = YearToDate(),  # frozen, so one shared default is safe
) -> BenefitCalculation:
    if self_paid_in_catalogue < 0 or self_paid_outside_catalogue < 0:
        raise ValueError("self-paid amounts must not be negative")
    steps: list[BenefitStep] = []

    eligible = self_paid_in_catalogue
    note = ""
    if self_paid_outside_catalogue and rules.outside_catalogue_counts:
        eligible += self_paid_outside_catalogue
        note = f" (including {format_yuan(self_paid_outside_catalogue)} outside the catalogue)"
    elif self_paid_outside_catalogue:
        note = f" ({format_yuan(self_paid_outside_catalogue)} outside the catalogue not counted)"
    steps.append(
        BenefitStep(
            "eligible_expense",
            self_paid_in_catalogue + self_paid_outside_catalogue,
            eligible,
            f"eligible expense {format_yuan(eligible)}{note}",
        )
    )

    deductible_open = max(0, rules.deductible - year_to_date.deductible_used)
    deductible = min(eligible, deductible_open)
    steps.append(
        BenefitStep(
            "deductible",
            eligible,
            deductible,
            f"deductible applied {format_yuan(deductible)} "
            f"(remaining this year {format_yuan(deductible_open - deductible)})",
        )
    )

    base = eligible - deductible
    banded = 0
    for band in rules.bands:
        part = band.part_of(base)
        if part <= 0:
            continue
        paid = apply_ratio(part, band.ratio)
        banded += paid
        steps.append(
            BenefitStep(
                "band", part, paid, f"{band.label()}: {format_yuan(paid)} on {format_yuan(part)}"
            )
        )

    benefit = banded
    if benefit > rules.per_claim_ceiling:
        steps.append(
            BenefitStep(
                "per_claim_ceiling",
                benefit,
                rules.per_claim_ceiling,
                f"capped by per-claim ceiling {format_yuan(rules.per_claim_ceiling)}",
            )
        )
        benefit = rules.per_claim_ceiling
    yearly_remaining = max(0, rules.yearly_ceiling - year_to_date.benefits_paid)
    if benefit > yearly_remaining:
        steps.append(
            BenefitStep(
                "yearly_ceiling",
                benefit,
                yearly_remaining,
                f"capped by yearly remaining {format_yuan(yearly_remaining)} "
                f"(yearly ceiling {format_yuan(rules.yearly_ceiling)}, "
                f"already {format_yuan(year_to_date.benefits_paid)})",
            )
        )
        benefit = yearly_remaining
    steps.append(BenefitStep("benefit", banded, benefit, f"benefit {format_yuan(benefit)}"))
    return BenefitCalculation(
        eligible_expense=eligible,
        deductible_applied=deductible,
        banded=banded,
        benefit=benefit,
        steps=tuple(steps),
    )
