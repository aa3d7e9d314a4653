"""What to do about each WeChat errcode, and when to try again: pure, no I/O.

WeChat answers almost every failure with HTTP 200 and a non-zero ``errcode``; the reaction depends
on whose fault it is (WeChat's, the token's, the quota's, the recipient's, the message's, or ours).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum


class Action(StrEnum):
    OK = "ok"
    # WeChat is busy or the network failed: the same call may succeed later.
    RETRY_BACKOFF = "retry_backoff"
    # The token is stale: refresh it once and retry once; the client never loops.
    REFRESH_TOKEN = "refresh_token"
    # A quota is spent: stop sending until it resets (see ``quota_resumes_at``).
    PAUSE_QUOTA = "pause_quota"
    # This member cannot be reached (unfollowed, refused, bad openid): record "no channel".
    RECIPIENT_UNREACHABLE = "recipient_unreachable"
    # This message can never be sent as it is (bad template id or data): a rules.yaml problem.
    MESSAGE_INVALID = "message_invalid"
    # The account or deployment is misconfigured: nothing will succeed until a person acts.
    CONFIG_ERROR = "config_error"
    # An errcode this table does not know: retried, but with a bounded attempt count.
    UNKNOWN = "unknown"


SYSTEM_BUSY = -1
DAILY_QUOTA = 45009
MINUTE_QUOTA = 45011

_ACTIONS: dict[int, Action] = {
    0: Action.OK,
    SYSTEM_BUSY: Action.RETRY_BACKOFF,
    40001: Action.REFRESH_TOKEN,
    40014: Action.REFRESH_TOKEN,
    42001: Action.REFRESH_TOKEN,
    DAILY_QUOTA: Action.PAUSE_QUOTA,
    MINUTE_QUOTA: Action.PAUSE_QUOTA,
    40003: Action.RECIPIENT_UNREACHABLE,
    43004: Action.RECIPIENT_UNREACHABLE,
    43101: Action.RECIPIENT_UNREACHABLE,
    48002: Action.RECIPIENT_UNREACHABLE,
    40037: Action.MESSAGE_INVALID,
    47003: Action.MESSAGE_INVALID,
    40013: Action.CONFIG_ERROR,
    # 40125 (invalid appsecret) is what /cgi-bin/token answers for a wrong secret.
    40125: Action.CONFIG_ERROR,
    40164: Action.CONFIG_ERROR,
    41001: Action.CONFIG_ERROR,
    48001: Action.CONFIG_ERROR,
}


def action_for(errcode: int) -> Action:
    return _ACTIONS.get(errcode, Action.UNKNOWN)


def is_retryable(action: Action) -> bool:
    """Whether the same message may be tried again later (with back-off)."""
    return action in (Action.RETRY_BACKOFF, Action.UNKNOWN)


# China Standard Time has had no daylight saving since 1991, so a fixed offset is exact and does
# not depend on the host having tz data installed.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")


def quota_resumes_at(errcode: int, now: datetime) -> datetime:
    """When sending may resume after a quota errcode: the daily window resets at midnight Beijing
    time (45009), the per-minute one at the start of the next minute (45011)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if errcode == DAILY_QUOTA:
        local = now.astimezone(CHINA_STANDARD_TIME)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return midnight.astimezone(now.tzinfo)
    if errcode == MINUTE_QUOTA:
        return now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    raise ValueError(f"errcode {errcode} is not a quota errcode")


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with "equal jitter": the delay for attempt n lies in [d/2, d] where
    d = min(cap, base * factor**(n-1)). Half is fixed so retries never bunch at zero; half is random
    so workers that failed together do not retry together."""

    base_seconds: float = 2.0
    factor: float = 2.0
    cap_seconds: float = 600.0
    max_attempts: int = 8

    def delay(self, attempt: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before retrying after failed attempt number ``attempt`` (1-based), or
        None once ``max_attempts`` attempts have failed: give up and record the failure."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        if attempt >= self.max_attempts:
            return None
        ceiling = min(self.cap_seconds, self.base_seconds * self.factor ** (attempt - 1))
        jitter = (rng or random).random()
        return ceiling / 2 + jitter * ceiling / 2


# Busy WeChat deserves patience; an errcode nobody has seen before gets fewer tries before a person
# is asked to look at it.
BACKOFF: dict[Action, Backoff] = {
    Action.RETRY_BACKOFF: Backoff(),
    Action.UNKNOWN: Backoff(max_attempts=3),
}
