"""The benefit formula, with worked examples done by hand in the comments.

Standard plan (see builders): deductible 1,000.00; 0–10,000 at 50%, 10,000–50,000 at 60%, above at
70%; per-claim ceiling 50,000.00; yearly ceiling 80,000.00.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.mutual_aid.benefits import YearToDate, calculate_benefit
from services.mutual_aid.money import apply_ratio, yuan
from services.mutual_aid.plans import RatioBand
from tests.unit.mutual_aid.builders import rules


def test_two_bands_worked_example_with_explanation() -> None:
    # eligible: 12,345.67 within the catalogue; 2,000.00 outside does not count
    # deductible: 1,000.00 → 11,345.67 left
    # band 0–10,000 at 50%:   10,000.00 × 0.5 = 5,000.00
    # band 10,000–50,000 at 60%: 1,345.67 × 0.6 = 807.402 → 807.40
    # benefit: 5,807.40
    result = calculate_benefit(
        rules(),
        self_paid_in_catalogue=yuan("12345.67"),
        self_paid_outside_catalogue=yuan("2000"),
    )
    assert result.eligible_expense == yuan("12345.67")
    assert result.deductible_applied == yuan("1000")
    assert result.benefit == yuan("5807.40")
    assert result.explanation() == [
        "eligible expense 12,345.67 (2,000.00 outside the catalogue not counted)",
        "deductible applied 1,000.00 (remaining this year 0.00)",
        "band 0–10,000 at 50%: 5,000.00 on 10,000.00",
        "band 10,000–50,000 at 60%: 807.40 on 1,345.67",
        "benefit 5,807.40",
    ]
    assert [step.rule for step in result.steps] == [
        "eligible_expense",
        "deductible",
        "band",
        "band",
        "benefit",
    ]


def test_three_bands_under_the_per_claim_ceiling() -> None:
    # eligible 81,000.00 − deductible 1,000.00 = 80,000.00
    # 10,000 × 50% = 5,000; 40,000 × 60% = 24,000; 30,000 × 70% = 21,000 → 50,000.00,
    # exactly the per-claim ceiling, so no cap step
    result = calculate_benefit(rules(), self_paid_in_catalogue=yuan("81000"))
    assert [s.amount for s in result.steps if s.rule == "band"] == [
        yuan("5000"),
        yuan("24000"),
        yuan("21000"),
    ]
    assert result.benefit == yuan("50000")
    assert "per_claim_ceiling" not in [s.rule for s in result.steps]
    assert result.explanation()[4] == "band above 50,000 at 70%: 21,000.00 on 30,000.00"


def test_capped_by_per_claim_ceiling() -> None:
    # eligible 91,000.00 − 1,000.00 = 90,000.00 → 5,000 + 24,000 + 28,000 = 57,000.00
    # per-claim ceiling 50,000.00 → 50,000.00
    result = calculate_benefit(rules(), self_paid_in_catalogue=yuan("91000"))
    assert result.banded == yuan("57000")
    assert result.benefit == yuan("50000")
    assert "capped by per-claim ceiling 50,000.00" in result.explanation()


def test_capped_by_what_is_left_of_the_yearly_ceiling() -> None:
    # the deductible was used up by earlier claims, 75,000.00 already paid this year:
    # 41,000.00 → 10,000 × 50% + 31,000 × 60% = 5,000 + 18,600 = 23,600.00 banded
    # yearly ceiling 80,000.00 − 75,000.00 = 5,000.00 left → 5,000.00
    result = calculate_benefit(
        rules(),
        self_paid_in_catalogue=yuan("41000"),
        year_to_date=YearToDate(deductible_used=yuan("1000"), benefits_paid=yuan("75000")),
    )
    assert result.deductible_applied == 0
    assert result.banded == yuan("23600")
    assert result.benefit == yuan("5000")
    assert result.steps[-2].rule == "yearly_ceiling"
    assert result.steps[-2].text.startswith("capped by yearly remaining 5,000.00")


def test_both_ceilings_apply_in_order() -> None:
    # 91,000 → 57,000 banded → per-claim 50,000 → yearly left 30,000 (50,000 used)
    result = calculate_benefit(
        rules(),
        self_paid_in_catalogue=yuan("91000"),
        year_to_date=YearToDate(deductible_used=yuan("1000"), benefits_paid=yuan("50000")),
    )
    assert [s.rule for s in result.steps][-3:] == ["per_claim_ceiling", "yearly_ceiling", "benefit"]
    assert result.benefit == yuan("30000")


def test_deductible_carries_over_the_claims_of_a_year() -> None:
    # first claim: 600.00 eligible, all of it goes to the deductible; 400.00 of it left
    first = calculate_benefit(rules(), self_paid_in_catalogue=yuan("600"))
    assert first.deductible_applied == yuan("600")
    assert first.benefit == 0
    assert first.explanation()[1] == "deductible applied 600.00 (remaining this year 400.00)"
    # second claim: 2,000.00 eligible, only the 400.00 left is taken off → 1,600 × 50% = 800.00
    second = calculate_benefit(
        rules(),
        self_paid_in_catalogue=yuan("2000"),
        year_to_date=YearToDate(deductible_used=first.deductible_applied, benefits_paid=0),
    )
    assert second.deductible_applied == yuan("400")
    assert second.benefit == yuan("800")
    # third claim: deductible used up → 1,000 × 50% = 500.00
    third = calculate_benefit(
        rules(),
        self_paid_in_catalogue=yuan("1000"),
        year_to_date=YearToDate(deductible_used=yuan("1000"), benefits_paid=yuan("800")),
    )
    assert third.deductible_applied == 0
    assert third.benefit == yuan("500")


def test_outside_catalogue_counts_only_when_the_plan_says_so() -> None:
    # 6,000 + 2,000 = 8,000 − 1,000 = 7,000 × 50% = 3,500.00 (instead of 2,500.00)
    generous = rules(outside_catalogue_counts=True)
    result = calculate_benefit(
        generous, self_paid_in_catalogue=yuan("6000"), self_paid_outside_catalogue=yuan("2000")
    )
    assert result.benefit == yuan("3500")
    assert "including 2,000.00 outside the catalogue" in result.explanation()[0]
    strict = calculate_benefit(
        rules(), self_paid_in_catalogue=yuan("6000"), self_paid_outside_catalogue=yuan("2000")
    )
    assert strict.benefit == yuan("2500")


def test_rounding_is_half_up_to_the_fen() -> None:
    # 1,000.05 − 1,000.00 = 0.05 → 5 fen × 50% = 2.5 fen → 3 fen (banker's rounding would say 2)
    assert calculate_benefit(rules(), self_paid_in_catalogue=yuan("1000.05")).benefit == 3
    # 11,000.03 − 1,000 = 10,000.03 → 5,000.00 + 3 fen × 60% = 1.8 fen → 2 fen
    assert calculate_benefit(rules(), self_paid_in_catalogue=yuan("11000.03")).benefit == yuan(
        "5000.02"
    )
    # 1,345.67 × 60% = 807.402 → 807.40 (down)
    assert apply_ratio(yuan("1345.67"), Decimal("0.6")) == yuan("807.40")
    assert apply_ratio(5, Decimal("0.5")) == 3
    assert apply_ratio(4, Decimal("0.5")) == 2


def test_each_band_is_rounded_on_its_own() -> None:
    # bands 0–0.01 at 50% and above at 50%, no deductible, 2 fen eligible:
    # per band: 1 × 0.5 = 0.5 → 1, and 1 × 0.5 = 0.5 → 1: 2 fen (rounding the total would give 1)
    tiny = rules(
        deductible=0,
        bands=(
            RatioBand(lower=0, upper=1, ratio=Decimal("0.5")),
            RatioBand(lower=1, upper=None, ratio=Decimal("0.5")),
        ),
    )
    assert calculate_benefit(tiny, self_paid_in_catalogue=2).benefit == 2


def test_nothing_eligible_gives_nothing() -> None:
    result = calculate_benefit(rules(), self_paid_in_catalogue=0)
    assert result.benefit == 0
    assert result.deductible_applied == 0
    assert result.explanation()[-1] == "benefit 0.00"


amounts = st.integers(min_value=0, max_value=yuan("500000"))


@given(
    in_catalogue=amounts,
    deductible_used=st.integers(min_value=0, max_value=yuan("2000")),
    paid=st.integers(min_value=0, max_value=yuan("90000")),
)
def test_benefit_stays_within_every_limit(
    in_catalogue: int, deductible_used: int, paid: int
) -> None:
    plan_rules = rules()
    ytd = YearToDate(deductible_used=deductible_used, benefits_paid=paid)
    result = calculate_benefit(plan_rules, self_paid_in_catalogue=in_catalogue, year_to_date=ytd)
    assert 0 <= result.benefit <= result.eligible_expense
    assert result.benefit <= plan_rules.per_claim_ceiling
    assert result.benefit <= max(0, plan_rules.yearly_ceiling - paid)
    assert result.deductible_applied <= max(0, plan_rules.deductible - deductible_used)
    assert sum(s.amount for s in result.steps if s.rule == "band") == result.banded


@given(a=amounts, b=amounts)
def test_spending_more_never_pays_less(a: int, b: int) -> None:
    low, high = sorted((a, b))
    plan_rules = rules()
    assert (
        calculate_benefit(plan_rules, self_paid_in_catalogue=low).benefit
        <= calculate_benefit(plan_rules, self_paid_in_catalogue=high).benefit
    )
