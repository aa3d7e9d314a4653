"""The one way a service reads the time.

Every service's ``build(settings, *, clock=None)`` takes a ``Clock``; handlers, aggregates'
callers and background loops ask it, never ``datetime.now``. Production passes nothing and gets
``SystemClock(settings.timezone)``; a test passes ``tests.support.clock.ManualClock`` and moves
time (a reminder due in 7 days, the backstop's batching window) instead of waiting for it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

# The federation's calendar (Bozhou is in China Standard Time, no daylight saving).
FEDERATION_ZONE = "Asia/Shanghai"


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware instant, stored as timestamptz."""
        ...

    def today(self) -> date:
        """The federation's calendar day, whatever the server's own time zone is."""
        ...


class SystemClock:
    def __init__(self, zone: str = FEDERATION_ZONE) -> None:
        self.zone = ZoneInfo(zone)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return datetime.now(self.zone).date()
