"""A clock a test moves by hand, given to any service's ``build(settings, clock=...)``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.clock import FEDERATION_ZONE


class ManualClock:
    def __init__(self, start: datetime | None = None, zone: str = FEDERATION_ZONE) -> None:
        self.zone = ZoneInfo(zone)
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def today(self) -> date:
        return self._now.astimezone(self.zone).date()

    def advance(self, by: timedelta) -> None:
        self._now += by

    def set(self, instant: datetime) -> None:
        self._now = instant
