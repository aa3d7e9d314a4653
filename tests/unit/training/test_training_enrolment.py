"""Enrolment: windows, duplicates, eligibility, capacity, approval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.training.domain import (
    Actor,
    Audience,
    Conflict,
    DomainError,
    EnrolmentStatus,
    MemberStatus,
    WaitlistPolicy,
)
from shared.events.training import (
    EnrolmentAwaitingApproval,
    EnrolmentConfirmed,
    EnrolmentPromoted,
    EnrolmentWaitlisted,
)


def test_a_free_seat_confirms_the_enrolment_and_says_so_in_an_event(build):
    cls = build.training_class(capacity=2)

    enrolment = cls.enrol(build.member(1), build.now, enrolment_id="e-1")

    assert enrolment.status is EnrolmentStatus.CONFIRMED
    assert cls.seats_free() == 1
    [event] = cls.events
    assert isinstance(event, EnrolmentConfirmed)
    assert (event.member_id, event.class_id, event.enrolment_id) == ("m1", "class-1", "e-1")
    assert (event.course_title, event.class_name) == ("工会干部业务培训", "2024年第一期")
    assert event.via == "enrolled"
    assert event.starts_at == build.first_session
    assert event.subject() == "class-1"


def test_enrolment_before_the_window_opens_is_refused(build):
    cls = build.training_class()
    with pytest.raises(DomainError) as refused:
        cls.enrol(build.member(1), build.opens - timedelta(seconds=1))
    assert (refused.value.field, refused.value.code) == ("enrolment_window", "not_yet_open")
    assert cls.enrolments == []


def test_enrolment_when_the_window_has_closed_is_refused(build):
    cls = build.training_class()
    with pytest.raises(DomainError) as refused:
        cls.enrol(build.member(1), build.closes)
    assert refused.value.code == "closed"


def test_the_window_includes_its_opening_moment(build):
    cls = build.training_class()
    assert cls.enrol(build.member(1), build.opens).status is EnrolmentStatus.CONFIRMED


def test_a_naive_time_is_refused(build):
    cls = build.training_class()
    with pytest.raises(DomainError) as refused:
        cls.enrol(build.member(1), build.now.replace(tzinfo=None))
    assert refused.value.code == "naive_datetime"


@pytest.mark.parametrize("capacity", [1, 50])
def test_a_second_enrolment_of_the_same_member_is_a_conflict(build, capacity):
    cls = build.training_class(capacity=capacity)
    cls.enrol(build.member(0), build.now)
    cls.enrol(build.member(1), build.now)  # confirmed or waitlisted, both count
    with pytest.raises(Conflict) as conflict:
        cls.enrol(build.member(1), build.now)
    assert (conflict.value.field, conflict.value.code) == ("member_id", "already_enrolled")
    assert len(cls.enrolments) == 2


def test_enrolling_again_after_cancelling_reuses_the_record_at_the_back_of_the_queue(build):
    cls = build.training_class(capacity=1)
    cls.enrol(build.member(1), build.now)
    first = cls.enrol(build.member(2), build.now)
    cls.enrol(build.member(3), build.now)
    cls.cancel("m2", Actor.MEMBER, "schedule clash", build.now)

    again = cls.enrol(build.member(2), build.now)

    assert again is first and again.status is EnrolmentStatus.WAITLISTED
    assert again.cancel_reason is None
    assert [e.member_id for e in cls.waitlist()] == ["m3", "m2"]


def test_a_rejected_member_cannot_enrol_again(build):
    cls = build.training_class(requires_approval=True)
    cls.enrol(build.member(1), build.now)
    cls.reject("m1", "not a cadre of this county", build.now)
    with pytest.raises(Conflict) as conflict:
        cls.enrol(build.member(1), build.now)
    assert conflict.value.code == "enrolment_rejected"


@pytest.mark.parametrize(
    ("audience", "member_kwargs", "reason"),
    [
        (Audience.cadres(), {}, "cadres_only"),
        (Audience.category("platform_worker"), {}, "not_in_category"),
        (Audience.union_subtree("u-other-county"), {}, "outside_union_subtree"),
        (Audience.everyone(), {"status": MemberStatus.SUSPENDED}, "member_suspended"),
    ],
)
def test_an_ineligible_member_is_refused_with_the_reason(build, audience, member_kwargs, reason):
    cls = build.training_class(course=build.course(audience=audience))
    with pytest.raises(DomainError) as refused:
        cls.enrol(build.member(1, **member_kwargs), build.now)
    assert (refused.value.field, refused.value.code) == ("member_id", reason)


def test_a_thousand_members_into_fifty_seats_confirms_fifty_and_waitlists_the_rest_in_order(build):
    cls = build.training_class(capacity=50)
    for n in range(1000):
        cls.enrol(build.member(n), build.now + timedelta(seconds=n))

    confirmed = [e for e in cls.enrolments if e.status is EnrolmentStatus.CONFIRMED]
    assert [e.member_id for e in confirmed] == [f"m{n}" for n in range(50)]
    assert [e.member_id for e in cls.waitlist()] == [f"m{n}" for n in range(50, 1000)]
    positions = [e.position for e in cls.events if isinstance(e, EnrolmentWaitlisted)]
    assert positions == list(range(1, 951))
    assert cls.waitlist_position("m50") == 1 and cls.waitlist_position("m999") == 950
    assert cls.seats_free() == 0


def test_without_a_waitlist_the_members_beyond_capacity_are_refused(build):
    cls = build.training_class(capacity=50, waitlist=WaitlistPolicy(enabled=False))
    refused = []
    for n in range(1000):
        try:
            cls.enrol(build.member(n), build.now)
        except DomainError as error:
            refused.append(error.code)

    assert refused == ["class_full"] * 950
    assert [e.status for e in cls.enrolments] == [EnrolmentStatus.CONFIRMED] * 50


def test_an_online_lecture_has_no_seat_limit(build):
    cls = build.training_class(capacity=None, sessions=build.sessions(online=True))
    for n in range(300):
        cls.enrol(build.member(n), build.now)
    assert {e.status for e in cls.enrolments} == {EnrolmentStatus.CONFIRMED}
    assert cls.seats_free() is None


def test_an_enrolment_awaiting_approval_holds_its_seat_until_staff_decide(build):
    cls = build.training_class(capacity=1, requires_approval=True)
    first = cls.enrol(build.member(1), build.now)
    second = cls.enrol(build.member(2), build.now)
    assert (first.status, second.status) == (
        EnrolmentStatus.PENDING_APPROVAL,
        EnrolmentStatus.WAITLISTED,
    )
    assert isinstance(cls.events[0], EnrolmentAwaitingApproval)

    cls.approve("m1", build.now)
    assert first.status is EnrolmentStatus.CONFIRMED
    assert isinstance(cls.events[-1], EnrolmentConfirmed) and cls.events[-1].via == "approved"


def test_rejection_frees_the_seat_for_the_next_in_line_who_then_awaits_approval(build):
    cls = build.training_class(capacity=1, requires_approval=True)
    cls.enrol(build.member(1), build.now)
    cls.enrol(build.member(2), build.now)
    cls.events.clear()

    cls.reject("m1", "quota for this county used up", build.now)

    assert cls.enrolment_of("m1").status is EnrolmentStatus.REJECTED
    assert cls.enrolment_of("m2").status is EnrolmentStatus.PENDING_APPROVAL
    promoted = cls.events[-1]
    assert isinstance(promoted, EnrolmentPromoted) and promoted.status == "pending_approval"


def test_approving_what_is_not_pending_is_a_conflict(build):
    cls = build.training_class(requires_approval=False)
    cls.enrol(build.member(1), build.now)
    with pytest.raises(Conflict) as conflict:
        cls.approve("m1", build.now)
    assert conflict.value.code == "not_pending_approval"


operations = st.lists(
    st.tuples(st.sampled_from(["enrol", "cancel", "reject", "approve"]), st.integers(0, 15)),
    max_size=60,
)


# The builder fixture is stateless, so sharing it between examples is safe.
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations, capacity=st.integers(1, 5), approval=st.booleans())
def test_whatever_happens_seats_never_exceed_capacity_and_nobody_waits_beside_a_free_seat(
    build, ops, capacity, approval
):
    cls = build.training_class(capacity=capacity, requires_approval=approval)
    for op, n in ops:
        try:
            if op == "enrol":
                cls.enrol(build.member(n), build.now)
            elif op == "cancel":
                cls.cancel(f"m{n}", Actor.MEMBER, "changed my mind", build.now)
            elif op == "reject":
                cls.reject(f"m{n}", "no", build.now)
            else:
                cls.approve(f"m{n}", build.now)
        except DomainError:
            pass
        assert cls.seats_held() <= capacity
        assert not (cls.waitlist() and cls.seats_free())
        waiting = [e.sequence for e in cls.waitlist()]
        assert waiting == sorted(waiting)
