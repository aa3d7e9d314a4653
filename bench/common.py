"""What the benchmarks share: servers, a scratch database, the platform as processes, progress."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.servers import Servers, find_servers


def servers() -> Servers:
    found = find_servers()
    print(f"[bench] Kafka {found.kafka_bootstrap}, Postgres {found.pg_host}:{found.pg_port}")
    return found


def namespace() -> str:
    return f"bench{uuid.uuid4().hex[:6]}."


class PeakRss:
    """Samples a process's resident memory in the background; ``peak`` in MiB."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            try:
                rss = self.process.memory_info().rss / 2**20
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            await asyncio.sleep(0.1)

    def __enter__(self) -> PeakRss:
        self._task = asyncio.create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()


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
