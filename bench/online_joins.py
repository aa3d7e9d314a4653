"""Online joins under open-loop load, against a bare endpoint measured in the same run.

    uv run python -m bench online_joins [--quick] [--set api_workers=2 seconds=10 ...]

The platform runs as separate processes on a scratch database, each service as deployed: its API
and its worker (relay, consumers, background loops; at a lower CPU priority, see shared.serve),
membership's API as ``api_workers`` HTTP processes (``api_workers=0``: one process per service).
Requests go out on a fixed schedule for ``seconds`` per step (latency counts from the scheduled
time) and a rate search finds the highest rate whose p99 stays within 50 ms with no errors. Each
step then waits for the notifications service to hold every member joined (join -> notifications
latency) and for every consumer group to catch up, so the CPU of the step (every process, Postgres
and Kafka included) is divided by the joins it made.

The floor is ``bench.bare`` (FastAPI + asyncpg, one transaction inserting the member row and its
outbox row, no signature), run with the same uvicorn worker count and searched the same way: the
platform's best rate is printed as a share of the bare one's.

The load generator shares the machine: its own CPU is reported per step, and a step where it
kept a core busy is flagged, since there the client may be what held the rate back.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import orjson

from bench import bare
from bench.common import LOGS, Running, all_caught_up, platform_cpu, platform_running
from bench.load import Refused, Send, Step, open_loop, percentile
from bench.processes import KAFKA, POSTGRES_SHARED, Meter
from bench.ratesearch import RateSearch
from bench.results import Figure, Outcome, Target
from bench.roster_import import union
from services.notifications.transport import LeanClient, PooledTransport
from shared.auth import signing
from shared.auth.client import SignedAuth
from tests.support.auth import issue_credential
from tests.support.people import id_number, mobile
from tests.support.ports import free_port
from tests.support.servers import ROOT, SERVICES

P99_BUDGET_MS = 50.0
CLIENT_SATURATED = 0.9  # of one core: the client's own event loop is the bottleneck
CATCH_UP_SECONDS = 120.0
IDLE_SECONDS = 5.0  # the window the processes' idle CPU is measured over, before the first step

FULL: dict[str, Any] = {
    "api_workers": 2,
    "seconds": 10.0,
    "start": 50,
    "ceiling": 4000,
    "resolution": 0.1,
}
QUICK: dict[str, Any] = {
    "api_workers": 2,
    "seconds": 3.0,
    "start": 25,
    "ceiling": 100,
    "resolution": 0.5,
}


def join_body(serial: int) -> bytes:
    return orjson.dumps(
        {
            "name": "王芳",
            "id_number": id_number(serial),
            "mobile": mobile(serial),
            "channel": "online",
            "union_id": "union",
            "employer_name": "亳州全市职工联合体",
        }
    )


def sender(client: LeanClient, sign: Callable[[bytes], dict[str, str]]) -> Send:
    async def send(serial: int) -> str:
        body = join_body(serial)
        headers = sign(body) | {"content-type": "application/json"}
        answer = await client.post("/members", content=body, headers=headers)
        if answer.status_code != 201:
            raise Refused.of(answer)
        made: str = answer.json()["id"]
        return made

    return send


def passes(step: Step) -> bool:
    return step.p99 <= P99_BUDGET_MS and not step.errors


async def search(
    name: str,
    send: Send,
    params: dict[str, Any],
    after_step: Callable[[Step], Awaitable[dict[str, float]]],
) -> tuple[RateSearch, list[dict[str, Any]]]:
    """Rate search; ``after_step`` waits for the step's effects and returns more columns."""
    finder = RateSearch(params["start"], params["ceiling"], params["resolution"])
    rows, serial = [], params["first_serial"]
    while (rate := finder.next_rate()) is not None:
        print(f"[bench] {name}: {rate} joins/s for {params['seconds']:g} s...", flush=True)
        step = await open_loop(send, rate, params["seconds"], serial)
        serial += int(rate * params["seconds"])
        finder.record(rate, passes(step))
        row = step.row() | await after_step(step)
        rows.append(row)
        print(f"[bench] {name}: {row}", flush=True)
    params["first_serial"] = serial
    return finder, rows


