"""What the benchmarks share: servers, a scratch database, the platform as processes, progress."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench import profiling
from bench.processes import KAFKA, POSTGRES_SHARED, Watch
from shared.kafka import delete_topics
from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.platform import Platform, launch_platform, wait_ready
from tests.support.servers import ROOT, SERVICES, Servers, find_servers

LOGS = ROOT / "var/log/bench"
# Left out of the platform's CPU: what is not the platform, and the servers' processes every user
# of them shares (on a machine where other test runs use the same broker, its CPU swamped a join's:
# 50 ms of broker per join at 12 joins/s). They stay in the per-group columns and notes.
NOT_PLATFORM = ("load generator (bench)", "wechat_simulator", KAFKA, POSTGRES_SHARED)
# On a loaded machine (other test runs) a dozen Python processes take minutes to import and start.
READY_SECONDS = 300.0


def servers() -> Servers:
    """The running Kafka and Postgres; started first when they are not (deploy/local/infra up,
    idempotent), so a benchmark never meets "connection refused"."""
    found = find_servers()
    print(f"[bench] Kafka {found.kafka_bootstrap}, Postgres {found.pg_host}:{found.pg_port}")
    return found


def namespace() -> str:
    return f"bench{uuid.uuid4().hex[:6]}."


@dataclass
class Running:
    servers: Servers
    db: ScratchDatabase
    namespace: str
    platform: Platform
    watch: Watch


@asynccontextmanager
async def platform_running(
    split: dict[str, int] | None = None, settings: dict[str, str] | None = None
) -> AsyncIterator[Running]:
    """Every service as processes on a scratch database and a topic namespace of their own,
    watched (peak RSS, CPU) from start to end; all of it gone afterwards."""
    found = servers()
    ns = namespace()
    db = await create_database(found)
    platform = launch_platform(
        {s: db.dsn(s) for s in SERVICES}, found.kafka_bootstrap, ns, LOGS, split, settings
    )
    try:
        roots = {name: p.pid for name, p in platform.processes.items()}
        async with Watch(roots, database=db.name) as watch:
            await wait_ready(platform, READY_SECONDS)
            profiles = os.environ.get(profiling.ENVIRONMENT)
            with profiling.profiled(roots, Path(profiles)) if profiles else nullcontext():
                yield Running(found, db, ns, platform, watch)
    finally:
        platform.stop()
        await drop_database(db)
        await delete_topics(found.kafka_bootstrap, ns)


def platform_cpu(spent: dict[str, float]) -> float:
    """CPU seconds of the platform's processes and the Postgres backends serving them."""
    return sum(seconds for group, seconds in spent.items() if group not in NOT_PLATFORM)


async def wait_until(
    what: str,
    progress: Callable[[], Awaitable[tuple[int, int]]],
    timeout: float = 900,
    interval: float = 0.25,
) -> float:
    """Wait until progress() says done == total, printing a counter; returns seconds waited."""
    started = time.perf_counter()
    while True:
        done, total = await progress()
        print(f"\r[bench] {what}: {done:,}/{total:,}", end="", file=sys.stderr, flush=True)
        if total and done >= total:
            print(file=sys.stderr)
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{what} not finished in {timeout}s ({done}/{total})")
        await asyncio.sleep(interval)


async def group_lag(bootstrap: str, topic: str) -> dict[str, int]:
    """Messages each consumer group following ``topic`` has still to commit."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []
            ]
        ends = await consumer.end_offsets(partitions)
        lag: dict[str, int] = {}
        for group, _ in await admin.list_consumer_groups():
            offsets = await admin.list_consumer_group_offsets(group)
            mine = {tp: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
            if mine:
                lag[group] = sum(ends[tp] - mine.get(tp, 0) for tp in partitions)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def all_caught_up(bootstrap: str, topic: str, timeout: float = 120.0) -> float | None:
    """Seconds until every consumer group following ``topic`` has committed its end; None if
    some group was still behind after ``timeout``."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        lag = await group_lag(bootstrap, topic)
        if lag and not any(lag.values()):
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    return None
