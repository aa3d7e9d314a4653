"""WeChat's call quotas: per send path a daily and a per-minute count, and the daily counters the
token calls keep. Pure: time comes in as ``now`` (seconds since the epoch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import errors as e
from .config import QUOTA_PATHS, SimulatorConfig
from .errors import WeChatError

# WeChat's daily quotas roll over at midnight Beijing time (UTC+8, no daylight saving).
_BEIJING_OFFSET = 8 * 3600
DAY = 86_400

Json = dict[str, Any]


def day_index(now: float) -> int:
    return int((now + _BEIJING_OFFSET) // DAY)


def minute_index(now: float) -> int:
    return int(now // 60)


@dataclass(slots=True)
class DailyCount:
    """Calls counted since midnight Beijing time (e.g. ``/cgi-bin/token``'s 2000 a day)."""

    day: int = -1
    used: int = 0

    def today(self, now: float) -> int:
        day = day_index(now)
        if day != self.day:
            self.day, self.used = day, 0
        return self.used


@dataclass(slots=True)
class QuotaWindow:
    daily: DailyCount
    minute: int = -1
    minute_used: int = 0

    @property
    def used(self) -> int:
        return self.daily.used

    def roll(self, now: float) -> None:
        self.daily.today(now)
        minute = minute_index(now)
        if minute != self.minute:
            self.minute, self.minute_used = minute, 0

    def take(self) -> None:
        self.daily.used += 1
        self.minute_used += 1


class Quotas:
    """One window per send path (template send and bizsend are counted apart, as WeChat does)."""

    def __init__(self) -> None:
        self._windows = {path: QuotaWindow(DailyCount()) for path in QUOTA_PATHS}

    def check(self, path: str, now: float, config: SimulatorConfig) -> QuotaWindow:
        """The path's window if a call may still go through; 45009 / 45011 when spent. The
        caller takes from the window only once the call is accepted."""
        window = self._windows[path]
        window.roll(now)
        if config.daily_quota and window.used >= config.daily_quota:
            raise WeChatError(e.DAILY_QUOTA)
        if config.minute_quota and window.minute_used >= config.minute_quota:
            raise WeChatError(e.MINUTE_QUOTA)
        return window

    def quota_get(self, cgi_path: Any, now: float, config: SimulatorConfig) -> Json:
        """The answer of ``/cgi-bin/openapi/quota/get``; 76021 for a path without a quota."""
        window = self._windows.get(cgi_path) if isinstance(cgi_path, str) else None
        if window is None:
            raise WeChatError(e.CGI_PATH_NOT_FOUND)
        window.roll(now)
        daily = config.daily_quota
        result: Json = {
            "errcode": 0,
            "errmsg": "ok",
            "quota": {
                "daily_limit": daily,
                "used": window.used,
                "remain": max(daily - window.used, 0) if daily else 0,
            },
        }
        if config.minute_quota:
            result["rate_limit"] = {"call_count": config.minute_quota, "refresh_second": 60}
        return result

    def to_json(self, now: float, config: SimulatorConfig) -> Json:
        out: Json = {}
        for path, window in self._windows.items():
            window.roll(now)
            out[path] = {
                "daily_limit": config.daily_quota,
                "used": window.used,
                "minute_limit": config.minute_quota,
                "minute_used": window.minute_used,
            }
        return out
