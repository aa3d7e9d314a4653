"""The class aggregate: a course taught to a roster on a timetable.

``TrainingClass`` is the root every change goes through; it is composed of parts, each a plain
class holding one concern:

* ``Timetable`` (``sessions``): when the class meets, and which sessions are due a reminder;
* ``Roster`` (``roster``): the enrolments loaded, and the counters of seats held and waiting;
* ``Seats`` (``seats``): enrolment, approval, offers, cancellation and the waitlist;
* ``Progress`` (``progress``): attendance, minutes watched, scores, completion, certificates.

The class is the consistency boundary for seats: the repository locks its row for every seat
decision, so concurrent enrolments take turns, each seeing the counters the previous ones left.
Enrolling and progress load only the member's own enrolment (``Roster`` explains when a rule needs
them all). Every event goes to ``self.events``, and the unit of work that saw the class sends them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from services.training.certificates import Certificate
from services.training.completion import Outcome
from services.training.courses import Course
from services.training.enrolment import Actor, CheckInMethod, Enrolment, EnrolmentStatus
from services.training.members import MemberView, eligible
from services.training.policies import EnrolmentWindow, WaitlistPolicy
from services.training.progress import Progress
from services.training.roster import Roster
from services.training.seats import LEFT_UNION, NO_SHOW, OFFER_EXPIRED, Seats
from services.training.sessions import Session, Timetable, require_aware
from shared.errors import Conflict, DomainError
from shared.events.base import EventData
from shared.events.training import (
    ClassCapacityChanged,
    ClassReminder,
    ClassScheduled,
    EnrolmentEvent,
)

__all__ = ["LEFT_UNION", "NO_SHOW", "OFFER_EXPIRED", "TrainingClass"]
E = TypeVar("E", bound=EnrolmentEvent)


class TrainingClass:
    def __init__(
        self,
        class_id: str,
        course: Course,
        name: str,
        sessions: Iterable[Session],
        capacity: int | None,
        window: EnrolmentWindow,
        waitlist: WaitlistPolicy | None = None,
        requires_approval: bool = False,
        releases_no_shows: bool = False,
        no_shows_released: bool = False,
        enrolments: Iterable[Enrolment] = (),
        roster: Roster | None = None,
    ) -> None:
        """Rebuild a class (the repository's entry point); ``schedule`` makes a new one."""
        if not name.strip():
            raise DomainError("name", "required", "a class needs a name")
        self.class_id = class_id
        self.course = course
        self.name = name
        self.window = window
        self.timetable = Timetable(sessions)
        if window.closes_at > self.timetable.ends_at:
            raise DomainError(
                "closes_at", "after_class_end", "enrolment cannot stay open after the class ends"
            )
        # The no-show rule: confirmed members absent from the first session lose their seat to the
        # waitlist. ``no_shows_released`` records that it has run, so it runs once per class.
        self.releases_no_shows = releases_no_shows
        self.no_shows_released = no_shows_released
        self.events: list[EventData] = []
        self.roster = roster if roster is not None else Roster(enrolments)
        self.seats = Seats(
            capacity,
            waitlist or WaitlistPolicy(),
            requires_approval,
            self.roster,
            self.timetable,
            self._record,
        )
        self.progress = Progress(class_id, course, name, self.timetable, self.roster, self._record)

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

    # ----- what anyone may ask -----

    @property
    def sessions(self) -> list[Session]:
        return self.timetable.sessions

    @property
    def starts_at(self) -> datetime:
        return self.timetable.starts_at

    @property
    def ends_at(self) -> datetime:
        return self.timetable.ends_at

    @property
    def capacity(self) -> int | None:
        return self.seats.capacity

    @property
    def waitlist_policy(self) -> WaitlistPolicy:
        return self.seats.waitlist_policy

    @property
    def requires_approval(self) -> bool:
        return self.seats.requires_approval

    @property
    def enrolments(self) -> list[Enrolment]:
        """The enrolments loaded (all of them, unless loaded for one member)."""
        return list(self.roster)

    def next_start(self, now: datetime) -> datetime:
        return self.timetable.next_start(now)

    def has_ended(self, now: datetime) -> bool:
        return self.timetable.has_ended(now)

    def session(self, session_id: str) -> Session:
        return self.timetable.session(session_id)

    def find_enrolment(self, member_id: str) -> Enrolment | None:
        return self.roster.find(member_id)

    def enrolment_of(self, member_id: str) -> Enrolment:
        return self.roster.of(member_id)

    def seats_held(self) -> int:
        return self.seats.held()

    def seats_free(self) -> int | None:
        return self.seats.free()

    def waitlist(self) -> list[Enrolment]:
        return self.roster.waitlist()

    def waitlist_position(self, member_id: str) -> int | None:
        return self.roster.waitlist_position(member_id)

    def completion_of(self, member_id: str) -> Outcome:
        return self.progress.completion_of(member_id)

    # ----- seats -----

    def enrol(
        self,
        member: MemberView,
        now: datetime,
        enrolment_id: str | None = None,
        place: int | None = None,
    ) -> Enrolment:
        """Enrol a member: confirmed, awaiting approval or waitlisted; a DomainError if refused.

        ``place`` orders the member in line (the repository's sequence); by default after every
        enrolment loaded.
        """
        require_aware("now", now)
        existing = self.roster.find(member.member_id)
        if existing is not None and existing.is_active:
            raise Conflict("member_id", "already_enrolled", f"already {existing.status.value}")
        if existing is not None and existing.status is EnrolmentStatus.REJECTED:
            raise Conflict("member_id", "enrolment_rejected", "staff rejected this enrolment")
        self.window.check(now)
        ineligible = eligible(self.course, member)
        if ineligible is not None:
            # Each Ineligible value is a code of its own (docs/errors/training.md).
            raise DomainError("member_id", ineligible.value, f"not eligible: {ineligible.value}")
        if self.roster.complete:
            self.seats.expire_offers(now)  # a partial roster is loaded only when none is due
        status = self.seats.placement()
        place = place if place is not None else self.roster.next_place()
        enrolment = self._open(member, existing, status, now, enrolment_id, place)
        self.seats.announce_placement(enrolment, now, via="enrolled")
        return enrolment

    def _open(
        self,
        member: MemberView,
        existing: Enrolment | None,
        status: EnrolmentStatus,
        now: datetime,
        enrolment_id: str | None,
        place: int,
    ) -> Enrolment:
        if existing is not None:
            # Enrolling again after a cancellation reuses the record (one per member per class)
            # but joins the back of the queue, as a new enrolment would.
            self.roster.move(existing, status)
            existing.sequence, existing.enrolled_at = place, now
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
            sequence=place,
            enrolled_at=now,
        )
        self.roster.add(enrolment)
        return enrolment

    def approve(self, member_id: str, now: datetime) -> Enrolment:
        require_aware("now", now)
        return self.seats.approve(member_id, now)

    def reject(self, member_id: str, reason: str, now: datetime) -> Enrolment:
        require_aware("now", now)
        return self.seats.reject(member_id, reason, now)

    def accept_offer(self, member_id: str, now: datetime) -> Enrolment:
        require_aware("now", now)
        return self.seats.accept_offer(member_id, now)

    def cancel(self, member_id: str, by: Actor, reason: str, now: datetime) -> Enrolment:
        require_aware("now", now)
        return self.seats.cancel(member_id, by, reason, now)

    def member_left(self, member_id: str, now: datetime) -> Enrolment | None:
        require_aware("now", now)
        return self.seats.member_left(member_id, now)

    def expire_offers(self, now: datetime) -> list[Enrolment]:
        """Run by a periodic sweep, and before every enrolment so expired offers never block."""
        require_aware("now", now)
        return self.seats.expire_offers(now)

    def release_no_shows(self, now: datetime) -> list[Enrolment]:
        """Apply the no-show rule once, after the first session: absentees' seats are freed.

        Run it when staff have finished recording the first session's attendance (e.g. the next
        morning); until the first session has ended, and on later runs, it does nothing.
        """
        require_aware("now", now)
        first = self.timetable.first
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
            for e in sorted(self.roster, key=lambda e: e.sequence)
            if e.status is EnrolmentStatus.CONFIRMED and first.session_id not in e.check_ins
        ]
        self.seats.release(absent, now)
        return absent

    def change_capacity(self, capacity: int | None, now: datetime) -> None:
        """Change the number of seats; refused below the seats already held. More seats go to
        the waitlist at once (after the change is recorded)."""
        require_aware("now", now)
        previous = self.seats.resize(capacity)
        if previous != capacity:
            self.events.append(
                ClassCapacityChanged(
                    class_id=self.class_id,
                    course_id=self.course.course_id,
                    previous_capacity=previous,
                    capacity=capacity,
                )
            )
        self.seats.fill_free_seats(now)

    def remind(self, now: datetime, ahead: timedelta) -> list[Session]:
        """Remind confirmed members of each session starting within ``ahead``, once a session.

        Waitlisted and offered members are not reminded: they have no seat to come to yet, and
        hear when they get one. A member confirmed after the reminder went out was told the start
        time in their confirmation.
        """
        require_aware("now", now)
        due = self.timetable.remind(now, ahead)
        seated = [e for e in self.roster if e.status is EnrolmentStatus.CONFIRMED]
        for session in due:
            for enrolment in sorted(seated, key=lambda e: e.sequence):
                self.events.append(
                    self.reminder(session, enrolment.enrolment_id, enrolment.member_id)
                )
        return due

    def reminder(self, session: Session, enrolment_id: str, member_id: str) -> ClassReminder:
        """A confirmed member's reminder of a session (also for a lecture's thousands, which go
        out in slices without the enrolments loaded)."""
        return self.enrolment_event(
            ClassReminder,
            enrolment_id,
            member_id,
            session_id=session.session_id,
            starts_at=session.starts_at,
            ends_at=session.ends_at,
            venue=session.venue,
            online_link=session.online_link,
        )

    # ----- attendance, minutes, scores, certificates -----

    def check_in_by_staff(
        self, session_id: str, member_id: str, now: datetime, today: date | None = None
    ) -> Enrolment:
        """Staff record that a member attended; allowed from check-in opening, also afterwards."""
        require_aware("now", now)
        session = self.session(session_id)
        self.progress.attending(member_id)
        if now < session.check_in_opens_at:
            raise DomainError("session_id", "session_not_started", "the session has not started")
        day = today or now.date()
        return self.progress.check_in(session_id, member_id, CheckInMethod.STAFF, now, day)[0]

    def check_in_with_code(
        self,
        session_id: str,
        member_id: str,
        code: str,
        secret: bytes,
        now: datetime,
        today: date | None = None,
    ) -> Enrolment:
        """The member checks in with the session's code, while the session is open."""
        require_aware("now", now)
        self.session(session_id)
        self.progress.attending(member_id)
        self.progress.check_code(session_id, code, secret, now)
        day = today or now.date()
        return self.progress.check_in(session_id, member_id, CheckInMethod.CODE, now, day)[0]

    def record_watched_minutes(
        self, member_id: str, minutes: int, now: datetime, today: date | None = None
    ) -> Enrolment:
        require_aware("now", now)
        return self.progress.watched(member_id, minutes, today or now.date())

    def record_score(
        self, member_id: str, score: Decimal, now: datetime, today: date | None = None
    ) -> Enrolment:
        require_aware("now", now)
        return self.progress.score(member_id, score, today or now.date())

    def issue_certificate(
        self, member_id: str, number: str, now: datetime, holder_name: str | None = None
    ) -> Certificate:
        """``now`` is the federation's time (its date is the certificate's issue date)."""
        require_aware("now", now)
        return self.progress.issue_certificate(member_id, number, now.date(), holder_name)

    def _record(self, event_type: type[EnrolmentEvent], enrolment: Enrolment, **data: Any) -> None:
        self.events.append(
            self.enrolment_event(event_type, enrolment.enrolment_id, enrolment.member_id, **data)
        )

    def enrolment_event(
        self, event_type: type[E], enrolment_id: str, member_id: str, **data: Any
    ) -> E:
        """An enrolment event with what a notification needs to be rendered alone (also for a
        batch's thousands, which are not loaded as enrolments)."""
        return event_type(
            class_id=self.class_id,
            enrolment_id=enrolment_id,
            member_id=member_id,
            course_id=self.course.course_id,
            course_title=self.course.title,
            class_name=self.name,
            **data,
        )
