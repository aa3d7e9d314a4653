"""Wiring every service shares: pool, migrations, producer, outbox relay and consumers.

A service's ``main.py`` builds one :class:`ServiceRuntime` with its settings and the events it
follows, and hands ``runtime.lifespan`` to the app factory. Nothing else starts or stops I/O.

Start-up never gives up on a server that is down: when Postgres or Kafka cannot be reached, the
service still starts (``/healthz`` alive, ``/readyz`` 503, API calls 503 with ``Retry-After``)
and keeps connecting in the background with back-off; the relay, consumers and workers start once
both answer. Every background loop runs under :class:`shared.supervision.Supervisor`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from shared.consumer import ConsumerRunner, Handler
from shared.db import create_pool
from shared.errors import ServiceUnavailable
from shared.kafka import ensure_topics, idempotent_producer
from shared.metrics import Sample, sample_outbox, sampling
from shared.migrations import upgrade_async
from shared.outbox import Relay
from shared.retention import retention
from shared.settings import ServiceSettings
from shared.supervision import Supervisor
from shared.telemetry import setup_tracing

log = logging.getLogger(__name__)
EVENT_PARTITIONS = 6
FIRST_RETRY_SECONDS = 0.5
# A server that does not answer (yet): wait for it rather than exit.
UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    KafkaError,
)
Worker = Callable[["ServiceRuntime"], Coroutine[object, object, None]]


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        follows: dict[str, dict[str, Handler]] | None = None,
        workers: dict[str, Worker] | None = None,
        samples: Sequence[Sample] = (),
    ) -> None:
        """``follows`` maps a topic's short name (``"membership.events"``) to handlers by type;
        ``workers`` are a service's own background loops (e.g. the WeChat sender), each started
        under supervision once the runtime is connected, and cancelled at shutdown; ``samples``
        set gauges from the service's own tables every few seconds (the outbox's always)."""
        self.settings = settings
        self.follows = follows or {}
        self.workers = workers or {}
        self.samples = [sample_outbox, *samples]
        self.supervisor = Supervisor(
            settings.service, backoff_max=settings.restart_backoff_max_seconds
        )
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self.relay: Relay | None = None
        self.consumer: ConsumerRunner | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._waiting_for: str | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ServiceUnavailable(self._waiting_for or "the service is starting")
        return self._pool

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise ServiceUnavailable(self._waiting_for or "the service is starting")
        return self._producer

    async def start(self) -> None:
        s = self.settings
        setup_tracing(s.service, s.telemetry, s.otlp_endpoint)
        try:
            await self._connect()
        except UNREACHABLE as exc:
            self._note_waiting(exc, FIRST_RETRY_SECONDS)
            self._connecting = asyncio.create_task(self._connect_until_up())
            return
        self._start_workers()

    async def _connect(self) -> None:
        """Each step once: the pool, the schema, the topics, the producer."""
        s = self.settings
        if self._pool is None:
            pool = await create_pool(s.database_url, s.db_schema)
            try:
                await upgrade_async(s.service, s.database_url, s.db_schema)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
        if self._producer is None:
            followed = [s.topic(t) for t in self.follows]
            await ensure_topics(
                s.kafka_bootstrap,
                {s.events_topic: EVENT_PARTITIONS, s.dead_letter_topic: 1}
                | dict.fromkeys(followed, EVENT_PARTITIONS),
                replication_factor=s.topic_replication_factor,
                min_insync_replicas=s.topic_min_insync_replicas,
            )
            producer = idempotent_producer(s.kafka_bootstrap)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        self._waiting_for = None

    async def _connect_until_up(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.restart_backoff_max_seconds)
            try:
                await self._connect()
            except UNREACHABLE as exc:
                self._note_waiting(exc, delay)
                continue
            log.info("%s connected to Postgres and Kafka", self.settings.service)
            self._start_workers()
            return

    def _note_waiting(self, exc: BaseException, retry_in: float) -> None:
        server = "Postgres" if self._pool is None else "Kafka"
        where = self.settings.kafka_bootstrap if self._pool else "the database_url's host"
        self._waiting_for = f"waiting for {server} ({type(exc).__name__}: {exc})"
        log.warning(
            "%s: %s at %s; retrying in %.1f s (start it, or fix the %s setting)",
            self.settings.service,
            self._waiting_for,
            where,
            retry_in,
            "kafka_bootstrap" if self._pool else "database_url",
        )

    def _start_workers(self) -> None:
        s = self.settings
        if s.run_relay:
            self.supervisor.start("relay", self._relay, on_stop=self._stop_relay)
        if s.run_consumers and self.follows:
            self.supervisor.start("consumer", self._consume, on_stop=self._stop_consumer)
        if not s.runs_workers:
            return  # an API process (role "api"): the worker process runs them
        self.supervisor.start("retention", functools.partial(retention, self))
        # Not required: a gauge that cannot be read must not take the service out of service.
        self.supervisor.start(
            "gauges", functools.partial(sampling(*self.samples), self), required=False
        )
        for name, worker in self.workers.items():
            self.supervisor.start(name, functools.partial(worker, self))

    async def _relay(self) -> None:
        s = self.settings
        self.relay = Relay(
            s.database_url,
            s.db_schema,
            self.producer,
            service=s.service,
            batch_size=s.relay_batch_size,
            poll_seconds=s.relay_poll_seconds,
        )
        await self.relay.run()

    def _stop_relay(self) -> None:
        if self.relay is not None:
            self.relay.stop()

    async def _consume(self) -> None:
        s = self.settings
        handlers: dict[str, Handler] = {}
        for by_type in self.follows.values():
            handlers.update(by_type)
        # A new consumer each time: one that failed has left its group; the inbox absorbs what
        # the new one is given again.
        self.consumer = ConsumerRunner(
            name=f"{s.topic_namespace}{s.service}",
            service=s.service,
            pool=self.pool,
            bootstrap=s.kafka_bootstrap,
            topics=[s.topic(t) for t in self.follows],
            handlers=handlers,
            producer=self.producer,
            dead_letter_topic=s.dead_letter_topic,
            batch_size=s.consumer_batch_size,
            max_attempts=s.consumer_max_attempts,
            retry_budget_seconds=s.consumer_retry_budget_seconds,
            gather_ms=s.consumer_gather_ms,
        )
        await self.consumer.run()

    def _stop_consumer(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        await self.supervisor.stop(grace_seconds=15)
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

    async def background(self) -> None:
        """Every required background worker runs (none is waiting to be started again)."""
        if self._waiting_for is not None:
            raise ServiceUnavailable(self._waiting_for)
        self.supervisor.check()

    @property
    def readiness(self) -> list[Callable[[], Awaitable[None]]]:
        """The checks behind ``/readyz``: database, Kafka, background workers."""
        return [self.database, self.kafka, self.background]
