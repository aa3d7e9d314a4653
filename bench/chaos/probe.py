"""What the chaos run reads while servers die under it: the scratch database (as the admin role,
every schema) and Kafka's end and committed offsets, each through a client that outlives a
restart of the server behind it (a failed call is retried on a fresh connection)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.support.servers import SERVICES

log = logging.getLogger(__name__)
T = TypeVar("T")

# A server that is restarting: try again shortly.
DB_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,  # AdminShutdown, CannotConnectNow
)
KAFKA_DOWN = (OSError, TimeoutError, KafkaError, AssertionError)


class Db:
    """The scratch database as its admin role, which may read every service's schema."""

    def __init__(self, dsn: str, patience: float = 300.0) -> None:
        self.dsn = dsn
        self.patience = patience
        self._pool: asyncpg.Pool | None = None

    async def _call(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.patience
        while True:
            try:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=4, command_timeout=300
                    )
                async with self._pool.acquire() as conn:
                    return await work(conn)
            except DB_DOWN as exc:
                if time.monotonic() > deadline:
                    raise
                log.debug("database unavailable (%r); retrying", exc)
                await asyncio.sleep(0.5)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._call(lambda c: c.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._call(lambda c: c.fetchval(sql, *args))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def consumer_topics(namespace: str) -> dict[str, dict[str, set[str]]]:
    """Each service's consumer group -> the topics it follows -> the event types it handles,
    from the service's own wiring (building its app connects to nothing)."""
    groups: dict[str, dict[str, set[str]]] = {}
    for service in SERVICES:
        main = importlib.import_module(f"services.{service}.main")
        follows = main.build(main.Settings()).state.runtime.follows
        groups[f"{namespace}{service}"] = {
            f"{namespace}{topic}": set(handlers) for topic, handlers in follows.items()
        }
    return groups


@dataclass
class KafkaProbe:
    """End offsets of topics and committed offsets of groups, with clients kept open between
    calls (each poll opening two clients cost more than what it measured)."""

    bootstrap: str
    _consumer: AIOKafkaConsumer | None = None
    _admin: AIOKafkaAdminClient | None = None

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
            try:
                await consumer.start()
                await admin.start()
            except BaseException:
                await self._stop(consumer, admin)
                raise
            self._consumer, self._admin = consumer, admin
        return self._consumer, self._admin

    @staticmethod
    async def _stop(consumer: AIOKafkaConsumer | None, admin: AIOKafkaAdminClient | None) -> None:
        for stop in (consumer.stop if consumer else None, admin.close if admin else None):
            if stop is not None:
                try:
                    await stop()
                except Exception:  # a client of a dead broker may not stop cleanly
                    log.debug("closing a Kafka client failed", exc_info=True)

    async def close(self) -> None:
        await self._stop(self._consumer, self._admin)
        self._consumer = self._admin = None

    async def _retrying(self, what: Callable[[], Awaitable[T]], patience: float = 300.0) -> T:
        deadline = time.monotonic() + patience
        while True:
            try:
                return await asyncio.wait_for(what(), 30)
            except KAFKA_DOWN as exc:
                await self.close()
                if time.monotonic() > deadline:
                    raise
                log.debug("Kafka unavailable (%r); retrying", exc)
                await asyncio.sleep(0.5)

    async def end_offsets(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        wanted = list(topics)

        async def ends() -> dict[TopicPartition, int]:
            consumer, _ = await self._clients()
            cluster = await consumer._client.fetch_all_metadata()
            absent = [t for t in wanted if not cluster.partitions_for_topic(t)]
            if absent:  # every topic asked for exists: metadata that lacks one is stale
                raise KafkaError(f"no partitions known for {absent}")
            parts = [TopicPartition(t, p) for t in wanted for p in cluster.partitions_for_topic(t)]
            return dict(await consumer.end_offsets(parts)) if parts else {}

        return await self._retrying(ends)

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        async def offsets() -> dict[TopicPartition, int]:
            _, admin = await self._clients()
            found = await admin.list_consumer_group_offsets(group)
            return {tp: meta.offset for tp, meta in found.items()}

        return await self._retrying(offsets)

    async def lag(self, group: str, ends: dict[TopicPartition, int]) -> int:
        """Messages of ``ends`` (end offsets read earlier) the group has not committed yet."""
        now = await self.committed(group)
        return sum(max(0, end - max(now.get(tp, 0), 0)) for tp, end in ends.items())
