"""What confirmed members do in a class: attend, watch, get scored, complete, get a certificate.

Completion is evaluated whenever attendance, minutes or a score change, and is final: once a member
has completed (and perhaps been issued a certificate) a later correction does not take it back.
Each change touches one member's enrolment only, so it works on a roster loaded for that member.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from services.training.certificates import Certificate, read_certificate_number
from services.training.completion import AttendanceTally, Completed, Outcome, evaluate_completion
from services.training.courses import Course
from services.training.enrolment import CheckIn, CheckInMethod, Enrolment, EnrolmentStatus
from services.training.roster import Roster
from services.training.seats import Record
from services.training.sessions import Session, Timetable, check_session_code
from shared.errors import DomainError
from shared.events.training import AttendanceRecorded, CertificateIssued, CourseCompleted

# One viewing report covers at most a day: anything larger is a client bug, not a lecture.
MAX_MINUTES_PER_REPORT = 24 * 60


class Progress:
    def __init__(
        self,
        class_id: str,
        course: Course,
        class_name: str,
        timetable: Timetable,
        roster: Roster,
        record: Record,
    ) -> None:
        self._class_id = class_id
        self._course = course
        self._class_name = class_name
        self._timetable = timetable
        self._roster = roster
        self._record = record

    def check_in(
        self, session_id: str, member_id: str, method: CheckInMethod, now: datetime, today: date
    ) -> tuple[Enrolment, Session]:
        session = self._timetable.session(session_id)
        enrolment = self.attending(member_id)
        # A second scan of the same code, or staff confirming a self check-in, changes nothing.
        if session.session_id in enrolment.check_ins:
            return enrolment, session
        enrolment.check_ins[session.session_id] = CheckIn(session.session_id, method, now)
        self._record(
            AttendanceRecorded,
            enrolment,
            session_id=session.session_id,
            session_starts_at=session.starts_at,
            method=method.value,
            recorded_at=now,
        )
        self.evaluate(enrolment, today)
        return enrolment, session

    def check_code(self, session_id: str, code: str, secret: bytes, now: datetime) -> None:
        check_session_code(secret, self._timetable.session(session_id), code, now)

    def watched(self, member_id: str, minutes: int, today: date) -> Enrolment:
        """Add minutes of online lecture watched (the caller drops repeated report ids).

        No event per report: a live lecture has hundreds of thousands of viewers. Completion is.
        """
        check_minutes(minutes)
        enrolment = self.attending(member_id)
        enrolment.watched_minutes += minutes
        self.evaluate(enrolment, today)
        return enrolment

    def score(self, member_id: str, score: Decimal, today: date) -> Enrolment:
        """Record (or correct) a member's assessment score."""
        if not self._course.completion.has_assessment:
            raise DomainError("score", "no_assessment", "this course has no assessment")
        if score < 0:
            raise DomainError("score", "negative", "a score cannot be negative")
        enrolment = self.attending(member_id)
        enrolment.score = score
        self.evaluate(enrolment, today)
        return enrolment

    def completion_of(self, member_id: str) -> Outcome:
        """Completed, or what the member still lacks."""
        enrolment = self._roster.of(member_id)
        if enrolment.completed_on is not None:
            return Completed()
        return self.outcome(enrolment)

    def issue_certificate(
        self, member_id: str, number: str, today: date, holder_name: str | None = None
    ) -> Certificate:
        """Issue the certificate of a completed member under ``number`` (new_certificate_number).

        Idempotent: a member who has one keeps it (no new event), so a retried handler is harmless.
        ``holder_name`` defaults to the name the member enrolled under.
        """
        enrolment = self._roster.of(member_id)
        if enrolment.certificate is not None:
            return enrolment.certificate
        if enrolment.completed_on is None:
            raise DomainError("member_id", "not_completed", "the member has not completed")
        certificate = self.certificate(
            number,
            enrolment.enrolment_id,
            member_id,
            holder_name or enrolment.member_name,
            enrolment.completed_on,
            today,
        )
        enrolment.certificate = certificate
        self._record(
            CertificateIssued,
            enrolment,
            certificate_number=certificate.number,
            issued_on=certificate.issued_on,
        )
        return certificate

    def certificate(
        self,
        number: str,
        enrolment_id: str,
        member_id: str,
        holder_name: str,
        completed_on: date,
        today: date,
    ) -> Certificate:
        """The certificate of a completion (a batch's are issued without loading enrolments)."""
        return Certificate(
            number=read_certificate_number(number),
            enrolment_id=enrolment_id,
            member_id=member_id,
            holder_name=holder_name,
            course_id=self._course.course_id,
            course_title=self._course.title,
            class_id=self._class_id,
            class_name=self._class_name,
            completed_on=completed_on,
            issued_on=today,
        )

    def attending(self, member_id: str) -> Enrolment:
        enrolment = self._roster.of(member_id)
        if enrolment.status is not EnrolmentStatus.CONFIRMED:
            raise DomainError(
                "member_id", "not_confirmed", f"only confirmed members attend ({enrolment.status})"
            )
        return enrolment

    def outcome(self, enrolment: Enrolment) -> Outcome:
        tally = AttendanceTally(
            attended=len(enrolment.check_ins), sessions=len(self._timetable.sessions)
        )
        return evaluate_completion(
            self._course.completion, tally, enrolment.score, enrolment.watched_minutes
        )

    def evaluate(self, enrolment: Enrolment, today: date) -> bool:
        """Complete the enrolment if it now meets the rule; True if it completed just now."""
        if enrolment.completed_on is not None:
            return False
        if not isinstance(self.outcome(enrolment), Completed):
            return False
        # The federation's day (the clock's ``today``): a 23:30 Beijing completion is that day.
        enrolment.completed_on = today
        self._record(CourseCompleted, enrolment, completed_on=today)
        return True


def check_minutes(minutes: int) -> None:
    if not 0 < minutes <= MAX_MINUTES_PER_REPORT:
        raise DomainError("minutes", "out_of_range", "minutes watched must be 1 to 1440")