async def notified(admin: asyncpg.Connection, sent_at: dict[str, float]) -> list[float]:
    """Milliseconds from each join's request to the notifications service's copy of the member."""
    deadline = time.perf_counter() + CATCH_UP_SECONDS
    while True:
        rows = await admin.fetch(
            "SELECT member_id, updated_at FROM notifications.members WHERE member_id = ANY($1)",
            list(sent_at),
        )
        if len(rows) == len(sent_at) or time.perf_counter() > deadline:
            return [(r["updated_at"].timestamp() - sent_at[r["member_id"]]) * 1000 for r in rows]
        await asyncio.sleep(0.2)


def start_bare(dsn: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "bench.bare:app", "--port", str(port)]
    command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    with (LOGS / "bare.log").open("ab") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=os.environ | {bare.DSN: dsn}, stdout=log, stderr=log
        )


@asynccontextmanager
async def bare_endpoint(running: Running, workers: int) -> AsyncIterator[str]:
    """``bench.bare`` under uvicorn with ``workers`` processes, on a schema of its own."""
    admin = await asyncpg.connect(running.db.admin_dsn)
    try:
        await admin.execute(bare.DDL)
    finally:
        await admin.close()
    port = free_port()
    proc = start_bare(running.db.admin_dsn, port, workers)
    running.watch.add("bare endpoint", proc.pid)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(200):
                if proc.poll() is not None:
                    raise RuntimeError(f"the bare endpoint exited; see {LOGS / 'bare.log'}")
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def lean_client(url: str) -> LeanClient:
    client = LeanClient(PooledTransport(max_connections_per_host=256), timeout=30)
    client.base_url = httpx.URL(url)
    return client


async def measure_platform(
    running: Running, params: dict[str, Any]
) -> tuple[RateSearch, list[dict[str, Any]]]:
    app_id, secret = await issue_credential(
        running.db.dsn("membership"), "membership", scopes=["organisations:write", "members:join"]
    )
    url = running.platform.urls["membership"]
    async with httpx.AsyncClient(base_url=url, auth=SignedAuth(app_id, secret)) as c:
        await union(c)

    def sign(body: bytes) -> dict[str, str]:
        return signing.sign(app_id, secret, method="POST", path="/members", query="", body=body)

    topic = f"{running.namespace}membership.events"
    admin = await asyncpg.connect(running.db.admin_dsn)
    client = lean_client(url)
    meter = Meter(running.watch)
    await meter.measure_idle(IDLE_SECONDS)

    async def after_step(step: Step) -> dict[str, float]:
        consumed = await notified(admin, step.sent_at())
        behind = await all_caught_up(running.servers.kafka_bootstrap, topic, CATCH_UP_SECONDS)
        used, above = meter.lap()
        joins = max(len(step.latencies_ms), 1)
        row = {
            "to_notifications_p50_ms": round(percentile(consumed, 0.5), 1),
            "to_notifications_p99_ms": round(percentile(consumed, 0.99), 1),
            "caught_up_after_s": round(behind, 1) if behind is not None else float("nan"),
            "cpu_ms_per_join": round(platform_cpu(above) / joins * 1000, 2),
            "cpu_ms_per_join_with_idle": round(platform_cpu(used) / joins * 1000, 2),
        }
        row |= {f"cpu_ms_per_join[{g}]": round(s / joins * 1000, 3) for g, s in above.items()}
        return row

    try:
        params["first_serial"] = 1
        return await search("platform", sender(client, sign), params, after_step)
    finally:
        await client.aclose()
        await admin.close()


