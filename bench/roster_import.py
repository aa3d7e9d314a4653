"""City-scale roster import: ``uv run python -m bench.roster_import [--rows 657000]``.

Generates N valid members as an HR system's CSV, runs the platform as separate processes on a
scratch database, submits the roster to the membership service and measures: import rows/s, the
time until every event is published, the time until every consumer group following membership's
events has caught up, and the importer's peak RSS. The same run measures the floor: a bare COPY
of the same rows, and producing and consuming the same number of messages of the same size.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer

from bench.common import PeakRss, group_lag, namespace, servers, wait_until
from shared.auth.client import SignedAuth
from shared.kafka import ensure_topics, idempotent_producer
from tests.support.auth import issue_credential
from tests.support.database import create_database, drop_database
from tests.support.people import credit_code, roster_rows
from tests.support.platform import launch_platform, wait_ready
from tests.support.servers import ROOT, SERVICES


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


async def main(rows: int) -> None:
    found = servers()
    ns = namespace()
    workdir = Path(tempfile.mkdtemp(prefix="gonghui-bench-"))
    roster = workdir / "roster.csv"
    started = time.perf_counter()
    write_roster(roster, rows)
    print(f"[bench] generated {rows:,} members in {time.perf_counter() - started:.1f}s ({roster})")
    db = await create_database(found)
    platform = launch_platform(
        {s: db.dsn(s) for s in SERVICES}, found.kafka_bootstrap, ns, ROOT / "var/log/bench"
    )
    try:
        await wait_ready(platform)
        app_id, secret = await issue_credential(
            db.dsn("membership"),
            "membership",
            scopes=["organisations:write", "roster:submit"],
        )
        auth = SignedAuth(app_id, secret)
        async with httpx.AsyncClient(
            base_url=platform.urls["membership"], auth=auth, timeout=120
        ) as client:
            union_id = await union(client)
            importer = platform.processes["membership"].pid
            with PeakRss(importer) as rss:
                t0 = time.perf_counter()
                answer = await client.post(
                    f"/organisations/{union_id}/rosters",
                    files={"file": ("roster.csv", roster.open("rb"), "text/csv")},
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
                # Counted once: a count of the whole outbox every poll scanned 657,000 rows four
                # times a second, competing with what it measured. The unpublished have an index.
                total = await admin.fetchval("SELECT count(*) FROM membership.outbox")

                async def published() -> tuple[int, int]:
                    waiting = await admin.fetchval(
                        "SELECT count(*) FROM membership.outbox WHERE published_at IS NULL"
                    )
                    return total - waiting, total

                await wait_until("events published", published)
                t_published = time.perf_counter() - t0
                await admin.close()
                topic = f"{ns}membership.events"

                async def caught_up() -> tuple[int, int]:
                    lag = await group_lag(found.kafka_bootstrap, topic)
                    groups = [g for g in lag if not g.endswith(".floor")]
                    behind = sum(lag[g] for g in groups)
                    return (rows * len(groups) - behind if groups else 0), rows * max(
                        len(groups), 1
                    )

                # Each poll opens two Kafka clients: once a second keeps the probe's cost small.
                await wait_until("events applied by every consumer group", caught_up, interval=1.0)
                t_consumed = time.perf_counter() - t0
                groups = sorted(await group_lag(found.kafka_bootstrap, topic))
        copy = await floor_copy(db.admin_dsn, roster)
        produced, consumed = await floor_kafka(found.kafka_bootstrap, f"{ns}floor", rows, 400)
    finally:
        platform.stop()
        await drop_database(db)
        roster.unlink(missing_ok=True)
    target = 60.0
    print()
    print(f"rows                         {rows:>12,}")
    print(f"import (rows/s)              {rows / t_import:>12,.0f}   {t_import:6.1f} s")
    print(f"events published after      {t_published:>12.1f} s")
    print(f"consumers caught up after    {t_consumed:>12.1f} s   groups: {', '.join(groups)}")
    print(f"importer peak RSS            {rss.peak:>12.0f} MiB")
    print(
        f"floor: COPY of the rows      {copy:>12.1f} s   ratio import/COPY {t_import / copy:5.1f}"
    )
    print(
        f"floor: produce / consume     {produced:>6.1f} s / {consumed:.1f} s"
        f"   ratio end-to-end/floor {t_consumed / (copy + produced + consumed):5.1f}"
    )
    print(f"target: all within {target:.0f} s -> {'met' if t_consumed <= target else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=657_000)
    asyncio.run(main(parser.parse_args().rows))
