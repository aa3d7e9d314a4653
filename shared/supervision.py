"""Supervised background work: every loop a service runs besides answering HTTP (the outbox relay,
the consumers, payouts, follow-ups, the WeChat sender, webhook deliveries, sweeps, roster jobs,
retention) runs under a :class:`Supervisor`.

A worker that raises is logged and started again after a back-off (0.5 s doubling to
``backoff_max``; back to 0.5 s once it has run a minute without failing), never left dead while the
service says it is ready: ``/readyz`` fails while a required worker is down, and ``/metrics``
shows each worker's state (``gonghui_worker_up``) and restarts (``gonghui_worker_restarts_total``).
Workers keep their state in Postgres or Kafka, so starting one again loses nothing. A worker's loop
never returns on its own: returning while the service is not stopping counts as a failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

WORKER_UP = Gauge(
    "gonghui_worker_up",
    "1 while the background worker runs, 0 while it waits to restart",
    ["service", "worker"],
    # Several HTTP processes each running the workers (--role all --workers N): 0 if any is down.
    multiprocess_mode="livemin",
)
WORKER_RESTARTS = Counter(
    "gonghui_worker_restarts_total",
    "Restarts of a background worker after a failure",
    ["service", "worker"],
)
FIRST_BACKOFF_SECONDS = 0.5
STABLE_SECONDS = 60.0

Job = Callable[[], Coroutine[object, object, None]]


class WorkerDown(Exception):
    """A required worker is not running (it failed and waits to be started again)."""


@dataclass
class WorkerState:
    name: str
    required: bool
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    on_stop: Callable[[], None] | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, service: str, *, backoff_max: float = 30.0) -> None:
        self.service = service
        self.backoff_max = backoff_max
        self.workers: dict[str, WorkerState] = {}
        self._stopping = False

    def start(
        self,
        name: str,
        job: Job,
        *,
        on_stop: Callable[[], None] | None = None,
        required: bool = True,
    ) -> WorkerState:
        """Run ``job()`` under supervision. ``on_stop`` asks it to finish gracefully (e.g. a
        consumer committing its last batch); without it, stopping cancels the job."""
        state = WorkerState(name=name, required=required, on_stop=on_stop)
        self.workers[name] = state
        WORKER_RESTARTS.labels(self.service, name)  # at 0 from the start: the first is an increase
        state.task = asyncio.create_task(self._supervise(state, job), name=f"{self.service}:{name}")
        return state

    async def _supervise(self, state: WorkerState, job: Job) -> None:
        up = WORKER_UP.labels(self.service, state.name)
        delay = FIRST_BACKOFF_SECONDS
        while not self._stopping:
            started = time.monotonic()
            state.running = True
            up.set(1)
            try:
                await job()
                if self._stopping:
                    return
                raise RuntimeError("the worker's loop returned")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.running = False
                up.set(0)
                state.restarts += 1
                state.last_error = f"{type(exc).__name__}: {exc}"[:500]
                WORKER_RESTARTS.labels(self.service, state.name).inc()
                if time.monotonic() - started >= STABLE_SECONDS:
                    delay = FIRST_BACKOFF_SECONDS
                log.error(
                    "%s worker %s failed (%s); starting it again in %.1f s",
                    self.service,
                    state.name,
                    state.last_error,
                    delay,
                    exc_info=exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
            finally:
                if self._stopping:
                    state.running = False
                    up.set(0)

    def check(self) -> None:
        """For ``/readyz``: raise :class:`WorkerDown` naming each required worker that is down."""
        down = [
            f"{w.name} ({w.last_error})"
            for w in self.workers.values()
            if w.required and not w.running
        ]
        if down:
            raise WorkerDown("down: " + ", ".join(down))

    async def stop(self, grace_seconds: float = 15.0) -> None:
        """Ask each worker to finish, wait up to ``grace_seconds``, then cancel what still runs."""
        self._stopping = True
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        for w in self.workers.values():
            if w.on_stop is not None:
                w.on_stop()
            elif w.task is not None:
                w.task.cancel()  # no graceful path: its state is in Postgres or Kafka
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
