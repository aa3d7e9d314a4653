"""The waitlist: order, promotion (automatic and by offer), expiry, capacity, leaving, no-shows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.training.domain import (
    LEFT_UNION,
    Actor,
    Conflict,
    DomainError,
    EnrolmentStatus,
    PromotionMode,
    WaitlistPolicy,
)
from shared.events.training import (
    ClassCapacityChanged,
    EnrolmentAwaitingApproval,
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentOffered,
    EnrolmentPromoted,
)

OFFERS = WaitlistPolicy(promotion=PromotionMode.OFFER, offer_hours=24)


def full_class(build, capacity=2, waiting=3, **kwargs):
    """A class whose seats are taken by m0..m{capacity-1}, with the next members waitlisted."""
    cls = build.training_class(capacity=capacity, **kwargs)
    for n in range(capacity + waiting):
        cls.enrol(build.member(n), build.now)
    cls.events.clear()
    return cls


def statuses(cls):
    return {e.member_id: e.status.value for e in cls.enrolments}


def test_a_cancellation_promotes_the_first_in_line_automatically(build):
    cls = full_class(build)

    cls.cancel("m0", Actor.MEMBER, "sick", build.now)

    assert cls.enrolment_of("m2").status is EnrolmentStatus.CONFIRMED
    assert [e.member_id for e in cls.waitlist()] == ["m3", "m4"]
    cancelled, promoted = cls.events
    assert isinstance(cancelled, EnrolmentCancelled) and cancelled.member_id == "m0"
    assert (cancelled.reason, cancelled.cancelled_by) == ("sick", "member")
    assert isinstance(promoted, EnrolmentPromoted) and promoted.member_id == "m2"
    assert promoted.status == "confirmed"


def test_cancelling_a_waitlisted_enrolment_moves_the_others_up_without_promoting(build):
    cls = full_class(build)
    cls.cancel("m2", Actor.STAFF, "duplicate registration", build.now)
    assert [e.member_id for e in cls.waitlist()] == ["m3", "m4"]
    assert cls.waitlist_position("m3") == 1
    assert len(cls.events) == 1


def test_cancelling_twice_is_a_conflict_and_a_reason_is_required(build):
    cls = full_class(build)
    with pytest.raises(DomainError) as refused:
        cls.cancel("m0", Actor.STAFF, "  ", build.now)
    assert refused.value.code == "required"
    cls.cancel("m0", Actor.MEMBER, "sick", build.now)
    with pytest.raises(Conflict):
        cls.cancel("m0", Actor.MEMBER, "sick", build.now)


def test_in_offer_mode_a_freed_seat_is_offered_with_a_deadline(build):
    cls = full_class(build, waitlist=OFFERS)

    cls.cancel("m0", Actor.MEMBER, "sick", build.now)

    offered = cls.enrolment_of("m2")
    assert offered.status is EnrolmentStatus.OFFERED
    assert offered.offer_expires_at == build.now + timedelta(hours=24)
    assert cls.seats_free() == 0  # the offer holds the seat
    event = cls.events[-1]
    assert isinstance(event, EnrolmentOffered)
    assert event.offer_expires_at == build.now + timedelta(hours=24)


def test_an_accepted_offer_confirms_the_seat(build):
    cls = full_class(build, waitlist=OFFERS)
    cls.cancel("m0", Actor.MEMBER, "sick", build.now)

    cls.accept_offer("m2", build.now + timedelta(hours=23))

    assert cls.enrolment_of("m2").status is EnrolmentStatus.CONFIRMED
    event = cls.events[-1]
    assert isinstance(event, EnrolmentConfirmed) and event.via == "offer_accepted"


def test_an_offer_accepted_in_a_class_with_approval_awaits_approval(build):
    cls = full_class(build, waitlist=OFFERS, requires_approval=True)
    cls.reject("m0", "not eligible this year", build.now)
    cls.accept_offer("m2", build.now)
    assert cls.enrolment_of("m2").status is EnrolmentStatus.PENDING_APPROVAL
    assert isinstance(cls.events[-1], EnrolmentAwaitingApproval)


def test_an_offer_cannot_be_accepted_at_or_after_its_deadline(build):
    cls = full_class(build, waitlist=OFFERS)
    cls.cancel("m0", Actor.MEMBER, "sick", build.now)
    with pytest.raises(DomainError) as refused:
        cls.accept_offer("m2", build.now + timedelta(hours=24))
    assert refused.value.code == "offer_expired"


def test_an_expired_offer_is_cancelled_and_the_seat_offered_to_the_next(build):
    cls = full_class(build, waitlist=OFFERS)
    cls.cancel("m0", Actor.MEMBER, "sick", build.now)
    cls.events.clear()
    later = build.now + timedelta(hours=24)

    expired = cls.expire_offers(later)

    assert [e.member_id for e in expired] == ["m2"]
    assert statuses(cls)["m2"] == "cancelled"
    assert cls.enrolment_of("m2").cancel_reason == "offer_expired"
    assert cls.enrolment_of("m3").status is EnrolmentStatus.OFFERED
    assert cls.enrolment_of("m3").offer_expires_at == later + timedelta(hours=24)
    cancelled, offered = cls.events
    assert isinstance(cancelled, EnrolmentCancelled) and cancelled.cancelled_by == "system"
    assert isinstance(offered, EnrolmentOffered) and offered.member_id == "m3"


def test_expiring_before_the_deadline_changes_nothing(build):
    cls = full_class(build, waitlist=OFFERS)
    cls.cancel("m0", Actor.MEMBER, "sick", build.now)
    assert cls.expire_offers(build.now + timedelta(hours=23, minutes=59)) == []


def test_declining_an_offer_passes_it_on(build):
    cls = full_class(build, waitlist=OFFERS)
    cls.cancel("m0", Actor.MEMBER, "sick", build.now)
    cls.cancel("m2", Actor.MEMBER, "declined the offer", build.now)
    assert cls.enrolment_of("m3").status is EnrolmentStatus.OFFERED


def test_a_new_enrolment_first_releases_expired_offers(build):
    cls = full_class(build, capacity=1, waiting=1, waitlist=OFFERS)
    cls.cancel("m0", Actor.MEMBER, "sick", build.now)  # m1 offered
    cls.enrol(build.member(9), build.now + timedelta(days=2))  # m1's offer has expired
    assert statuses(cls) == {"m0": "cancelled", "m1": "cancelled", "m9": "confirmed"}


def test_capacity_cannot_drop_below_the_seats_held(build):
    cls = full_class(build, capacity=3, waiting=0)
    with pytest.raises(DomainError) as refused:
        cls.change_capacity(2, build.now)
    assert (refused.value.field, refused.value.code) == ("capacity", "below_seats_held")
    assert "3 confirmed" in refused.value.message
    assert cls.capacity == 3 and cls.events == []


def test_capacity_may_drop_to_exactly_the_seats_held(build):
    cls = full_class(build, capacity=3, waiting=0)
    cls.roster.move(cls.enrolments[0], EnrolmentStatus.CANCELLED)  # as if cancelled earlier
    cls.change_capacity(2, build.now)
    assert cls.capacity == 2
    assert isinstance(cls.events[-1], ClassCapacityChanged)


def test_more_capacity_promotes_from_the_waitlist(build):
    cls = full_class(build, capacity=2, waiting=3)
    cls.change_capacity(4, build.now)
    assert statuses(cls) == {f"m{n}": "confirmed" for n in range(4)} | {"m4": "waitlisted"}
    assert [type(e) for e in cls.events] == [
        ClassCapacityChanged,
        EnrolmentPromoted,
        EnrolmentPromoted,
    ]


def test_a_member_who_leaves_the_union_loses_their_seat_to_the_next_in_line(build):
    cls = full_class(build)

    cancelled = cls.member_left("m1", build.now)

    assert cancelled is not None and cancelled.cancel_reason == LEFT_UNION
    assert cls.enrolment_of("m2").status is EnrolmentStatus.CONFIRMED
    event = cls.events[0]
    assert isinstance(event, EnrolmentCancelled)
    assert (event.reason, event.cancelled_by, event.previous_status) == (
        "left_union",
        "system",
        "confirmed",
    )


@pytest.mark.parametrize("member_id", ["m2", "m3"])
def test_leaving_cancels_a_waitlisted_enrolment(build, member_id):
    cls = full_class(build)
    cls.member_left(member_id, build.now)
    assert cls.enrolment_of(member_id).cancel_reason == LEFT_UNION
    assert cls.seats_free() == 0


def test_leaving_cancels_an_offer_and_a_pending_approval(build):
    cls = full_class(build, waitlist=OFFERS, requires_approval=True)
    cls.reject("m0", "no", build.now)  # m2 offered
    cls.member_left("m1", build.now)  # pending approval; its seat is offered to m3
    cls.member_left("m2", build.now)
    assert statuses(cls) == {
        "m0": "rejected",
        "m1": "cancelled",
        "m2": "cancelled",
        "m3": "offered",
        "m4": "offered",
    }


def test_leaving_after_the_class_ended_keeps_the_record(build):
    cls = full_class(build)
    assert cls.member_left("m0", cls.ends_at) is None
    assert cls.enrolment_of("m0").status is EnrolmentStatus.CONFIRMED
    assert cls.member_left("m-unknown", build.now) is None


def test_nobody_is_promoted_once_the_class_is_over(build):
    cls = full_class(build)
    cls.member_left("m2", cls.ends_at)  # waitlisted: cancelled even now
    assert [e.member_id for e in cls.waitlist()] == ["m3", "m4"]
    with pytest.raises(DomainError) as refused:
        cls.cancel("m0", Actor.MEMBER, "too late", cls.ends_at)
    assert refused.value.code == "class_ended"


def test_no_shows_at_the_first_session_lose_their_seats_once(build):
    cls = full_class(build, capacity=3, waiting=2, releases_no_shows=True)
    first = cls.sessions[0]
    cls.check_in_by_staff(first.session_id, "m1", first.starts_at)
    assert cls.release_no_shows(first.ends_at - timedelta(minutes=1)) == []

    released = cls.release_no_shows(first.ends_at)

    assert [e.member_id for e in released] == ["m0", "m2"]
    assert {e.cancel_reason for e in released} == {"no_show"}
    assert statuses(cls) == {
        "m0": "cancelled",
        "m1": "confirmed",
        "m2": "cancelled",
        "m3": "confirmed",
        "m4": "confirmed",
    }
    # Promoted members missed the first session through no fault of theirs: the rule ran once.
    assert cls.release_no_shows(first.ends_at + timedelta(days=1)) == []


def test_the_no_show_rule_is_off_unless_the_class_asks_for_it(build):
    cls = full_class(build)
    assert cls.release_no_shows(cls.sessions[0].ends_at) == []


def test_a_member_promoted_after_the_class_began_is_told_the_next_session(build):
    cls = full_class(build)
    during_first = cls.sessions[0].starts_at + timedelta(hours=1)
    cls.cancel("m0", Actor.MEMBER, "sick", during_first)
    promoted = cls.events[-1]
    assert isinstance(promoted, EnrolmentPromoted)
    assert promoted.starts_at == cls.sessions[1].starts_at
