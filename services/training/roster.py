"""A class's enrolments as far as they are loaded, and how many hold a seat or wait for one.

A roster is *complete* when every enrolment of the class is loaded: serving the waitlist (who is
next?) needs that, so seat decisions that free a seat load the whole class. Enrolling, attendance,
minutes and scores load only the member's own enrolment: the roster is then partial and the
counters (``held``, ``waiting``) come from the class's row, kept by every change of status, so a
300,000-member lecture is never loaded to enrol one more member. A class without capacity keeps no
counters (``None`` while partial): nothing is decided by them, and no hot row is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from services.training.enrolment import SEAT_HOLDING, Enrolment, EnrolmentStatus
from shared.errors import Conflict, NotFound


class IncompleteRoster(RuntimeError):
    """A rule that needs every enrolment of the class ran on a roster loaded for one member."""


class Roster:
    def __init__(
        self,
        enrolments: Iterable[Enrolment] = (),
        *,
        complete: bool = True,
        held: int | None = None,
        waiting: int | None = None,
    ) -> None:
        loaded = list(enrolments)
        self._by_member = {e.member_id: e for e in loaded}
        if len(self._by_member) != len(loaded):
            raise Conflict("member_id", "already_enrolled", "one enrolment per member per class")
        self.complete = complete
        if complete:
            held = sum(1 for e in loaded if e.holds_seat)
            waiting = sum(1 for e in loaded if e.status is EnrolmentStatus.WAITLISTED)
        self.held, self.waiting = held, waiting

    def __iter__(self) -> Iterator[Enrolment]:
        return iter(self._by_member.values())

    def find(self, member_id: str) -> Enrolment | None:
        return self._by_member.get(member_id)

    def of(self, member_id: str) -> Enrolment:
        enrolment = self._by_member.get(member_id)
        if enrolment is None:
            raise NotFound("member_id", "not_enrolled", "the member has no enrolment in this class")
        return enrolment

    def add(self, enrolment: Enrolment) -> None:
        self._by_member[enrolment.member_id] = enrolment
        self._count(enrolment.status, 1)

    def move(self, enrolment: Enrolment, status: EnrolmentStatus) -> None:
        """Every change of status goes through here, so the counters stay true."""
        self._count(enrolment.status, -1)
        enrolment.status = status
        self._count(status, 1)

    def _count(self, status: EnrolmentStatus, delta: int) -> None:
        if status in SEAT_HOLDING and self.held is not None:
            self.held += delta
        elif status is EnrolmentStatus.WAITLISTED and self.waiting is not None:
            self.waiting += delta

    def next_place(self) -> int:
        """The place after every other (the repository hands out places from a sequence)."""
        self.require_complete("a place in line")
        return max((e.sequence for e in self), default=0) + 1

    def waitlist(self) -> list[Enrolment]:
        """Waitlisted enrolments, next in line first."""
        self.require_complete("the waitlist")
        waiting = [e for e in self if e.status is EnrolmentStatus.WAITLISTED]
        return sorted(waiting, key=lambda e: e.sequence)

    def waitlist_position(self, member_id: str) -> int | None:
        """1 for the next in line. On a partial roster only the last in line is known: the
        member who just joined the back of the queue."""
        enrolment = self.find(member_id)
        if enrolment is None or enrolment.status is not EnrolmentStatus.WAITLISTED:
            return None
        if not self.complete:
            return self.waiting
        return [e.member_id for e in self.waitlist()].index(member_id) + 1

    def require_complete(self, what: str) -> None:
        if not self.complete:
            raise IncompleteRoster(f"{what} needs every enrolment of the class loaded")
