"""Completion rules, evaluated as a pure function."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.training.domain import (
    AttendanceTally,
    Completed,
    CompletionRule,
    Criterion,
    DomainError,
    NotYet,
    Shortfall,
    evaluate_completion,
)


def test_attending_eighty_percent_completes():
    outcome = evaluate_completion(CompletionRule(), AttendanceTally(4, 5), None, 0)
    assert outcome == Completed()


def test_attending_less_says_how_much_was_attended():
    outcome = evaluate_completion(CompletionRule(), AttendanceTally(3, 5), None, 0)
    assert outcome == NotYet((Shortfall(Criterion.ATTENDANCE, 80, 60),))


def test_the_percentage_is_compared_exactly_not_in_floats():
    # 2 of 3 is 66.66…%: enough for 66, not for 67.
    assert evaluate_completion(CompletionRule(66), AttendanceTally(2, 3), None, 0) == Completed()
    assert isinstance(
        evaluate_completion(CompletionRule(67), AttendanceTally(2, 3), None, 0), NotYet
    )


def test_a_class_without_sessions_cannot_meet_an_attendance_rule():
    outcome = evaluate_completion(CompletionRule(), AttendanceTally(0, 0), None, 0)
    assert outcome == NotYet((Shortfall(Criterion.ATTENDANCE, 80, None),))


def test_a_course_with_an_assessment_needs_a_score_at_or_above_the_pass_mark():
    rule = CompletionRule.attendance(80, pass_mark=Decimal("60"))
    attended = AttendanceTally(5, 5)
    assert evaluate_completion(rule, attended, None, 0) == NotYet(
        (Shortfall(Criterion.ASSESSMENT, Decimal("60"), None),)
    )
    assert isinstance(evaluate_completion(rule, attended, Decimal("59.99"), 0), NotYet)
    assert evaluate_completion(rule, attended, Decimal("60"), 0) == Completed()


def test_a_lecture_series_counts_minutes_watched():
    rule = CompletionRule.viewing(120)
    no_sessions = AttendanceTally(0, 0)
    assert evaluate_completion(rule, no_sessions, None, 119) == NotYet(
        (Shortfall(Criterion.VIEWING, 120, 119),)
    )
    assert evaluate_completion(rule, no_sessions, None, 120) == Completed()


def test_every_shortfall_is_listed():
    rule = CompletionRule(80, Decimal("60"), 30)
    outcome = evaluate_completion(rule, AttendanceTally(1, 5), Decimal("10"), 5)
    assert isinstance(outcome, NotYet)
    assert [r.criterion for r in outcome.reasons] == [
        Criterion.ATTENDANCE,
        Criterion.ASSESSMENT,
        Criterion.VIEWING,
    ]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"min_attendance_percent": None}, "no_criterion"),
        ({"min_attendance_percent": 0}, "out_of_range"),
        ({"min_attendance_percent": 101}, "out_of_range"),
        ({"pass_mark": Decimal("-1")}, "negative"),
        ({"min_watched_minutes": 0}, "not_positive"),
    ],
)
def test_a_rule_that_makes_no_sense_is_refused(kwargs, reason):
    with pytest.raises(DomainError) as refused:
        CompletionRule(**kwargs)
    assert refused.value.code == reason


@given(
    percent=st.integers(1, 100),
    sessions=st.integers(1, 60),
    data=st.data(),
)
def test_attendance_completes_exactly_when_the_share_reaches_the_percent(percent, sessions, data):
    attended = data.draw(st.integers(0, sessions))
    outcome = evaluate_completion(
        CompletionRule(percent), AttendanceTally(attended, sessions), None, 0
    )
    assert isinstance(outcome, Completed) == (
        Fraction(attended, sessions) >= Fraction(percent, 100)
    )
