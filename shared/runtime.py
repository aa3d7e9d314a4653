"""Wiring every service shares: pool, migrations, producer, outbox relay and consumers.

A service's ``main.py`` builds one :class:`ServiceRuntime` with its settings and the events it
follows, and hands ``runtime.lifespan`` to the app factory. Nothing else starts or stops I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from shared.consumer import ConsumerRunner, Handler
from shared.db import create_pool
from shared.kafka import ensure_topics, idempotent_producer
from shared.migrations import upgrade_async
from shared.outbox import Relay
from shared.settings import ServiceSettings
from shared.telemetry import setup_tracing

log = logging.getLogger(__name__)
EVENT_PARTITIONS = 6
Worker = Callable[["ServiceRuntime"], Coroutine[object, object, None]]


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        follows: dict[str, dict[str, Handler]] | None = None,
        workers: dict[str, Worker] | None = None,
    ) -> None:
        """``follows`` maps a topic's short name (``"membership.events"``) to handlers by type;
        ``workers`` are a service's own background loops (e.g. the WeChat sender), each started
        with the running runtime and cancelled at shutdown."""
        self.settings = settings
        self.follows = follows or {}
        self.workers = workers or {}
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self.relay: Relay | None = None
        self.consumer: ConsumerRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._worker_tasks: list[asyncio.Task[None]] = []

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the runtime has not started"
        return self._pool

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "the runtime has not started"
        return self._producer

    async def start(self) -> None:
        s = self.settings
        setup_tracing(s.service, s.telemetry, s.otlp_endpoint)
        await upgrade_async(s.service, s.database_url, s.db_schema)
        self._pool = await create_pool(s.database_url, s.db_schema)
        followed = [s.topic(t) for t in self.follows]
        await ensure_topics(
            s.kafka_bootstrap,
            {s.events_topic: EVENT_PARTITIONS, s.dead_letter_topic: 1}
            | dict.fromkeys(followed, EVENT_PARTITIONS),
        )
        self._producer = idempotent_producer(s.kafka_bootstrap)
        await self._producer.start()
        if s.run_relay:
            self.relay = Relay(
                s.database_url,
                s.db_schema,
                self._producer,
                batch_size=s.relay_batch_size,
                poll_seconds=s.relay_poll_seconds,
                retention=timedelta(hours=s.outbox_retention_hours),
            )
            self._spawn(self.relay.run(), "relay")
        if s.run_consumers and self.follows:
            handlers: dict[str, Handler] = {}
            for by_type in self.follows.values():
                handlers.update(by_type)
            self.consumer = ConsumerRunner(
                name=f"{s.topic_namespace}{s.service}",
                pool=self._pool,
                bootstrap=s.kafka_bootstrap,
                topics=followed,
                handlers=handlers,
                producer=self._producer,
                dead_letter_topic=s.dead_letter_topic,
                batch_size=s.consumer_batch_size,
                max_attempts=s.consumer_max_attempts,
            )
            self._spawn(self.consumer.run(), "consumer")
        for name, worker in self.workers.items():
            self._spawn(worker(self), name)
            self._worker_tasks.append(self._tasks.pop())

    def _spawn(self, job: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(job)

        def crashed(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                log.error("%s %s stopped: %r", self.settings.service, name, t.exception())

        task.add_done_callback(crashed)
        self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._worker_tasks:
            task.cancel()  # workers keep their state in Postgres: cancelling loses nothing
        await asyncio.gather(*self._worker_tasks, return_exceptions=True)
        if self.relay:
            self.relay.stop()
        if self.consumer:
            self.consumer.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=15)
        for task in self._tasks:
            task.cancel()
        if self._producer:
            await self._producer.stop()
        if self._pool:
            await self._pool.close()

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def database(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def kafka(self) -> None:
        partitions = await self.producer.partitions_for(self.settings.events_topic)
        if not partitions:
            raise RuntimeError(f"topic {self.settings.events_topic} has no partitions")
