from __future__ import annotations

from datetime import date

import pytest

from services.mutual_aid.eligibility import EligibilityView, MemberStanding
from services.mutual_aid.enrolment import NOT_A_MEMBER, Enrolment
from services.mutual_aid.errors import DuplicateEntry
from services.mutual_aid.money import yuan
from shared.errors import DomainError
from shared.events.membership import MemberJoined, MemberLeft, MemberReinstated, MemberSuspended
from shared.events.mutual_aid import (
    ContributionReceived,
    CoverageEnded,
    MemberCovered,
    UnitEnrolled,
)
from tests.unit.mutual_aid.builders import YEAR, active_since, draft_plan, published_plan


def joined(member_id: str, on: date) -> MemberJoined:
    return MemberJoined(
        member_id=member_id,
        name="张三",
        union_id="u-1",
        union_path=["city"],
        channel="online",
        categories=[],
        joined_on=on,
        card_number="6200000000000001",
        sex="F",
        birth_date=date(1985, 3, 1),
    )


def test_the_view_follows_membership_events_and_ignores_repeats() -> None:
    view = EligibilityView()
    view.apply(joined("m-1", date(2020, 1, 1)))
    view.apply(joined("m-1", date(2020, 1, 1)))  # redelivered
    view.apply(MemberSuspended(member_id="m-1", suspended_on=date(2024, 3, 1), reason="dues"))
    view.apply(MemberReinstated(member_id="m-1", reinstated_on=date(2024, 5, 1)))
    view.apply(MemberLeft(member_id="m-1", left_on=date(2024, 9, 1), reason="retired"))
    view.apply(MemberLeft(member_id="m-1", left_on=date(2024, 9, 1), reason="retired"))
    assert view.active_on("m-1", date(2024, 2, 29))
    assert not view.active_on("m-1", date(2024, 3, 1))
    assert view.active_on("m-1", date(2024, 5, 1))
    assert view.active_on("m-1", date(2024, 8, 31))
    assert not view.active_on("m-1", date(2024, 9, 1))
    assert not view.active_on("nobody", date(2024, 1, 1))
    assert len(view.standings["m-1"].periods) == 2


def enrol(staff: list[str], standings: dict[str, MemberStanding], on: date) -> Enrolment:
    return Enrolment.enrol("enr-1", "unit-1", published_plan(), staff, on, standings)


def test_only_active_members_on_the_list_are_covered() -> None:
    standings = {
        "m-1": active_since("m-1", date(2019, 1, 1)),
        "m-2": active_since("m-2", date(2019, 1, 1), until=date(2023, 12, 1)),  # left
    }
    enrolment = enrol(["m-1", "m-2", "m-3", "m-1"], standings, date(YEAR, 1, 10))
    assert set(enrolment.coverages) == {"m-1"}
    assert enrolment.not_covered == {"m-2": NOT_A_MEMBER, "m-3": NOT_A_MEMBER}
    enrolled, covered = enrolment.events
    assert isinstance(enrolled, UnitEnrolled)
    assert (enrolled.staff_count, enrolled.covered_count) == (3, 1)
    assert enrolled.not_covered_member_ids == ["m-2", "m-3"]
    assert isinstance(covered, MemberCovered)
    assert covered.subject() == "enr-1"
    assert covered.member_id == "m-1"


def test_cover_starts_at_enrolment_or_at_plan_start() -> None:
    standings = {"m-1": active_since("m-1", date(2019, 1, 1))}
    early = enrol(["m-1"], standings, date(YEAR - 1, 12, 15))
    assert early.coverages["m-1"].starts_on == date(YEAR, 1, 1)
    late = enrol(["m-1"], standings, date(YEAR, 4, 1))
    assert late.coverages["m-1"].starts_on == date(YEAR, 4, 1)
    assert late.coverages["m-1"].ends_on == date(YEAR, 12, 31)
    assert late.coverages["m-1"].waiting_from == date(YEAR, 4, 1)


