"""The seats of a class: who holds one, who waits, and who is served when one frees.

Invariant: the enrolments holding a seat (confirmed, offered, awaiting approval) never outnumber
the capacity. A class without capacity (an online lecture) has no seats to run out of.

When a seat frees (cancellation, rejection, offer expiry, the no-show rule, more capacity) the
waitlist is served in enrolment order: the next member is promoted at once, or offered the seat
until a deadline, as the class's ``WaitlistPolicy`` says. Nobody is promoted once the class is over.
A newcomer never jumps the queue, even if a seat happens to be free while people wait.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from services.training.enrolment import Actor, Enrolment, EnrolmentStatus
from services.training.policies import PromotionMode, WaitlistPolicy
from services.training.roster import Roster
from services.training.sessions import Timetable
from shared.errors import Conflict, DomainError
from shared.events.training import (
    EnrolmentAwaitingApproval,
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentOffered,
    EnrolmentPromoted,
    EnrolmentRejected,
    EnrolmentWaitlisted,
)

LEFT_UNION = "left_union"
OFFER_EXPIRED = "offer_expired"
NO_SHOW = "no_show"

# Records an enrolment event with what a notification needs (the class's root fills the rest).
Record = Callable[..., None]


class Seats:
    def __init__(
        self,
        capacity: int | None,
        waitlist: WaitlistPolicy,
        requires_approval: bool,
        roster: Roster,
        timetable: Timetable,
        record: Record,
    ) -> None:
        if capacity is not None and capacity < 1:
            raise DomainError("capacity", "not_positive", "capacity must be at least 1")
        self.capacity = capacity  # None: no seat limit (online lectures)
        self.waitlist_policy = waitlist
        self.requires_approval = requires_approval
        self.roster = roster
        self._timetable = timetable
        self._record = record
        held = roster.held or 0
        if capacity is not None and held > capacity:
            raise DomainError("capacity", "overfilled", "more seats held than the capacity")

    def held(self) -> int:
        self._require_counted()
        return self.roster.held or 0

    def free(self) -> int | None:
        """Seats nobody holds; None for a class without capacity."""
        return None if self.capacity is None else self.capacity - self.held()

    def has_free_seat(self) -> bool:
        return self.capacity is None or self.held() < self.capacity

    def placement(self) -> EnrolmentStatus:
        """Where a newcomer goes: a seat, the back of the line, or refused (``class_full``)."""
        queue_empty = self.capacity is None or not self.roster.waiting
        if self.has_free_seat() and queue_empty:
            return self.seated_status()
        if self.waitlist_policy.enabled:
            return EnrolmentStatus.WAITLISTED
        raise DomainError("class_id", "class_full", "the class is full and has no waitlist")

    def seated_status(self) -> EnrolmentStatus:
        if self.requires_approval:
            return EnrolmentStatus.PENDING_APPROVAL
        return EnrolmentStatus.CONFIRMED

    def in_status(self, member_id: str, status: EnrolmentStatus) -> Enrolment:
        enrolment = self.roster.of(member_id)
        if enrolment.status is not status:
            raise Conflict("member_id", f"not_{status.value}", f"enrolment is {enrolment.status}")
        return enrolment

    def announce_placement(self, enrolment: Enrolment, now: datetime, via: str) -> None:
        if enrolment.status is EnrolmentStatus.WAITLISTED:
            position = self.roster.waitlist_position(enrolment.member_id) or 0
            self._record(EnrolmentWaitlisted, enrolment, position=position)
        elif enrolment.status is EnrolmentStatus.PENDING_APPROVAL:
            self._record(EnrolmentAwaitingApproval, enrolment)
        else:
            starts_at = self._timetable.next_start(now)
            self._record(EnrolmentConfirmed, enrolment, via=via, starts_at=starts_at)

    def approve(self, member_id: str, now: datetime) -> Enrolment:
        enrolment = self.in_status(member_id, EnrolmentStatus.PENDING_APPROVAL)
        self.roster.move(enrolment, EnrolmentStatus.CONFIRMED)
        self.announce_placement(enrolment, now, via="approved")
        return enrolment

    def reject(self, member_id: str, reason: str, now: datetime) -> Enrolment:
        """Staff turn an enrolment down; its seat goes to the next in line."""
        enrolment = self.in_status(member_id, EnrolmentStatus.PENDING_APPROVAL)
        self.roster.move(enrolment, EnrolmentStatus.REJECTED)
        self._record(EnrolmentRejected, enrolment, reason=required("reason", reason))
        self.fill_free_seats(now)
        return enrolment

    def accept_offer(self, member_id: str, now: datetime) -> Enrolment:
        enrolment = self.in_status(member_id, EnrolmentStatus.OFFERED)
        if enrolment.offer_expires_at is not None and now >= enrolment.offer_expires_at:
            # Not cancelled here: the error rolls the unit of work back. ``expire_offers`` does it.
            raise DomainError("member_id", OFFER_EXPIRED, "the offer of a seat has expired")
        enrolment.offer_expires_at = None
        self.roster.move(enrolment, self.seated_status())
        self.announce_placement(enrolment, now, via="offer_accepted")
        return enrolment

    def cancel(self, member_id: str, by: Actor, reason: str, now: datetime) -> Enrolment:
        """Cancel an enrolment (a member declining an offer cancels too); frees its seat."""
        enrolment = self.roster.of(member_id)
        if not enrolment.is_active:
            raise Conflict("member_id", f"already_{enrolment.status.value}", "nothing to cancel")
        if enrolment.status is EnrolmentStatus.CONFIRMED and self._timetable.has_ended(now):
            raise DomainError("member_id", "class_ended", "the class is over: it stays on record")
        self._cancel(enrolment, by, required("reason", reason))
        self.fill_free_seats(now)
        return enrolment

    def member_left(self, member_id: str, now: datetime) -> Enrolment | None:
        """The member left the union: cancel their enrolment unless it is finished history."""
        enrolment = self.roster.find(member_id)
        if enrolment is None or not enrolment.is_active:
            return None
        if enrolment.status is EnrolmentStatus.CONFIRMED and self._timetable.has_ended(now):
            return None
        self._cancel(enrolment, Actor.SYSTEM, LEFT_UNION)
        self.fill_free_seats(now)
        return enrolment

    def expire_offers(self, now: datetime) -> list[Enrolment]:
        """Cancel offers past their deadline and offer (or give) the seats to the next in line."""
        expired = [
            e
            for e in self.roster
            if e.status is EnrolmentStatus.OFFERED
            and e.offer_expires_at is not None
            and now >= e.offer_expires_at
        ]
        for enrolment in sorted(expired, key=lambda e: e.sequence):
            self._cancel(enrolment, Actor.SYSTEM, OFFER_EXPIRED)
        if expired:
            self.fill_free_seats(now)
        return expired

    def release(self, absent: list[Enrolment], now: datetime) -> None:
        """The no-show rule's effect: the absentees' seats go to the waitlist."""
        for enrolment in absent:
            self._cancel(enrolment, Actor.SYSTEM, NO_SHOW)
        self.fill_free_seats(now)

    def resize(self, capacity: int | None) -> int | None:
        """Change the number of seats; refused below the seats already held. Returns the old."""
        if capacity is not None and capacity < 1:
            raise DomainError("capacity", "not_positive", "capacity must be at least 1")
        held = self.held()
        if capacity is not None and capacity < held:
            raise DomainError(
                "capacity",
                "below_seats_held",
                f"capacity {capacity} is below the {held} seats already held "
                f"({self._seat_breakdown()}); cancel enrolments first",
                seats_held=held,
            )
        previous, self.capacity = self.capacity, capacity
        return previous

    def fill_free_seats(self, now: datetime) -> None:
        """Give freed seats to the waitlist, in enrolment order, as the class is configured."""
        if self._timetable.has_ended(now):
            return  # nothing left to attend
        if self.capacity is not None and not self.roster.waiting:
            return  # nobody waits: no need to know who would be next
        if self.capacity is None and not self.roster.complete:
            # Nobody waits in a class without capacity while it runs (removing the capacity
            # served the whole waitlist), so one loaded for a member alone frees nothing here.
            return
        for enrolment in self.roster.waitlist():
            if not self.has_free_seat():
                return
            starts_at = self._timetable.next_start(now)
            if self.waitlist_policy.promotion is PromotionMode.OFFER:
                deadline = now + timedelta(hours=self.waitlist_policy.offer_hours)
                self.roster.move(enrolment, EnrolmentStatus.OFFERED)
                enrolment.offer_expires_at = deadline
                self._record(
                    EnrolmentOffered, enrolment, offer_expires_at=deadline, starts_at=starts_at
                )
            else:
                self.roster.move(enrolment, self.seated_status())
                status = enrolment.status.value
                self._record(EnrolmentPromoted, enrolment, status=status, starts_at=starts_at)

    def _cancel(self, enrolment: Enrolment, by: Actor, reason: str) -> None:
        previous = enrolment.status
        self.roster.move(enrolment, EnrolmentStatus.CANCELLED)
        enrolment.cancelled_by, enrolment.cancel_reason = by, reason
        enrolment.offer_expires_at = None
        self._record(
            EnrolmentCancelled,
            enrolment,
            reason=reason,
            cancelled_by=by.value,
            previous_status=previous.value,
        )

    def _seat_breakdown(self) -> str:
        counts = {status: 0 for status in EnrolmentStatus}
        for enrolment in self.roster:
            counts[enrolment.status] += 1
        return (
            f"{counts[EnrolmentStatus.CONFIRMED]} confirmed, "
            f"{counts[EnrolmentStatus.OFFERED]} offered, "
            f"{counts[EnrolmentStatus.PENDING_APPROVAL]} awaiting approval"
        )

    def _require_counted(self) -> None:
        if self.roster.held is None:
            self.roster.require_complete("counting seats")


def required(field: str, text: str) -> str:
    if not text.strip():
        raise DomainError(field, "required", f"{field} is required")
    return text.strip()
