"""The highest offered rate that keeps a latency budget: double until a rate fails, then bisect
between the highest rate that passed and the lowest that failed above it. Pure: the caller runs
each step and records whether it passed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RateSearch:
    start: int
    ceiling: int
    # Done once the best pass and the lowest fail above it are within this share of the pass.
    resolution: float = 0.1
    minimum: int = 5
    passed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    def record(self, rate: int, ok: bool) -> None:
        (self.passed if ok else self.failed).append(rate)

    @property
    def best(self) -> int:
        """The highest rate that passed; 0 if none did."""
        return max(self.passed, default=0)

    def next_rate(self) -> int | None:
        """The next rate to try, or None when the search is over."""
        if not self.passed and not self.failed:
            return self.start
        best = self.best
        # A noisy fail below a pass says nothing about the rates above that pass.
        above = [rate for rate in self.failed if rate > best]
        if not above:
            return None if best >= self.ceiling else min(best * 2, self.ceiling)
        lowest_fail = min(above)
        if not self.passed:
            lower = lowest_fail // 2
            return lower if lower >= self.minimum else None
        if lowest_fail - best <= max(1, best * self.resolution):
            return None
        return (best + lowest_fail) // 2
