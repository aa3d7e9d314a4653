"""Open-loop load: requests sent on a fixed schedule, latency counted from the scheduled time, so a
slow answer does not slow the schedule (no coordinated omission). In-flight requests are capped:
beyond the cap the schedule slips, and the slip counts in every later latency."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.consumer import settle_heap

# send(serial) -> the id of what was made (e.g. the member id); raises Refused for another answer.
Send = Callable[[int], Awaitable[str]]


class Refused(Exception):
    """An answer other than the one asked for; its label (status, error code) is counted."""

    @classmethod
    def of(cls, answer: httpx.Response) -> Refused:
        try:
            code = answer.json()["errors"][0]["code"]
        except (ValueError, LookupError, TypeError):
            code = ""
        return cls(f"{answer.status_code} {code}".strip())


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Step:
    offered: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    answered_at: list[float] = field(default_factory=list)  # perf_counter of each success
    elapsed: float = 0.0
    client_cpu: float = 0.0  # of one core, the load generator's own
    cut_short: bool = False  # the budget ran out before every request was sent
    # What each successful request made -> its wall-clock send time (for end-to-end latencies).
    sent_at: dict[str, float] = field(default_factory=dict)

    @property
    def achieved(self) -> float:
        return len(self.latencies_ms) / self.elapsed if self.elapsed else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 0.99)

    def throughput(self, first: int, last: int) -> float:
        """Successes a second between the ``first`` and the ``last`` success (0-based, in the
        order answered): while the service is saturated, how fast it works at that point."""
        if last <= first or last >= len(self.answered_at):
            return float("nan")
        span = self.answered_at[last] - self.answered_at[first]
        return (last - first) / span if span > 0 else float("nan")

    def row(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "achieved": round(self.achieved, 1),
            "errors": self.errors,
            "error_kinds": dict(self.error_kinds.most_common(5)),
            "p50_ms": round(self.p50, 2),
            "p99_ms": round(self.p99, 2),
            "client_cpu": round(self.client_cpu, 3),
        }


async def open_loop(
    send: Send,
    rate: float,
    seconds: float,
    first: int,
    max_in_flight: int = 1024,
    count: int | None = None,
    budget: float | None = None,
) -> Step:
    """Send ``count`` (default rate x seconds) requests, serials from ``first``, at ``rate``/s;
    none scheduled after ``budget`` seconds (a service too slow for the whole count is measured
    on what it did in the budget, not waited for)."""
    # The client's own collector pauses (a full collection walks every module the benchmark
    # loaded: tens of ms) would count as the platform's latency, the bare endpoint's too.
    settle_heap()
    step = Step(rate, seconds)
    total = count if count is not None else int(rate * seconds)
    gate = asyncio.Semaphore(max_in_flight)

    async def one(serial: int, due: float) -> None:
        try:
            made = await send(serial)
        except (Refused, httpx.HTTPError) as error:
            step.errors += 1
            step.error_kinds[
                str(error) if isinstance(error, Refused) else type(error).__name__
            ] += 1
            return
        finally:
            gate.release()
        done = time.perf_counter()
        step.latencies_ms.append((done - due) * 1000)
        step.answered_at.append(done)
        step.sent_at[made] = time.time() - (done - due)

    cpu_before = time.process_time()
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        if budget is not None and time.perf_counter() - start > budget:
            step.cut_short = True
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        tasks.append(asyncio.create_task(one(first + i, due)))
    await asyncio.gather(*tasks)
    step.elapsed = time.perf_counter() - start
    step.client_cpu = (time.process_time() - cpu_before) / step.elapsed
    return step
