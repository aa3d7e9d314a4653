"""What confirmed members do in a class: attend, watch, get scored, complete, get a certificate.

Completion is evaluated whenever attendance, minutes or a score change, and is final: once a member
has completed (and perhaps been issued a certificate) a later correction does not take it back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from services.training.certificates import Certificate, read_certificate_number
from services.training.class_base import ClassBase
from services.training.completion import AttendanceTally, Completed, Outcome, evaluate_completion
from services.training.enrolment import CheckIn, CheckInMethod, Enrolment, EnrolmentStatus
from services.training.sessions import Session, check_session_code, require_aware
from shared.errors import DomainError
from shared.events.training import (
    AttendanceRecorded,
    CertificateIssued,
    CourseCompleted,
)

# One viewing report covers at most a day: anything larger is a client bug, not a lecture.
MAX_MINUTES_PER_REPORT = 24 * 60


class ClassProgress(ClassBase):
    def check_in_by_staff(self, session_id: str, member_id: str, now: datetime) -> Enrolment:
        """Staff record that a member attended; allowed from check-in opening, also afterwards."""
        require_aware("now", now)
        session = self.session(session_id)
        enrolment = self._attending(member_id)
        if now < session.check_in_opens_at:
            raise DomainError("session_id", "session_not_started", "the session has not started")
        self._check_in(enrolment, session, CheckInMethod.STAFF, now)
        return enrolment

    def check_in_with_code(
        self, session_id: str, member_id: str, code: str, secret: bytes, now: datetime
    ) -> Enrolment:
        """The member checks in with the session's code, while the session is open."""
        require_aware("now", now)
        session = self.session(session_id)
        enrolment = self._attending(member_id)
        check_session_code(secret, session, code, now)
        self._check_in(enrolment, session, CheckInMethod.CODE, now)
        return enrolment

    def record_watched_minutes(self, member_id: str, minutes: int, now: datetime) -> Enrolment:
        """Add minutes of online lecture watched (the caller drops repeated report ids).

        No event per report: a live lecture has hundreds of thousands of viewers. Completion is.
        """
        require_aware("now", now)
        if not 0 < minutes <= MAX_MINUTES_PER_REPORT:
            raise DomainError("minutes", "out_of_range", "minutes watched must be 1 to 1440")
        enrolment = self._attending(member_id)
        enrolment.watched_minutes += minutes
        self._evaluate(enrolment, now)
        return enrolment

    def record_score(self, member_id: str, score: Decimal, now: datetime) -> Enrolment:
        """Record (or correct) a member's assessment score."""
        require_aware("now", now)
        if not self.course.completion.has_assessment:
            raise DomainError("score", "no_assessment", "this course has no assessment")
        if score < 0:
            raise DomainError("score", "negative", "a score cannot be negative")
        enrolment = self._attending(member_id)
        enrolment.score = score
        self._evaluate(enrolment, now)
        return enrolment

    def completion_of(self, member_id: str) -> Outcome:
        """Completed, or what the member still lacks."""
        enrolment = self.enrolment_of(member_id)
        if enrolment.completed_on is not None:
            return Completed()
        return self._outcome(enrolment)

    def issue_certificate(
        self, member_id: str, number: str, now: datetime, holder_name: str | None = None
    ) -> Certificate:
        """Issue the certificate of a completed member under ``number`` (new_certificate_number).

        Idempotent: a member who has one keeps it (no new event), so a retried handler is harmless.
        ``holder_name`` defaults to the name the member enrolled under.
        """
        require_aware("now", now)
        enrolment = self.enrolment_of(member_id)
        if enrolment.certificate is not None:
            return enrolment.certificate
        if enrolment.completed_on is None:
            raise DomainError("member_id", "not_completed", "the member has not completed")
        certificate = Certificate(
            number=read_certificate_number(number),
            enrolment_id=enrolment.enrolment_id,
            member_id=member_id,
            holder_name=holder_name or enrolment.member_name,
            course_id=self.course.course_id,
            course_title=self.course.title,
            class_id=self.class_id,
            class_name=self.name,
            completed_on=enrolment.completed_on,
            issued_on=now.date(),
        )
        enrolment.certificate = certificate
        self._record(
            CertificateIssued,
            enrolment,
            certificate_number=certificate.number,
            issued_on=certificate.issued_on,
        )
        return certificate

    def _attending(self, member_id: str) -> Enrolment:
        enrolment = self.enrolment_of(member_id)
        if enrolment.status is not EnrolmentStatus.CONFIRMED:
            raise DomainError(
                "member_id", "not_confirmed", f"only confirmed members attend ({enrolment.status})"
            )
        return enrolment

    def _check_in(
        self, enrolment: Enrolment, session: Session, method: CheckInMethod, now: datetime
    ) -> None:
        # A second scan of the same code, or staff confirming a self check-in, changes nothing.
        if session.session_id in enrolment.check_ins:
            return
        enrolment.check_ins[session.session_id] = CheckIn(session.session_id, method, now)
        self._record(
            AttendanceRecorded,
            enrolment,
            session_id=session.session_id,
            session_starts_at=session.starts_at,
            method=method.value,
            recorded_at=now,
        )
        self._evaluate(enrolment, now)

    def _outcome(self, enrolment: Enrolment) -> Outcome:
        tally = AttendanceTally(attended=len(enrolment.check_ins), sessions=len(self.sessions))
        return evaluate_completion(
            self.course.completion, tally, enrolment.score, enrolment.watched_minutes
        )

    def _evaluate(self, enrolment: Enrolment, now: datetime) -> None:
        if enrolment.completed_on is not None:
            return
        if isinstance(self._outcome(enrolment), Completed):
            # The date in ``now``'s time zone: pass Beijing time so a 23:30 completion is that day.
            enrolment.completed_on = now.date()
            self._record(CourseCompleted, enrolment, completed_on=enrolment.completed_on)
