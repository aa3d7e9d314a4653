"""When a member has completed a course: the rule, and its evaluation.

A rule has up to three criteria, each optional, all of which must hold:

* attendance: at least ``min_attendance_percent`` of the class's sessions attended;
* assessment: a score of at least ``pass_mark`` (only if the course has an assessment);
* viewing: at least ``min_watched_minutes`` of online lectures watched (lecture series).

Evaluation is a pure function of the member's record so it can be re-run whenever attendance,
minutes or a score change, and its "not yet" answer lists every shortfall so a member can be told
exactly what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from shared.errors import DomainError


class Criterion(StrEnum):
    ATTENDANCE = "attendance_percent"
    ASSESSMENT = "assessment_score"
    VIEWING = "watched_minutes"


@dataclass(frozen=True)
class CompletionRule:
    min_attendance_percent: int | None = 80
    pass_mark: Decimal | None = None
    min_watched_minutes: int | None = None

    def __post_init__(self) -> None:
        if (
            self.min_attendance_percent is None
            and self.pass_mark is None
            and self.min_watched_minutes is None
        ):
            # A rule with no criterion would complete everyone on enrolment: surely a mistake.
            raise DomainError(
                "completion_rule", "no_criterion", "a completion rule needs a criterion"
            )
        if self.min_attendance_percent is not None and not 1 <= self.min_attendance_percent <= 100:
            raise DomainError(
                "min_attendance_percent", "out_of_range", "attendance percent must be 1-100"
            )
        if self.pass_mark is not None and self.pass_mark < 0:
            raise DomainError("pass_mark", "negative", "a pass mark cannot be negative")
        if self.min_watched_minutes is not None and self.min_watched_minutes <= 0:
            raise DomainError(
                "min_watched_minutes", "not_positive", "watched minutes must be positive"
            )

    @classmethod
    def attendance(cls, percent: int = 80, pass_mark: Decimal | None = None) -> CompletionRule:
        """Classroom courses: attend enough sessions, and pass the assessment if there is one."""
        return cls(min_attendance_percent=percent, pass_mark=pass_mark)

    @classmethod
    def viewing(cls, minutes: int, pass_mark: Decimal | None = None) -> CompletionRule:
        """Online lecture series: watch enough minutes (live or replay)."""
        return cls(min_attendance_percent=None, pass_mark=pass_mark, min_watched_minutes=minutes)

    @property
    def has_assessment(self) -> bool:
        return self.pass_mark is not None


@dataclass(frozen=True)
class AttendanceTally:
    attended: int
    sessions: int


@dataclass(frozen=True)
class Shortfall:
    """One criterion not met yet: what is needed and what the member has (None: nothing yet)."""

    criterion: Criterion
    needed: Decimal | int
    actual: Decimal | int | None


@dataclass(frozen=True)
class Completed:
    pass


@dataclass(frozen=True)
class NotYet:
    reasons: tuple[Shortfall, ...]


Outcome = Completed | NotYet


def evaluate_completion(
    rule: CompletionRule,
    attendance: AttendanceTally,
    score: Decimal | None,
    minutes: int,
) -> Outcome:
    reasons: list[Shortfall] = []
    if rule.min_attendance_percent is not None:
        percent = rule.min_attendance_percent
        # Integer arithmetic: 4 of 5 sessions is exactly 80%, no float rounding at the edge.
        # A class without sessions cannot meet an attendance criterion.
        if attendance.sessions == 0 or attendance.attended * 100 < percent * attendance.sessions:
            actual = (
                attendance.attended * 100 // attendance.sessions if attendance.sessions else None
            )
            reasons.append(Shortfall(Criterion.ATTENDANCE, percent, actual))
    if rule.pass_mark is not None and (score is None or score < rule.pass_mark):
        reasons.append(Shortfall(Criterion.ASSESSMENT, rule.pass_mark, score))
    if rule.min_watched_minutes is not None and minutes < rule.min_watched_minutes:
        reasons.append(Shortfall(Criterion.VIEWING, rule.min_watched_minutes, minutes))
    return NotYet(tuple(reasons)) if reasons else Completed()
