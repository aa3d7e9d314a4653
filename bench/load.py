"""Open-loop load: requests sent on a fixed schedule, latency counted from the scheduled time, so a
slow answer does not slow the schedule (no coordinated omission). In-flight requests are capped:
beyond the cap the schedule slips, and the slip counts in every later latency.

The load generator is a process of the benchmark like any other, held to the same peak RSS: a step
keeps only what it reports, in flat arrays (8 bytes an answer a column, not a float object, a
dict entry and a finished task each), and a request's task is let go once it is answered. A send
time is not kept at all: it follows from the request's serial and the schedule."""

from __future__ import annotations

import asyncio
import gc
import heapq
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.consumer import settle_heap

# send(serial) -> the id the server gave what it made (e.g. a new member's id), or None when the
# serial names it already (an enrolment of member serial); raises Refused for another answer.
Send = Callable[[int], Awaitable[str | None]]


class Refused(Exception):
    """An answer other than the one asked for; its label (status, error code) is counted."""

    @classmethod
    def of(cls, answer: httpx.Response) -> Refused:
        try:
            code = answer.json()["errors"][0]["code"]
        except (ValueError, LookupError, TypeError):
            code = ""
        return cls(f"{answer.status_code} {code}".strip())


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1); NaN for no values. Only the tail beyond the rank
    is held: a sorted copy of 300,000 latencies was 12 MB of float objects, the p99's tail is
    3,000 of them."""
    if not values:
        return float("nan")
    rank = min(len(values) - 1, int(q * len(values)))
    if rank >= len(values) // 2:
        return heapq.nlargest(len(values) - rank, values)[-1]
    return heapq.nsmallest(rank + 1, values)[-1]


def floats() -> array[float]:
    return array("d")


def serials() -> array[int]:
    return array("q")


@dataclass
class Step:
    offered: float
    seconds: float
    first: int = 0  # the serial of the first request
    wall_start: float = 0.0  # time.time() when the first request was due
    latencies_ms: array[float] = field(default_factory=floats)  # of each success, in answer order
    answered_at: array[float] = field(default_factory=floats)  # perf_counter of each success
    serials: array[int] = field(default_factory=serials)  # the serial of each success
    made: dict[str, int] = field(default_factory=dict)  # id the server gave -> its serial
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    client_cpu: float = 0.0  # of one core, the load generator's own
    cut_short: bool = False  # the budget ran out before every request was sent

    def answered(self, serial: int, due: float, done: float, made: str | None) -> None:
        self.latencies_ms.append((done - due) * 1000)
        self.answered_at.append(done)
        self.serials.append(serial)
        if made is not None:
            self.made[made] = serial

    def due_at(self, serial: int) -> float:
        """Wall-clock time (time.time()) at which request ``serial`` was due: its send time, as
        the latencies count it."""
        return self.wall_start + (serial - self.first) / self.offered

    def sent_at(self) -> dict[str, float]:
        """What each success made (the server's id) -> its wall-clock send time, for end-to-end
        latencies; built on asking, for the few tens of thousands of a step."""
        return {made: self.due_at(serial) for made, serial in self.made.items()}

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
    # loaded: tens of ms) would count as the platform's latency, the bare endpoint's too. The
    # rare collections are for the step only: after it, the benchmark polls Kafka twice a second
    # with fresh clients, whose cyclic garbage then waited for a full collection (20 MB in 30 s).
    thresholds = gc.get_threshold()
    settle_heap()
    try:
        return await _on_schedule(send, rate, seconds, first, max_in_flight, count, budget)
    finally:
        gc.set_threshold(*thresholds)


async def _on_schedule(
    send: Send,
    rate: float,
    seconds: float,
    first: int,
    max_in_flight: int,
    count: int | None,
    budget: float | None,
) -> Step:
    step = Step(rate, seconds, first)
    total = count if count is not None else int(rate * seconds)
    gate = asyncio.Semaphore(max_in_flight)
    # Only the requests in flight: a finished task (with its coroutine) kept for a final gather
    # was about 1 KB a request, 350 MB of 300,000 enrolments.
    flying: set[asyncio.Task[None]] = set()
    failed: list[BaseException] = []  # a bug in send, not an answer: raised once all are in

    def landed(task: asyncio.Task[None]) -> None:
        flying.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            failed.append(error)

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
        step.answered(serial, due, time.perf_counter(), made)

    cpu_before = time.process_time()
    start = time.perf_counter() + 0.05
    step.wall_start = time.time() + (start - time.perf_counter())
    for i in range(total):
        due = start + i / rate
        if failed:
            break
        if budget is not None and time.perf_counter() - start > budget:
            step.cut_short = True
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        task = asyncio.create_task(one(first + i, due))
        flying.add(task)
        task.add_done_callback(landed)
    while flying:
        await asyncio.wait(set(flying))
    if failed:
        raise failed[0]
    step.elapsed = time.perf_counter() - start
    step.client_cpu = (time.process_time() - cpu_before) / step.elapsed
    return step
