"""Attendance: check-in codes, staff check-in, viewing minutes, scores, completion on the way."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.training.alphabet import ALPHABET
from services.training.domain import (
    CHECK_IN_OPENS_BEFORE,
    CompletionRule,
    CourseKind,
    Criterion,
    DomainError,
    NotFound,
    NotYet,
    check_session_code,
    session_code,
)
from shared.events.training import AttendanceRecorded, CourseCompleted


def enrolled(build, members=1, **kwargs):
    cls = build.training_class(**kwargs)
    for n in range(members):
        cls.enrol(build.member(n), build.now)
    cls.events.clear()
    return cls


def test_a_session_code_is_short_unambiguous_and_needs_no_storage(build):
    code = session_code(build.secret, "s1")
    assert len(code) == 6 and set(code) <= set(ALPHABET)
    assert not set(code) & set("01OIL")
    assert session_code(build.secret, "s1") == code
    assert session_code(build.secret, "s2") != code
    assert session_code(b"another-secret-of-enough-bytes", "s1") != code
    assert len(session_code(build.secret, "s1", length=8)) == 8


def test_a_short_secret_is_a_configuration_error(build):
    with pytest.raises(ValueError):
        session_code(b"short", "s1")


def test_a_member_checks_in_with_the_code_during_the_session(build):
    cls = enrolled(build)
    session = cls.sessions[0]
    code = session_code(build.secret, session.session_id)

    enrolment = cls.check_in_with_code("s1", "m0", code, build.secret, session.starts_at)

    assert "s1" in enrolment.check_ins
    [event] = cls.events
    assert isinstance(event, AttendanceRecorded)
    assert (event.session_id, event.method, event.member_id) == ("s1", "code", "m0")
    assert event.course_title == cls.course.title


@pytest.mark.parametrize(
    "moment",
    ["opens", "ends"],
)
def test_the_code_is_valid_from_thirty_minutes_before_start_to_the_end(build, moment):
    cls = enrolled(build)
    session = cls.sessions[0]
    now = session.starts_at - CHECK_IN_OPENS_BEFORE if moment == "opens" else session.ends_at
    code = session_code(build.secret, "s1")
    cls.check_in_with_code("s1", "m0", code, build.secret, now)
    assert "s1" in cls.enrolment_of("m0").check_ins


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (-CHECK_IN_OPENS_BEFORE - timedelta(seconds=1), "code_not_yet_valid"),
        (timedelta(hours=3, seconds=1), "code_expired"),
    ],
)
def test_a_code_outside_the_session_is_refused_naming_why(build, offset, reason):
    cls = enrolled(build)
    session = cls.sessions[0]
    code = session_code(build.secret, "s1")
    with pytest.raises(DomainError) as refused:
        cls.check_in_with_code("s1", "m0", code, build.secret, session.starts_at + offset)
    assert (refused.value.field, refused.value.code) == ("code", reason)
    assert cls.enrolment_of("m0").check_ins == {}


def test_a_wrong_code_is_refused(build):
    cls = enrolled(build)
    session = cls.sessions[0]
    other_sessions_code = session_code(build.secret, "s2")
    with pytest.raises(DomainError) as refused:
        cls.check_in_with_code("s1", "m0", other_sessions_code, build.secret, session.starts_at)
    assert refused.value.code == "wrong_code"


def test_a_code_typed_in_lower_case_with_spaces_is_accepted(build):
    session = build.sessions()[0]
    code = session_code(build.secret, "s1")
    typed = f" {code[:3].lower()} {code[3:].lower()} "
    check_session_code(build.secret, session, typed, session.starts_at)


def test_checking_in_twice_records_one_attendance(build):
    cls = enrolled(build)
    session = cls.sessions[0]
    code = session_code(build.secret, "s1")
    cls.check_in_with_code("s1", "m0", code, build.secret, session.starts_at)
    cls.check_in_with_code("s1", "m0", code, build.secret, session.starts_at)
    cls.check_in_by_staff("s1", "m0", session.starts_at)
    assert len(cls.events) == 1


def test_only_confirmed_members_attend(build):
    cls = enrolled(build, members=2, capacity=1)
    session = cls.sessions[0]
    with pytest.raises(DomainError) as refused:
        cls.check_in_by_staff("s1", "m1", session.starts_at)  # waitlisted
    assert refused.value.code == "not_confirmed"
    with pytest.raises(NotFound) as unknown:
        cls.check_in_by_staff("s1", "m-stranger", session.starts_at)
    assert unknown.value.code == "not_enrolled"
    with pytest.raises(NotFound) as no_session:
        cls.check_in_by_staff("s99", "m0", session.starts_at)
    assert no_session.value.code == "unknown_session"


def test_staff_may_record_attendance_after_the_session_but_not_before_it(build):
    cls = enrolled(build)
    session = cls.sessions[0]
    with pytest.raises(DomainError) as refused:
        cls.check_in_by_staff("s1", "m0", build.now)
    assert refused.value.code == "session_not_started"
    cls.check_in_by_staff("s1", "m0", session.ends_at + timedelta(days=1))
    assert cls.events[-1].method == "staff"


def test_attending_four_of_five_sessions_completes_the_course_once(build):
    cls = enrolled(build)
    for session in cls.sessions[:3]:
        cls.check_in_by_staff(session.session_id, "m0", session.starts_at)
    outcome = cls.completion_of("m0")
    assert isinstance(outcome, NotYet)
    assert [(r.criterion, r.needed, r.actual) for r in outcome.reasons] == [
        (Criterion.ATTENDANCE, 80, 60)
    ]

    cls.check_in_by_staff("s4", "m0", cls.sessions[3].starts_at)
    cls.check_in_by_staff("s5", "m0", cls.sessions[4].starts_at)

    completed = [e for e in cls.events if isinstance(e, CourseCompleted)]
    assert len(completed) == 1
    assert completed[0].completed_on == cls.sessions[3].starts_at.date()
    assert cls.enrolment_of("m0").completed_on == cls.sessions[3].starts_at.date()


def test_an_assessment_must_also_be_passed(build):
    course = build.course(pass_mark=Decimal("60"))
    cls = enrolled(build, course=course, sessions=build.sessions(count=1))
    cls.check_in_by_staff("s1", "m0", cls.sessions[0].starts_at)
    assert cls.enrolment_of("m0").completed_on is None

    cls.record_score("m0", Decimal("59.5"), build.now)
    assert cls.enrolment_of("m0").completed_on is None
    cls.record_score("m0", Decimal("60"), build.now)
    assert cls.enrolment_of("m0").completed_on == build.now.date()


def test_a_score_for_a_course_without_assessment_is_refused(build):
    cls = enrolled(build)
    with pytest.raises(DomainError) as refused:
        cls.record_score("m0", Decimal("90"), build.now)
    assert refused.value.code == "no_assessment"


def test_watched_minutes_add_up_to_completing_a_lecture_series(build):
    course = build.course(kind=CourseKind.LECTURE_SERIES, completion=CompletionRule.viewing(90))
    cls = enrolled(build, course=course, capacity=None, sessions=build.sessions(online=True))

    cls.record_watched_minutes("m0", 45, build.now)
    assert cls.events == []
    cls.record_watched_minutes("m0", 45, build.now)

    assert cls.enrolment_of("m0").watched_minutes == 90
    assert isinstance(cls.events[-1], CourseCompleted)


@pytest.mark.parametrize("minutes", [0, -5, 24 * 60 + 1])
def test_implausible_minutes_are_refused(build, minutes):
    cls = enrolled(build, capacity=None)
    with pytest.raises(DomainError) as refused:
        cls.record_watched_minutes("m0", minutes, build.now)
    assert refused.value.code == "out_of_range"
