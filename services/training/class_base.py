"""The state of a class and the questions anyone may ask of it; changes live in subclasses.

``TrainingClass`` is built in layers so no module grows too long: this base holds the state and the
queries, ``ClassProgress`` adds attendance, completion and certificates, and ``TrainingClass``
adds enrolment and the waitlist.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.training.courses import Course
from services.training.enrolment import Enrolment, EnrolmentStatus
from services.training.policies import EnrolmentWindow, WaitlistPolicy
from services.training.sessions import Session
from shared.errors import Conflict, DomainError, NotFound
from shared.events.base import EventData
from shared.events.training import EnrolmentEvent


class ClassBase:
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
    ) -> None:
        """Rebuild a class (the repository's entry point); ``TrainingClass.schedule`` makes one."""
        self.class_id = class_id
        self.course = course
        self.name = name
        self.sessions: list[Session] = sorted(sessions, key=lambda s: s.starts_at)
        # None: no seat limit (online lectures).
        self.capacity = capacity
        self.window = window
        self.waitlist_policy = waitlist or WaitlistPolicy()
        self.requires_approval = requires_approval
        # The no-show rule: confirmed members absent from the first session lose their seat to the
        # waitlist. ``no_shows_released`` records that it has run, so it runs once per class.
        self.releases_no_shows = releases_no_shows
        self.no_shows_released = no_shows_released
        self.enrolments: list[Enrolment] = list(enrolments)
        self.events: list[EventData] = []
        self._by_member = {e.member_id: e for e in self.enrolments}
        self._check_shape()

    def _check_shape(self) -> None:
        if not self.name.strip():
            raise DomainError("name", "required", "a class needs a name")
        if not self.sessions:
            raise DomainError("sessions", "required", "a class needs at least one session")
        if len({s.session_id for s in self.sessions}) != len(self.sessions):
            raise DomainError("sessions", "duplicate_session", "session ids must be unique")
        if self.capacity is not None and self.capacity < 1:
            raise DomainError("capacity", "not_positive", "capacity must be at least 1")
        if self.window.closes_at > self.ends_at:
            raise DomainError(
                "closes_at", "after_class_end", "enrolment cannot stay open after the class ends"
            )
        if len(self._by_member) != len(self.enrolments):
            raise Conflict("member_id", "already_enrolled", "one enrolment per member per class")
        if self.capacity is not None and self.seats_held() > self.capacity:
            raise DomainError("capacity", "overfilled", "more seats held than the capacity")

    @property
    def starts_at(self) -> datetime:
        return self.sessions[0].starts_at

    @property
    def ends_at(self) -> datetime:
        return max(s.ends_at for s in self.sessions)

    def next_start(self, now: datetime) -> datetime:
        """When the member should come: the next session's start, or the first's if all are past."""
        upcoming = [s.starts_at for s in self.sessions if s.starts_at >= now]
        return min(upcoming, default=self.starts_at)

    def has_ended(self, now: datetime) -> bool:
        return now >= self.ends_at

    def session(self, session_id: str) -> Session:
        for session in self.sessions:
            if session.session_id == session_id:
                return session
        raise NotFound("session_id", "unknown_session", f"the class has no session {session_id}")

    def find_enrolment(self, member_id: str) -> Enrolment | None:
        return self._by_member.get(member_id)

    def enrolment_of(self, member_id: str) -> Enrolment:
        enrolment = self._by_member.get(member_id)
        if enrolment is None:
            raise NotFound("member_id", "not_enrolled", "the member has no enrolment in this class")
        return enrolment

    def seats_held(self) -> int:
        return sum(1 for e in self.enrolments if e.holds_seat)

    def seats_free(self) -> int | None:
        """Seats nobody holds; None for a class without capacity."""
        return None if self.capacity is None else self.capacity - self.seats_held()

    def waitlist(self) -> list[Enrolment]:
        """Waitlisted enrolments, next in line first."""
        waiting = [e for e in self.enrolments if e.status is EnrolmentStatus.WAITLISTED]
        return sorted(waiting, key=lambda e: e.sequence)

    def waitlist_position(self, member_id: str) -> int | None:
        for position, enrolment in enumerate(self.waitlist(), start=1):
            if enrolment.member_id == member_id:
                return position
        return None

    def _in_status(self, member_id: str, status: EnrolmentStatus) -> Enrolment:
        enrolment = self.enrolment_of(member_id)
        if enrolment.status is not status:
            raise Conflict("member_id", f"not_{status.value}", f"enrolment is {enrolment.status}")
        return enrolment

    def _record(self, event_type: type[EnrolmentEvent], enrolment: Enrolment, **data: Any) -> None:
        """Record an enrolment event with what a notification needs to be rendered alone."""
        self.events.append(
            event_type(
                class_id=self.class_id,
                enrolment_id=enrolment.enrolment_id,
                member_id=enrolment.member_id,
                course_id=self.course.course_id,
                course_title=self.course.title,
                class_name=self.name,
                **data,
            )
        )
