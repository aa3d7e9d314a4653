"""City-scale roster import: ``uv run python -m bench roster_import [--set rows=657000]``.

Generates N valid members as an HR system's CSV, runs the platform as separate processes on a
scratch database, submits the roster to the membership service and measures: import rows/s, the
time until every event is published, the time until every consumer group following membership's
events has caught up, the peak RSS of every process and the CPU of every process (Postgres and
Kafka included) per member. The same run measures the floor: a bare COPY of the same rows, and
producing and consuming the same number of messages of the same size.
"""

from __future__ import annotations

import asyncio
import csv
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer

from bench.common import Running, group_lag, platform_cpu, platform_running, wait_until
from bench.processes import spent
from bench.results import Figure, Outcome, Target
from shared.auth.client import SignedAuth
from shared.kafka import ensure_topics, idempotent_producer
from tests.support.auth import issue_credential
from tests.support.people import credit_code, roster_rows


def write_roster(path: Path, rows: int) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id_number", "name", "mobile", "categories"])
        writer.writeheader()
        writer.writerows(roster_rows(rows, start=1))


async def union(client: httpx.AsyncClient) -> str:
    for body in (
        {"id": "city", "name": "亳州市总工会", "kind": "city_federation"},
        {"id": "county", "name": "谯城区总工会", "kind": "county_federation", "parent_id": "city"},
        {
            "id": "union",
            "name": "全市职工工会",
            "kind": "enterprise",
            "parent_id": "county",
            "founded_on": "2020-01-01",
            "employer": {
                "name": "亳州全市职工联合体",
                "credit_code": credit_code(77),
                "headcount_band": "1000+",
                "address": "亳州市",
            },
        },
    ):
        answer = await client.post("/organisations", json=body)
        answer.raise_for_status()
    return "union"


async def floor_copy(dsn: str, path: Path) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TEMP TABLE floor_members"
            " (id_number text, name text, mobile text, categories text)"
        )
        started = time.perf_counter()
        with path.open("rb") as f:
            await conn.copy_to_table("floor_members", source=f, format="csv", header=True)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def floor_kafka(bootstrap: str, topic: str, count: int, size: int) -> tuple[float, float]:
    await ensure_topics(bootstrap, {topic: 6})
    producer = idempotent_producer(bootstrap)
    await producer.start()
    value = b"x" * size
    started = time.perf_counter()
    pending = []
    for i in range(count):
        pending.append(await producer.send(topic, value, key=str(i).encode()))
        if len(pending) >= 10_000:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    produced = time.perf_counter() - started
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"{topic}.floor"
    )
    await consumer.start()
    started = time.perf_counter()
    seen = 0
    while seen < count:
        for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
            seen += len(records)
    consumed = time.perf_counter() - started
    await consumer.stop()
    return produced, consumed


FULL: dict[str, Any] = {"rows": 657_000}
QUICK: dict[str, Any] = {"rows": 5_000}


async def run(rows: int) -> Outcome:
    outcome = Outcome("roster_import")
    workdir = Path(tempfile.mkdtemp(prefix="gonghui-bench-"))
    roster = workdir / "roster.csv"
    started = time.perf_counter()
    write_roster(roster, rows)
    print(f"[bench] generated {rows:,} members in {time.perf_counter() - started:.1f}s ({roster})")
    try:
        async with platform_running() as running:
            before_mb = running.watch.peak_mb.get("membership", float("nan"))
            times, groups, cpu = await measure(running, roster, rows)
            copy = await floor_copy(running.db.admin_dsn, roster)
            produced, consumed = await floor_kafka(
                running.servers.kafka_bootstrap, f"{running.namespace}floor", rows, 400
            )
            outcome.peak_rss_mb = dict(running.watch.peak_mb)
    finally:
        roster.unlink(missing_ok=True)
    t_import, t_published, t_consumed = times
    floor = copy + produced + consumed
    importer = max(
        (mb for name, mb in outcome.peak_rss_mb.items() if name.startswith("membership")),
        default=float("nan"),
    )
    outcome.add(
        Figure(
            f"{rows:,} members imported, every consumer group caught up",
            t_consumed,
            "s",
            Target("<=", 60),
            floor=floor,
            floor_note="COPY + produce + consume the same rows",
            note=f"{t_consumed / floor:.1f}× the floor; groups: {', '.join(groups)}",
        ),
        Figure(
            "import (rows read and stored)",
            rows / t_import,
            "rows/s",
            floor=rows / copy,
            floor_note="bare COPY",
            note=f"{t_import:.1f} s",
        ),
        Figure("every event published after", t_published, "s"),
        Figure("importer (membership) peak RSS", importer, "MB", Target("<=", 150)),
        # What the process held before the roster came (its app, relay and consumer): the peak
        # less this is what the import itself costs.
        Figure("importer (membership) peak RSS before the roster", before_mb, "MB"),
        Figure(
            "platform CPU per member (services + their Postgres backends)",
            platform_cpu(cpu) / rows * 1e6,
            "µs",
            note=", ".join(f"{g} {s / rows * 1e6:.0f}" for g, s in sorted(cpu.items())),
        ),
    )
    return outcome


