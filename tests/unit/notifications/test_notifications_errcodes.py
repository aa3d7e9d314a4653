"""Errcode → action, quota pauses and the back-off schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.errcodes import (
    BACKOFF,
    Action,
    Backoff,
    action_for,
    is_retryable,
    quota_resumes_at,
)


@pytest.mark.parametrize(
    ("errcode", "action"),
    [
        (0, Action.OK),
        (-1, Action.RETRY_BACKOFF),
        (40001, Action.REFRESH_TOKEN),
        (40014, Action.REFRESH_TOKEN),
        (42001, Action.REFRESH_TOKEN),
        (45009, Action.PAUSE_QUOTA),
        (45011, Action.PAUSE_QUOTA),
        (43004, Action.RECIPIENT_UNREACHABLE),
        (43101, Action.RECIPIENT_UNREACHABLE),
        (40003, Action.RECIPIENT_UNREACHABLE),
        (48002, Action.RECIPIENT_UNREACHABLE),
        (47003, Action.MESSAGE_INVALID),
        (40037, Action.MESSAGE_INVALID),
        (40013, Action.CONFIG_ERROR),
        (40164, Action.CONFIG_ERROR),
        (48001, Action.CONFIG_ERROR),
        (41001, Action.CONFIG_ERROR),
        (40125, Action.CONFIG_ERROR),
        (99999, Action.UNKNOWN),
    ],
)
def test_each_errcode_maps_to_its_action(errcode: int, action: Action) -> None:
    assert action_for(errcode) is action


def test_only_busy_and_unknown_answers_are_retried_with_backoff() -> None:
    assert {a for a in Action if is_retryable(a)} == {Action.RETRY_BACKOFF, Action.UNKNOWN}
    assert BACKOFF[Action.UNKNOWN].max_attempts < BACKOFF[Action.RETRY_BACKOFF].max_attempts


BEIJING = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("now", "resume"),
    [
        # 23:30 Beijing: the window resets in half an hour, at 16:00 UTC.
        (datetime(2025, 1, 15, 15, 30, tzinfo=UTC), datetime(2025, 1, 15, 16, 0, tzinfo=UTC)),
        # 00:10 Beijing is already the new day: the next reset is a day away.
        (datetime(2025, 1, 15, 16, 10, tzinfo=UTC), datetime(2025, 1, 16, 16, 0, tzinfo=UTC)),
        (datetime(2025, 1, 15, 9, 0, tzinfo=BEIJING), datetime(2025, 1, 16, 0, 0, tzinfo=BEIJING)),
    ],
)
def test_the_daily_quota_resumes_at_midnight_beijing_time(now: datetime, resume: datetime) -> None:
    assert quota_resumes_at(45009, now) == resume


def test_the_minute_quota_resumes_at_the_next_minute() -> None:
    now = datetime(2025, 1, 15, 10, 59, 42, 500, tzinfo=UTC)
    assert quota_resumes_at(45011, now) == datetime(2025, 1, 15, 11, 0, tzinfo=UTC)


def test_quota_resume_needs_an_aware_time_and_a_quota_errcode() -> None:
    with pytest.raises(ValueError, match="aware"):
        quota_resumes_at(45009, datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="not a quota"):
        quota_resumes_at(-1, datetime(2025, 1, 1, tzinfo=UTC))


@given(attempt=st.integers(min_value=1, max_value=50), seed=st.integers())
def test_backoff_delays_stay_within_the_jittered_exponential_and_the_cap(
    attempt: int, seed: int
) -> None:
    policy = Backoff(base_seconds=1.0, factor=2.0, cap_seconds=60.0, max_attempts=20)
    delay = policy.delay(attempt, random.Random(seed))
    if attempt >= policy.max_attempts:
        assert delay is None
        return
    ceiling = min(60.0, 2.0 ** (attempt - 1))
    assert delay is not None
    assert ceiling / 2 <= delay <= ceiling <= 60.0


def test_backoff_gives_up_after_max_attempts() -> None:
    policy = Backoff(max_attempts=3)
    rng = random.Random(1)
    assert policy.delay(1, rng) is not None
    assert policy.delay(2, rng) is not None
    assert policy.delay(3, rng) is None


def test_backoff_jitter_spreads_workers_apart() -> None:
    policy = Backoff()
    delays = {policy.delay(4, random.Random(seed)) for seed in range(20)}
    assert len(delays) > 10


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(0)
