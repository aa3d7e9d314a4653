"""Roll-ups for the federation's reports: per class, per course, per union subtree and year.

Reports work on flat ``EnrolmentFact`` rows, one per enrolment, so the repository can produce them
with one query (or ``facts_of`` a loaded class) and the counting stays pure and testable. Members
are counted where they were when they enrolled (the enrolment's union snapshot).

Counts are of enrolments, i.e. person-times (人次) as the federation reports them: a member in two
classes counts twice. ``enrolled`` is enrolments confirmed now; ``completed`` counts completion even
if the enrolment was later cancelled (e.g. the member left the union after completing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from services.training.classes import TrainingClass
from services.training.enrolment import EnrolmentStatus


@dataclass(frozen=True)
class EnrolmentFact:
    class_id: str
    course_id: str
    course_kind: str
    # The year the class starts in: a class belongs to one year's report.
    year: int
    member_id: str
    union_id: str
    union_path: tuple[str, ...]
    status: EnrolmentStatus
    # Sessions checked in to.
    attendances: int
    watched_minutes: int
    completed: bool
    certified: bool

    @property
    def attended(self) -> bool:
        return self.attendances > 0 or self.watched_minutes > 0


@dataclass(frozen=True)
class Counts:
    enrolled: int = 0
    pending_approval: int = 0
    offered: int = 0
    waitlisted: int = 0
    cancelled: int = 0
    rejected: int = 0
    # Enrolments that attended at least one session or watched some minutes.
    attended: int = 0
    # Session check-ins in all (one member at five sessions: five).
    attendances: int = 0
    completed: int = 0
    certified: int = 0


@dataclass(frozen=True)
class UnionReport:
    root_union_id: str
    year: int
    total: Counts
    # Keyed by the union directly below the root that the member belongs under; members of the
    # root union itself are under the root's own id.
    by_child: dict[str, Counts]


_STATUS_FIELD = {
    EnrolmentStatus.CONFIRMED: "enrolled",
    EnrolmentStatus.PENDING_APPROVAL: "pending_approval",
    EnrolmentStatus.OFFERED: "offered",
    EnrolmentStatus.WAITLISTED: "waitlisted",
    EnrolmentStatus.CANCELLED: "cancelled",
    EnrolmentStatus.REJECTED: "rejected",
}


def facts_of(training_class: TrainingClass) -> list[EnrolmentFact]:
    year = training_class.starts_at.year
    return [
        EnrolmentFact(
            class_id=training_class.class_id,
            course_id=training_class.course.course_id,
            course_kind=training_class.course.kind.value,
            year=year,
            member_id=e.member_id,
            union_id=e.union_id,
            union_path=e.union_path,
            status=e.status,
            attendances=len(e.check_ins),
            watched_minutes=e.watched_minutes,
            completed=e.completed_on is not None,
            certified=e.certificate is not None,
        )
        for e in training_class.enrolments
    ]


def count(facts: Iterable[EnrolmentFact]) -> Counts:
    totals: dict[str, int] = defaultdict(int)
    for fact in facts:
        totals[_STATUS_FIELD[fact.status]] += 1
        totals["attended"] += fact.attended
        totals["attendances"] += fact.attendances
        totals["completed"] += fact.completed
        totals["certified"] += fact.certified
    return Counts(**totals)


def roll_up_class(training_class: TrainingClass) -> Counts:
    return count(facts_of(training_class))


def roll_up_by(facts: Iterable[EnrolmentFact], key: str = "course_id") -> dict[str, Counts]:
    """Counts per value of ``key``: "course_id", "class_id" or "course_kind"."""
    groups: dict[str, list[EnrolmentFact]] = defaultdict(list)
    for fact in facts:
        groups[getattr(fact, key)].append(fact)
    return {value: count(group) for value, group in groups.items()}


def _child_below(fact: EnrolmentFact, root_union_id: str) -> str | None:
    """The union directly below the root on the member's path; the root itself; None if outside."""
    chain = list(fact.union_path)
    if not chain or chain[-1] != fact.union_id:
        chain.append(fact.union_id)
    if root_union_id not in chain:
        return None
    below = chain.index(root_union_id) + 1
    return chain[below] if below < len(chain) else root_union_id


def roll_up_union(facts: Iterable[EnrolmentFact], root_union_id: str, year: int) -> UnionReport:
    """Counts for members of a union subtree in one year's classes, also per union below it."""
    groups: dict[str, list[EnrolmentFact]] = defaultdict(list)
    for fact in facts:
        child = _child_below(fact, root_union_id) if fact.year == year else None
        if child is not None:
            groups[child].append(fact)
    return UnionReport(
        root_union_id=root_union_id,
        year=year,
        total=count(fact for group in groups.values() for fact in group),
        by_child={child: count(group) for child, group in sorted(groups.items())},
    )