def test_continuous_cover_from_an_earlier_year_keeps_the_waiting_period_served() -> None:
    standings = {"m-1": active_since("m-1", date(2019, 1, 1))}
    enrolment = Enrolment.enrol(
        "enr-1",
        "unit-1",
        published_plan(),
        ["m-1"],
        date(YEAR, 1, 1),
        standings,
        continuous_since={"m-1": date(YEAR - 1, 1, 1)},
    )
    assert enrolment.coverages["m-1"].waiting_from == date(YEAR - 1, 1, 1)


def test_a_member_joining_later_is_added_and_adding_twice_changes_nothing() -> None:
    enrolment = enrol([], {}, date(YEAR, 1, 1))
    newcomer = active_since("m-9", date(YEAR, 5, 1))
    assert enrolment.cover("m-9", date(YEAR, 4, 20), newcomer) is None  # not yet a member
    first = enrolment.cover("m-9", date(YEAR, 5, 2), newcomer)
    again = enrolment.cover("m-9", date(YEAR, 6, 1), newcomer)
    assert first is again
    assert "m-9" not in enrolment.not_covered
    assert sum(isinstance(e, MemberCovered) for e in enrolment.events) == 1


def test_cover_ends_the_day_before_the_member_leaves() -> None:
    enrolment = enrol(["m-1"], {"m-1": active_since("m-1", date(2019, 1, 1))}, date(YEAR, 1, 1))
    enrolment.events.clear()
    enrolment.end_coverage("m-1", date(YEAR, 9, 1), "left the union")
    enrolment.end_coverage("m-1", date(YEAR, 10, 1), "left the union")  # later: no change
    cover = enrolment.coverage_of("m-1")
    assert cover is not None
    assert cover.covers(date(YEAR, 8, 31))
    assert not cover.covers(date(YEAR, 9, 1))
    [ended] = enrolment.events
    assert isinstance(ended, CoverageEnded)
    assert ended.last_covered_on == date(YEAR, 8, 31)
    enrolment.end_coverage("someone-else", date(YEAR, 9, 1), "left")  # not covered: nothing


def test_arrears_are_expected_minus_received() -> None:
    standings = {m: active_since(m, date(2019, 1, 1)) for m in ("m-1", "m-2", "m-3")}
    enrolment = enrol(["m-1", "m-2", "m-3"], standings, date(YEAR, 1, 1))
    # 3 covered × 120.00 = 360.00 expected
    assert enrolment.expected == yuan("360")
    enrolment.receive_contribution("R-1", yuan("200"), "unit-1 finance", date(YEAR, 2, 1), "Q1")
    assert enrolment.arrears == yuan("160")
    received = enrolment.events[-1]
    assert isinstance(received, ContributionReceived)
    assert received.arrears_fen == yuan("160")
    # a member leaving mid-year still owes the year
    enrolment.end_coverage("m-3", date(YEAR, 3, 1), "left")
    assert enrolment.arrears == yuan("160")
    enrolment.receive_contribution("R-2", yuan("200"), "unit-1 finance", date(YEAR, 4, 1))
    assert enrolment.arrears == yuan("-40")  # paid ahead


def test_contributions_are_positive_and_each_receipt_counts_once() -> None:
    enrolment = enrol([], {}, date(YEAR, 1, 1))
    with pytest.raises(DomainError) as refused:
        enrolment.receive_contribution("R-1", 0, "unit", date(YEAR, 2, 1))
    assert refused.value.field == "amount"
    enrolment.receive_contribution("R-1", 100, "unit", date(YEAR, 2, 1))
    with pytest.raises(DuplicateEntry):
        enrolment.receive_contribution("R-1", 100, "unit", date(YEAR, 2, 1))


def test_enrolment_needs_a_published_plan_in_effect() -> None:
    with pytest.raises(DomainError) as refused:
        Enrolment.enrol("e", "u", draft_plan(), [], date(YEAR, 1, 1), {})
    assert refused.value.field == "plan_id"
    with pytest.raises(DomainError) as late:
        Enrolment.enrol("e", "u", published_plan(), [], date(YEAR + 1, 1, 1), {})
    assert late.value.field == "enrolled_on"
