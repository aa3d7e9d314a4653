"""The simulator's notion of "now": wall time plus an offset that tests move forward.

Token lifetimes (7,200 s), the 5-minute overlap, quota windows and client_msg_id dedup all hang off
this clock, so a test can jump two hours ahead through ``POST /_sim/clock/advance`` instead of
sleeping. It never goes backwards: the rules assume monotonic time.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    def __init__(self, source: Callable[[], float] = time.time, offset: float = 0.0) -> None:
        self._source = source
        self._offset = offset

    def now(self) -> float:
        return self._source() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self._offset += seconds
        return self.now()

    def reset(self) -> None:
        self._offset = 0.0


class ManualClock(SimClock):
    """A clock that stands still until advanced: for pure unit tests of the rules."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        super().__init__(source=lambda: start)