async def measure(
    running: Running, roster: Path, rows: int
) -> tuple[tuple[float, float, float], list[str], dict[str, float]]:
    """(import, published, consumed) seconds from the submission, the groups, CPU per group."""
    db, found, ns = running.db, running.servers, running.namespace
    app_id, secret = await issue_credential(
        db.dsn("membership"), "membership", scopes=["organisations:write", "roster:submit"]
    )
    auth = SignedAuth(app_id, secret)
    url = running.platform.urls["membership"]
    async with httpx.AsyncClient(base_url=url, auth=auth, timeout=120) as client:
        union_id = await union(client)
        cpu_before = running.watch.cpu()
        t0 = time.perf_counter()
        with roster.open("rb") as file:
            answer = await client.post(
                f"/organisations/{union_id}/rosters",
                files={"file": ("roster.csv", file, "text/csv")},
                data={"batch_id": "bench"},
            )
        answer.raise_for_status()
        job_id = answer.json()["id"]

        async def imported() -> tuple[int, int]:
            job = (await client.get(f"/rosters/{job_id}")).json()
            if job["state"] == "failed":
                raise RuntimeError(f"import failed: {job['failure']}")
            done = job["state"] == "done"
            return (rows if done else min(job["rows_read"], rows - 1)), rows

        await wait_until("rows imported", imported)
        t_import = time.perf_counter() - t0
    admin = await asyncpg.connect(db.admin_dsn)
    try:
        # Counted once: a count of the whole outbox every poll scanned 657,000 rows four times a
        # second, competing with what it measured. The unpublished have an index.
        total = await admin.fetchval("SELECT count(*) FROM membership.outbox")

        async def published() -> tuple[int, int]:
            waiting = await admin.fetchval(
                "SELECT count(*) FROM membership.outbox WHERE published_at IS NULL"
            )
            return total - waiting, total

        # Once a second: each count walks the unpublished index's dead entries too, and the
        # backend doing it is counted in the platform's Postgres CPU.
        await wait_until("events published", published, interval=1.0)
        t_published = time.perf_counter() - t0
    finally:
        await admin.close()
    topic = f"{ns}membership.events"

    async def caught_up() -> tuple[int, int]:
        lag = await group_lag(found.kafka_bootstrap, topic)
        groups = [g for g in lag if not g.endswith(".floor")]
        behind = sum(lag[g] for g in groups)
        return (rows * len(groups) - behind if groups else 0), rows * max(len(groups), 1)

    # Each poll opens two Kafka clients: once a second keeps the probe's cost small.
    await wait_until("events applied by every consumer group", caught_up, interval=1.0)
    t_consumed = time.perf_counter() - t0
    cpu = spent(cpu_before, running.watch.cpu())
    groups = sorted(await group_lag(found.kafka_bootstrap, topic))
    return (t_import, t_published, t_consumed), groups, cpu


if __name__ == "__main__":
    from bench.__main__ import main

    main(["roster_import", *sys.argv[1:]])
