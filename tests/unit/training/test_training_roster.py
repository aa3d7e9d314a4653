"""Enrolling on a roster loaded for one member: the class's counters decide, nobody else is read."""

from __future__ import annotations

import pytest

from services.training.domain import EnrolmentStatus, TrainingClass
from services.training.roster import IncompleteRoster, Roster
from shared.events.training import EnrolmentWaitlisted


def partial(build, capacity: int | None, held: int | None, waiting: int | None) -> TrainingClass:
    full = build.training_class(capacity=capacity)
    return TrainingClass(
        full.class_id,
        full.course,
        full.name,
        full.sessions,
        capacity,
        full.window,
        roster=Roster(complete=False, held=held, waiting=waiting),
    )


def test_a_full_class_waitlists_by_its_counters_at_the_back_of_the_line(build):
    cls = partial(build, capacity=50, held=50, waiting=7)
    enrolment = cls.enrol(build.member(1), build.now, place=1_000)
    assert enrolment.status is EnrolmentStatus.WAITLISTED
    assert (cls.roster.held, cls.roster.waiting) == (50, 8)
    [event] = cls.events
    assert isinstance(event, EnrolmentWaitlisted) and event.position == 8


def test_a_free_seat_goes_to_a_newcomer_only_when_nobody_waits(build):
    assert partial(build, 50, 49, 0).enrol(build.member(1), build.now, place=9).status is (
        EnrolmentStatus.CONFIRMED
    )
    assert partial(build, 50, 49, 1).enrol(build.member(1), build.now, place=9).status is (
        EnrolmentStatus.WAITLISTED
    )


def test_a_class_without_capacity_counts_nothing(build):
    cls = partial(build, capacity=None, held=None, waiting=None)
    assert cls.enrol(build.member(1), build.now, place=3).status is EnrolmentStatus.CONFIRMED
    assert (cls.roster.held, cls.roster.waiting) == (None, None)


def test_serving_the_waitlist_needs_the_whole_class(build):
    cls = partial(build, capacity=50, held=50, waiting=3)
    with pytest.raises(IncompleteRoster):
        cls.waitlist()


@pytest.mark.parametrize(("capacity", "held", "waiting"), [(None, None, None), (50, 20, 0)])
def test_a_member_leaving_needs_only_their_own_enrolment_when_nobody_waits(
    build, capacity, held, waiting
):
    """A lecture (no capacity: nobody waits while it runs) or a class nobody waits for: the
    member's enrolment alone is cancelled and the counters give the seat back."""
    cls = partial(build, capacity=capacity, held=held, waiting=waiting)
    cls.enrol(build.member(1), build.now, place=21)
    cls.events.clear()

    cancelled = cls.member_left(build.member(1).member_id, build.now)

    assert cancelled is not None and cancelled.status is EnrolmentStatus.CANCELLED
    assert (cls.roster.held, cls.roster.waiting) == (held, waiting)
    assert [type(e).__name__ for e in cls.events] == ["EnrolmentCancelled"]