async def measure_bare(
    running: Running, params: dict[str, Any]
) -> tuple[RateSearch, list[dict[str, Any]]]:
    workers = max(params["api_workers"], 1)
    async with bare_endpoint(running, workers) as url:
        client = lean_client(url)
        meter = Meter(running.watch)
        await meter.measure_idle(IDLE_SECONDS)

        async def after_step(step: Step) -> dict[str, float]:
            _, above = meter.lap()
            bare_cpu = above.get("bare endpoint", 0.0) + above.get("postgres backends", 0.0)
            return {"cpu_ms_per_join": round(bare_cpu / max(len(step.latencies_ms), 1) * 1000, 2)}

        try:
            return await search("bare", sender(client, lambda _: {}), params, after_step)
        finally:
            await client.aclose()


def at_rate(rows: list[dict[str, Any]], rate: int) -> dict[str, Any]:
    """The step at ``rate``; the lowest step when no rate passed."""
    chosen = [r for r in rows if r["offered"] == rate] or sorted(rows, key=lambda r: r["offered"])
    return chosen[0] if chosen else {}


async def run(**params: Any) -> Outcome:
    outcome = Outcome("online_joins")
    workers = params["api_workers"]
    # Every service split into its API and its worker, as deployed: membership's API with
    # ``api_workers`` processes, the others' with one (they answer nothing here).
    split = {s: 1 for s in SERVICES} | {"membership": workers} if workers else {}
    async with platform_running(split) as running:
        platform, platform_rows = await measure_platform(running, params)
        bare_search, bare_rows = await measure_bare(running, params)
        outcome.peak_rss_mb = dict(running.watch.peak_mb)
    best, floor = platform.best, bare_search.best
    step = at_rate(platform_rows, best)
    bare_step = at_rate(bare_rows, floor)
    outcome.series = {"platform": platform_rows, "bare endpoint": bare_rows}
    outcome.add(
        Figure(
            "highest offered rate with API p99 ≤ 50 ms, no errors",
            best,
            "joins/s",
            Target(">=", 1000),
            floor=floor,
            floor_note="bare endpoint, same workers",
            note=f"steps of {params['seconds']:g} s; search stops within "
            f"{params['resolution']:.0%}; membership api_workers={workers}",
        ),
        Figure(
            "platform rate / bare endpoint rate at p99 ≤ 50 ms",
            best / floor if floor else float("nan"),
            "",
            Target(">=", 0.5),
        ),
        Figure(
            "join → notifications holds the member, p99",
            step.get("to_notifications_p99_ms"),
            "ms",
            Target("<=", 250),
            note=f"at {step.get('offered', 0):g}/s (target is at 1,000/s)",
        ),
        Figure(
            "platform CPU per signed join (services + their Postgres backends)",
            step.get("cpu_ms_per_join"),
            "ms",
            Target("<=", 2),
            floor=bare_step.get("cpu_ms_per_join"),
            floor_note="bare endpoint + its Postgres backends",
            note=f"at {step.get('offered', 0):g}/s, above idle (with idle:"
            f" {step.get('cpu_ms_per_join_with_idle', 0):.2f} ms); shared Kafka broker"
            f" {step.get(f'cpu_ms_per_join[{KAFKA}]', 0):.2f} ms, Postgres server"
            f" {step.get(f'cpu_ms_per_join[{POSTGRES_SHARED}]', 0):.2f} ms",
        ),
        Figure(
            "every consumer group caught up after the step",
            step.get("caught_up_after_s"),
            "s",
            note=f"at {step.get('offered', 0):g}/s; NaN: not within {CATCH_UP_SECONDS:g} s",
        ),
    )
    if any(r["client_cpu"] >= CLIENT_SATURATED for r in platform_rows + bare_rows):
        outcome.notes.append(
            "the load generator kept ≥ 90% of a core busy in some steps: there the client may "
            "have held the rate back"
        )
    return outcome


if __name__ == "__main__":
    from bench.__main__ import main

    main(["online_joins", *sys.argv[1:]])
