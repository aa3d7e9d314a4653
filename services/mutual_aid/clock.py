"""The service's sense of time, passed in so tests can move it (reminders after 7 days, the
backstop's batching window) instead of waiting."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware instant (stored as timestamptz)."""
        ...

    def today(self) -> date:
        """The federation's calendar day, whatever the server's timezone."""
        ...


class SystemClock:
    def __init__(self, zone: str = "Asia/Shanghai") -> None:
        self.zone = ZoneInfo(zone)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return datetime.now(self.zone).date()
