from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.mutual_aid.errors import InvalidTransition, PlanInvalid
from services.mutual_aid.money import yuan
from services.mutual_aid.plans import PlanStatus, RatioBand, plan_in_force
from shared.events.mutual_aid import PlanPublished
from tests.unit.mutual_aid.builders import YEAR, draft_plan, published_plan, rules


def band(lower: str, upper: str | None, ratio: str) -> RatioBand:
    return RatioBand(
        lower=yuan(lower), upper=None if upper is None else yuan(upper), ratio=Decimal(ratio)
    )


def problems_of(**overrides: object) -> list[str]:
    plan = draft_plan(**overrides)
    with pytest.raises(PlanInvalid) as refused:
        plan.publish(date(YEAR, 1, 1))
    assert plan.status is PlanStatus.DRAFT
    assert plan.events == []
    return refused.value.fields()


def test_publishing_a_valid_plan_records_the_event() -> None:
    plan = draft_plan()
    plan.publish(date(YEAR - 1, 12, 1))
    assert plan.status is PlanStatus.PUBLISHED
    [published] = plan.events
    assert isinstance(published, PlanPublished)
    assert published.subject() == plan.plan_id
    assert published.plan_version == 1
    assert published.contribution_per_member_fen == yuan("120")
    assert published.type == "gonghui.mutual_aid.plan.published"
    assert published.source == "gonghui/mutual_aid"


def test_a_plan_is_published_once() -> None:
    plan = published_plan()
    with pytest.raises(InvalidTransition):
        plan.publish(date(YEAR, 1, 2))


def test_bands_must_start_at_zero() -> None:
    bands = (band("100", "10000", "0.5"), band("10000", None, "0.6"))
    assert problems_of(rules=rules(bands=bands)) == ["rules.bands[0].lower"]


def test_bands_must_be_contiguous() -> None:
    bands = (band("0", "10000", "0.5"), band("12000", None, "0.6"))
    assert problems_of(rules=rules(bands=bands)) == ["rules.bands[1].lower"]


def test_bands_must_increase() -> None:
    bands = (band("0", "10000", "0.5"), band("10000", "9000", "0.6"), band("9000", None, "0.7"))
    assert problems_of(rules=rules(bands=bands)) == ["rules.bands[1].upper"]


def test_only_the_top_band_is_open_ended_and_it_must_be() -> None:
    middle_open = (band("0", None, "0.5"), band("10000", None, "0.6"))
    assert "rules.bands[0].upper" in problems_of(rules=rules(bands=middle_open))
    top_closed = (band("0", "10000", "0.5"), band("10000", "50000", "0.6"))
    assert problems_of(rules=rules(bands=top_closed)) == ["rules.bands[1].upper"]


def test_ratios_are_between_zero_and_one() -> None:
    bands = (band("0", "10000", "1.5"), band("10000", None, "-0.1"))
    assert problems_of(rules=rules(bands=bands)) == [
        "rules.bands[0].ratio",
        "rules.bands[1].ratio",
    ]


def test_at_least_one_band() -> None:
    assert problems_of(rules=rules(bands=())) == ["rules.bands"]


def test_ceilings_positive_and_per_claim_within_yearly() -> None:
    assert problems_of(rules=rules(per_claim_ceiling=0, yearly_ceiling=-1)) == [
        "rules.per_claim_ceiling",
        "rules.yearly_ceiling",
    ]
    assert problems_of(rules=rules(per_claim_ceiling=yuan("90000"))) == ["rules.per_claim_ceiling"]


def test_every_problem_is_reported_at_once() -> None:
    fields = problems_of(
        effective_to=date(YEAR - 1, 6, 1),
        contribution_per_member=0,
        rules=rules(deductible=-1, waiting_period_days=-1, submission_deadline_days=0),
    )
    assert fields == [
        "effective_to",
        "contribution_per_member",
        "rules.deductible",
        "rules.waiting_period_days",
        "rules.submission_deadline_days",
    ]


def test_effective_period_starts_in_the_scheme_year() -> None:
    assert problems_of(
        effective_from=date(YEAR + 1, 1, 1), effective_to=date(YEAR + 1, 12, 31)
    ) == ["effective_from"]


def test_money_in_rules_is_never_a_float() -> None:
    with pytest.raises(ValidationError) as refused:
        rules(deductible=1000.5)
    assert refused.value.errors()[0]["loc"] == ("deductible",)


def test_the_plan_in_force_is_the_latest_published_version_covering_the_day() -> None:
    v1 = published_plan()
    v2 = v1.revise(f"plan-{YEAR}-v2", effective_from=date(YEAR, 7, 1), rules=rules(deductible=0))
    assert v2.version == 2 and v2.status is PlanStatus.DRAFT
    assert plan_in_force([v1, v2], date(YEAR, 8, 1)) is v1  # a draft is never in force
    v2.publish(date(YEAR, 6, 1))
    assert plan_in_force([v1, v2], date(YEAR, 3, 1)) is v1
    assert plan_in_force([v1, v2], date(YEAR, 8, 1)) is v2
    assert plan_in_force([v1, v2], date(YEAR + 1, 1, 1)) is None
    assert v1.rules.deductible == yuan("1000")  # the published version is untouched
