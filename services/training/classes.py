"""The class aggregate: sessions, seats, the waitlist and every enrolment in the class.

The class is the consistency boundary for seats: whether a member is confirmed, waitlisted or
refused depends on all other enrolments, so all of them live here and the repository loads and
locks the class as one (a ``SELECT ... FOR UPDATE`` on the class row makes concurrent enrolments
take turns; this code then decides for each in turn).

Invariant: the enrolments holding a seat (confirmed, offered, awaiting approval) never outnumber
the capacity. A class without capacity (an online lecture) has no seats to run out of.

When a seat frees (cancellation, rejection, offer expiry, the no-show rule, more capacity) the
waitlist is served in enrolment order: the next member is promoted at once, or offered the seat
until a deadline, as the class's ``WaitlistPolicy`` says. Nobody is promoted once the class is over.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from services.training.courses import Course
from services.training.enrolment import Actor, Enrolment, EnrolmentStatus
from services.training.members import MemberView, eligible
from services.training.policies import EnrolmentWindow, PromotionMode, WaitlistPolicy
from services.training.progress import ClassProgress
from services.training.sessions import Session, require_aware
from shared.errors import Conflict, DomainError
from shared.events.training import (
    ClassCapacityChanged,
    ClassReminder,
    ClassScheduled,
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


class TrainingClass(ClassProgress):
    @classmethod
    def schedule(
        cls,
        class_id: str,
        course: Course,
        name: str,
        sessions: Iterable[Session],
        capacity: int | None,
        window: EnrolmentWindow,
        waitlist: WaitlistPolicy | None = None,
        requires_approval: bool = False,
        releases_no_shows: bool = False,
    ) -> TrainingClass:
        """A new class with no enrolments yet; records ClassScheduled."""
        new = cls(
            class_id,
            course,
            name,
            sessions,
            capacity,
            window,
            waitlist,
            requires_approval,
            releases_no_shows,
        )
        new.events.append(
            ClassScheduled(
                class_id=class_id,
                course_id=course.course_id,
                course_title=course.title,
                course_kind=course.kind.value,
                class_name=name,
                capacity=capacity,
                enrolment_opens_at=window.opens_at,
                enrolment_closes_at=window.closes_at,
                starts_at=new.starts_at,
                ends_at=new.ends_at,
                session_count=len(new.sessions),
                requires_approval=requires_approval,
                waitlist=new.waitlist_policy.enabled,
            )
        )
        return new

    # ----- enrolment -----

    def enrol(
        self, member: MemberView, now: datetime, enrolment_id: str | None = None
    ) -> Enrolment:
        """Enrol a member: confirmed, awaiting approval or waitlisted; a DomainError if refused."""
        require_aware("now", now)
        existing = self._by_member.get(member.member_id)
        if existing is not None and existing.is_active:
            raise Conflict("member_id", "already_enrolled", f"already {existing.status.value}")
        if existing is not None and existing.status is EnrolmentStatus.REJECTED:
            raise Conflict("member_id", "enrolment_rejected", "staff rejected this enrolment")
        self.window.check(now)
        ineligible = eligible(self.course, member)
        if ineligible is not None:
            # Each Ineligible value is a code of its own (docs/errors/training.md).
            raise DomainError("member_id", ineligible.value, f"not eligible: {ineligible.value}")
        self.expire_offers(now)
        # A newcomer never jumps the queue, even if a seat happens to be free while people wait.
        if self._has_free_seat() and not self.waitlist():
            status = self._seated_status()
        elif self.waitlist_policy.enabled:
            status = EnrolmentStatus.WAITLISTED
        else:
            raise DomainError("class_id", "class_full", "the class is full and has no waitlist")
        enrolment = self._open_enrolment(member, existing, status, now, enrolment_id)
        if status is EnrolmentStatus.WAITLISTED:
            position = self.waitlist_position(member.member_id) or 0
            self._record(EnrolmentWaitlisted, enrolment, position=position)
        elif status is EnrolmentStatus.PENDING_APPROVAL:
            self._record(EnrolmentAwaitingApproval, enrolment)
        else:
            self._record(
                EnrolmentConfirmed, enrolment, via="enrolled", starts_at=self.next_start(now)
            )
        return enrolment

    def _open_enrolment(
        self,
        member: MemberView,
        existing: Enrolment | None,
        status: EnrolmentStatus,
        now: datetime,
        enrolment_id: str | None,
    ) -> Enrolment:
        sequence = max((e.sequence for e in self.enrolments), default=0) + 1
        if existing is not None:
            # Enrolling again after a cancellation reuses the record (one per member per class)
            # but joins the back of the queue, as a new enrolment would.
            existing.status, existing.sequence, existing.enrolled_at = status, sequence, now
            existing.member_name, existing.union_id = member.name, member.union_id
            existing.union_path = member.union_path
            existing.cancel_reason = existing.cancelled_by = existing.offer_expires_at = None
            return existing
        enrolment = Enrolment(
            enrolment_id=enrolment_id or str(uuid.uuid4()),
            class_id=self.class_id,
            member_id=member.member_id,
            member_name=member.name,
            union_id=member.union_id,
            union_path=member.union_path,
            status=status,
            sequence=sequence,
            enrolled_at=now,
        )
        self.enrolments.append(enrolment)
        self._by_member[member.member_id] = enrolment
        return enrolment

    def approve(self, member_id: str, now: datetime) -> Enrolment:
        require_aware("now", now)
        enrolment = self._in_status(member_id, EnrolmentStatus.PENDING_APPROVAL)
        enrolment.status = EnrolmentStatus.CONFIRMED
        self._record(EnrolmentConfirmed, enrolment, via="approved", starts_at=self.next_start(now))
        return enrolment

    def reject(self, member_id: str, reason: str, now: datetime) -> Enrolment:
        """Staff turn an enrolment down; its seat goes to the next in line."""
        require_aware("now", now)
        enrolment = self._in_status(member_id, EnrolmentStatus.PENDING_APPROVAL)
        enrolment.status = EnrolmentStatus.REJECTED
        self._record(EnrolmentRejected, enrolment, reason=_required("reason", reason))
        self._fill_free_seats(now)
        return enrolment

    def accept_offer(self, member_id: str, now: datetime) -> Enrolment:
        require_aware("now", now)
        enrolment = self._in_status(member_id, EnrolmentStatus.OFFERED)
        if enrolment.offer_expires_at is not None and now >= enrolment.offer_expires_at:
            # Not cancelled here: the error rolls the unit of work back. ``expire_offers`` does it.
            raise DomainError("member_id", OFFER_EXPIRED, "the offer of a seat has expired")
        enrolment.offer_expires_at = None
        enrolment.status = self._seated_status()
        if enrolment.status is EnrolmentStatus.PENDING_APPROVAL:
            self._record(EnrolmentAwaitingApproval, enrolment)
        else:
            self._record(
                EnrolmentConfirmed, enrolment, via="offer_accepted", starts_at=self.next_start(now)
            )
        return enrolment

    def cancel(self, member_id: str, by: Actor, reason: str, now: datetime) -> Enrolment:
        """Cancel an enrolment (a member declining an offer cancels too); frees its seat."""
        require_aware("now", now)
        enrolment = self.enrolment_of(member_id)
        if not enrolment.is_active:
            raise Conflict("member_id", f"already_{enrolment.status.value}", "nothing to cancel")
        if enrolment.status is EnrolmentStatus.CONFIRMED and self.has_ended(now):
            raise DomainError("member_id", "class_ended", "the class is over: it stays on record")
        self._cancel(enrolment, by, _required("reason", reason))
        self._fill_free_seats(now)
        return enrolment

    def member_left(self, member_id: str, now: datetime) -> Enrolment | None:
        """The member left the union: cancel their enrolment unless it is finished history."""
        require_aware("now", now)
        enrolment = self._by_member.get(member_id)
        if enrolment is None or not enrolment.is_active:
            return None
        if enrolment.status is EnrolmentStatus.CONFIRMED and self.has_ended(now):
            return None
        self._cancel(enrolment, Actor.SYSTEM, LEFT_UNION)
        self._fill_free_seats(now)
        return enrolment

    def expire_offers(self, now: datetime) -> list[Enrolment]:
        """Cancel offers past their deadline and offer (or give) the seats to the next in line.

        Run by a periodic sweep, and before every enrolment so expired offers never block a seat.
        """
        require_aware("now", now)
        expired = [
            e
            for e in self.enrolments
            if e.status is EnrolmentStatus.OFFERED
            and e.offer_expires_at is not None
            and now >= e.offer_expires_at
        ]
        for enrolment in sorted(expired, key=lambda e: e.sequence):
            self._cancel(enrolment, Actor.SYSTEM, OFFER_EXPIRED)
        if expired:
            self._fill_free_seats(now)
        return expired

    def release_no_shows(self, now: datetime) -> list[Enrolment]:
        """Apply the no-show rule once, after the first session: absentees' seats are freed.

        Run it when staff have finished recording the first session's attendance (e.g. the next
        morning); until the first session has ended, and on later runs, it does nothing.
        """
        require_aware("now", now)
        first = self.sessions[0]
        if (
            not self.releases_no_shows
            or self.no_shows_released
            or now < first.ends_at
            or self.has_ended(now)
        ):
            return []
        self.no_shows_released = True
        absent = [
            e
            for e in sorted(self.enrolments, key=lambda e: e.sequence)
            if e.status is EnrolmentStatus.CONFIRMED and first.session_id not in e.check_ins
        ]
        for enrolment in absent:
            self._cancel(enrolment, Actor.SYSTEM, NO_SHOW)
        self._fill_free_seats(now)
        return absent

    def remind(self, now: datetime, ahead: timedelta) -> list[Session]:
        """Remind confirmed members of each session starting within ``ahead``, once a session.

        Waitlisted and offered members are not reminded: they have no seat to come to yet, and
        hear when they get one. A member confirmed after the reminder went out was told the start
        time in their confirmation.
        """
        require_aware("now", now)
        due = [s for s in self.sessions if s.due_for_reminder(now, ahead)]
        seated = [e for e in self.enrolments if e.status is EnrolmentStatus.CONFIRMED]
        for session in due:
            for enrolment in sorted(seated, key=lambda e: e.sequence):
                self._record(
                    ClassReminder,
                    enrolment,
                    session_id=session.session_id,
                    starts_at=session.starts_at,
                    ends_at=session.ends_at,
                    venue=session.venue,
                    online_link=session.online_link,
                )
        self.sessions = [replace(s, reminded_at=now) if s in due else s for s in self.sessions]
        return due

    def change_capacity(self, capacity: int | None, now: datetime) -> None:
        """Change the number of seats; refused below the seats already held."""
        require_aware("now", now)
        if capacity is not None and capacity < 1:
            raise DomainError("capacity", "not_positive", "capacity must be at least 1")
        held = self.seats_held()
        if capacity is not None and capacity < held:
            raise DomainError(
                "capacity",
                "below_seats_held",
                f"capacity {capacity} is below the {held} seats already held "
                f"({self._seat_breakdown()}); cancel enrolments first",
                seats_held=held,
            )
        previous, self.capacity = self.capacity, capacity
        if previous != capacity:
            self.events.append(
                ClassCapacityChanged(
                    class_id=self.class_id,
                    course_id=self.course.course_id,
                    previous_capacity=previous,
                    capacity=capacity,
                )
            )
        self._fill_free_seats(now)

    # ----- internals -----

    def _seat_breakdown(self) -> str:
        counts = {status: 0 for status in EnrolmentStatus}
        for enrolment in self.enrolments:
            counts[enrolment.status] += 1
        return (
            f"{counts[EnrolmentStatus.CONFIRMED]} confirmed, "
            f"{counts[EnrolmentStatus.OFFERED]} offered, "
            f"{counts[EnrolmentStatus.PENDING_APPROVAL]} awaiting approval"
        )

    def _has_free_seat(self) -> bool:
        free = self.seats_free()
        return free is None or free > 0

    def _seated_status(self) -> EnrolmentStatus:
        if self.requires_approval:
            return EnrolmentStatus.PENDING_APPROVAL
        return EnrolmentStatus.CONFIRMED

    def _cancel(self, enrolment: Enrolment, by: Actor, reason: str) -> None:
        previous = enrolment.status
        enrolment.status = EnrolmentStatus.CANCELLED
        enrolment.cancelled_by, enrolment.cancel_reason = by, reason
        enrolment.offer_expires_at = None
        self._record(
            EnrolmentCancelled,
            enrolment,
            reason=reason,
            cancelled_by=by.value,
            previous_status=previous.value,
        )

    def _fill_free_seats(self, now: datetime) -> None:
        """Give freed seats to the waitlist, in enrolment order, as the class is configured."""
        if self.has_ended(now):
            return  # nothing left to attend
        for enrolment in self.waitlist():
            if not self._has_free_seat():
                return
            if self.waitlist_policy.promotion is PromotionMode.OFFER:
                deadline = now + timedelta(hours=self.waitlist_policy.offer_hours)
                enrolment.status, enrolment.offer_expires_at = EnrolmentStatus.OFFERED, deadline
                self._record(
                    EnrolmentOffered,
                    enrolment,
                    offer_expires_at=deadline,
                    starts_at=self.next_start(now),
                )
            else:
                enrolment.status = self._seated_status()
                self._record(
                    EnrolmentPromoted,
                    enrolment,
                    status=enrolment.status.value,
                    starts_at=self.next_start(now),
                )


def _required(field: str, text: str) -> str:
    if not text.strip():
        raise DomainError(field, "required", f"{field} is required")
    return text.strip()
