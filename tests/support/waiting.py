"""Waiting on a condition, never on a sleep: a row, a count, a consumer group's committed offsets.

``eventually`` polls a check until it gives something truthy. ``caught_up`` waits until a
consumer group has committed every partition of its topics to the end: after that, no late
duplicate can still be on its way, so "nothing more happened" can be asserted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = "condition"
) -> Any:
    """The first truthy result of ``check``, polled until ``timeout`` seconds have passed."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not met in {timeout}s; last value {result!r}")
        await asyncio.sleep(0.05)


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.partitions_for_topic(topic) or []
        ]
        return dict(await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in offsets.items()}
    finally:
        await admin.close()


async def caught_up(
    bootstrap: str, group: str, topics: Iterable[str], timeout: float = 30.0
) -> None:
    """Wait until ``group`` has committed every partition of ``topics`` up to its end offset as
    it is now (read once, at the start: what was produced before the call)."""
    ends = {tp: end for tp, end in (await end_offsets(bootstrap, topics)).items() if end > 0}

    async def done() -> bool:
        now = await committed(bootstrap, group)
        return all(now.get(tp, -1) >= end for tp, end in ends.items())

    await eventually(done, timeout)
