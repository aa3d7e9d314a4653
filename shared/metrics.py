"""The platform's metrics: one catalogue of the names every service exports at ``GET /metrics``.

The names are the agreed contract (docs/observability.md); the alerts in
``deploy/prometheus/alerts.yml`` and the dashboard ``deploy/grafana/gonghui.json`` use only these
(and ``gonghui_worker_up`` of :mod:`shared.supervision`). Everything on a hot path is a counter
or histogram child looked up once and kept; what needs SQL (the outbox backlog, the backstop) is
sampled by a background loop every few seconds, never per event.

An HTTP server with several uvicorn processes (``--workers N``) runs prometheus_client's
multiprocess mode: :func:`shared.serve.serve` points ``PROMETHEUS_MULTIPROC_DIR`` at an empty
directory before the processes start, each process writes its values there, and whichever process
answers ``/metrics`` reads them all: counters and histograms summed, gauges as noted on each.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from typing import TYPE_CHECKING

import asyncpg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
SAMPLE_SECONDS = 5.0

HTTP_DURATION = Histogram(
    "gonghui_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status",
    ["service", "route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVENTS_PUBLISHED = Counter(
    "gonghui_events_published_total",
    "Events the outbox relay published, counted once Kafka acknowledged them",
    ["service", "type"],
)
EVENTS_APPLIED = Counter(
    "gonghui_events_applied_total",
    "Events a consumer group applied (redeliveries the inbox skipped are not counted)",
    ["service", "group", "type"],
)
DEAD_LETTERS = Counter(
    "gonghui_dead_letters_total",
    "Events a consumer group sent to the dead-letter topic, by the topic they came from",
    ["service", "group", "topic"],
)
# Gauges: in multiprocess mode the largest value any live process holds. A partition belongs to one
# consumer at a time and the others hold 0 for it; every process samples the same tables.
CONSUMER_LAG = Gauge(
    "gonghui_consumer_lag",
    "Messages between a consumer's position and the end of the partition",
    ["service", "group", "topic", "partition"],
    multiprocess_mode="livemax",
)
OUTBOX_BACKLOG = Gauge(
    "gonghui_outbox_backlog",
    "Outbox rows not yet published",
    ["service"],
    multiprocess_mode="livemax",
)
OUTBOX_OLDEST_AGE = Gauge(
    "gonghui_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none waits)",
    ["service"],
    multiprocess_mode="livemax",
)
WECHAT_ERRCODES = Counter(
    "gonghui_wechat_errcode_total",
    "Answers from WeChat's API by call and errcode (0 is success)",
    ["api", "errcode"],
)
WECHAT_TOKEN_REFRESHES = Counter(
    "gonghui_wechat_token_refreshes_total",
    "Access tokens fetched from WeChat (each one invalidates the one before within 5 minutes)",
)
BACKSTOP_OPEN = Gauge(
    "gonghui_backstop_requests_open",
    "Mutual aid's requests to city finance not yet granted in full nor withdrawn",
    multiprocess_mode="livemax",
)
BACKSTOP_OLDEST_AGE = Gauge(
    "gonghui_backstop_oldest_open_age_seconds",
    "Age of the oldest open request to city finance (0 when none is open)",
    multiprocess_mode="livemax",
)


def forget(gauge: Gauge, *labels: str) -> None:
    """Drop a gauge's series that no longer applies (e.g. a partition given to another consumer).

    Multiprocess files cannot drop a series: it is set to 0, which ``livemax`` reads as "not
    here" next to the process that holds the partition now.
    """
    if os.environ.get(MULTIPROCESS_DIR):
        gauge.labels(*labels).set(0)
    else:
        with suppress(KeyError):
            gauge.remove(*labels)


# ------------------------------------------------------------------------------------------- HTTP


class RequestMetrics:
    """ASGI middleware: one observation per request, labelled with the route's template (never
    the raw path: ``/members/{member_id}``, or ``unmatched`` for a 404 no route took)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._children: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self._child(route, scope["method"], status).observe(time.perf_counter() - started)

    def _child(self, route: str, method: str, status: int) -> Histogram:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = HTTP_DURATION.labels(
                self.service, route, method, str(status)
            )
        return child


def registry() -> CollectorRegistry:
    """What ``/metrics`` serves: this process's metrics, or every HTTP process's in multiprocess
    mode (after dropping the gauges of processes that have died: uvicorn replaces a dead worker,
    and its last values would otherwise stay in the maximum for ever)."""
    path = os.environ.get(MULTIPROCESS_DIR)
    if not path:
        return REGISTRY
    for pid in _dead_processes(path):
        multiprocess.mark_process_dead(pid, path)
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined, path)
    return combined


_PID = re.compile(r"_(\d+)\.db$")


def _dead_processes(path: str) -> set[int]:
    pids = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        found = _PID.search(name)
        if found:
            pids.add(int(found.group(1)))
    return {pid for pid in pids if not _alive(pid)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition() -> tuple[bytes, str]:
    """The body and content type of a ``/metrics`` answer."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def prepare_multiprocess(directory: str) -> None:
    """Before the HTTP processes start: an empty directory for their values (files left by an
    earlier run would add its counts to this one's), named to the processes by environment."""
    os.makedirs(directory, exist_ok=True)
    for name in glob.glob(os.path.join(directory, "*.db")):
        os.remove(name)
    os.environ[MULTIPROCESS_DIR] = directory


# ------------------------------------------------------------------------------- sampled tables

Sample = Callable[[asyncpg.Pool, str], Awaitable[None]]


async def sample_outbox(pool: asyncpg.Pool, service: str) -> None:
    """Both from the partial index on unpublished rows: cheap while the relay keeps up."""
    row = await pool.fetchrow(
        "SELECT count(*) AS backlog,"
        " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
        " FROM outbox WHERE published_at IS NULL"
    )
    assert row is not None
    OUTBOX_BACKLOG.labels(service).set(row["backlog"])
    OUTBOX_OLDEST_AGE.labels(service).set(float(row["age"]))


def sampling(
    *samples: Sample, every: float = SAMPLE_SECONDS
) -> Callable[[ServiceRuntime], Coroutine[object, object, None]]:
    """A supervised worker that runs each sample every ``every`` seconds."""

    async def loop(runtime: ServiceRuntime) -> None:
        service = runtime.settings.service
        while True:
            for sample in samples:
                await sample(runtime.pool, service)
            await asyncio.sleep(every)

    return loop


def wechat_answered(api: str, errcode: int | None) -> None:
    """Count WeChat's answer to a call; ``None`` (no answer: the transport failed) is not one."""
    if errcode is not None:
        WECHAT_ERRCODES.labels(api, str(errcode)).inc()
