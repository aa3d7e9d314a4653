"""The transactional outbox: events commit with the change that caused them, and a relay publishes.

:func:`record` writes events into the service's ``outbox`` table on the caller's connection, inside
the business transaction: both commit or neither does. :class:`Relay` publishes rows in id order
(so per-aggregate order holds: the Kafka key is the aggregate id), in batches, through an
idempotent producer, and marks rows published only after the broker acknowledged every one.
Only the replica holding a Postgres advisory lock relays, so order holds with several replicas.
A crash between the broker's ack and the mark republishes the batch: consumers' inboxes absorb it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from contextlib import suppress
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.db import connect
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.telemetry import current_trace_headers

log = logging.getLogger(__name__)

DDL = """
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    topic text NOT NULL,
    key text NOT NULL,
    type text NOT NULL,
    headers jsonb NOT NULL,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE TABLE inbox (
    consumer text NOT NULL,
    event_id text NOT NULL,
    event_type text NOT NULL,
    outcome text NOT NULL DEFAULT 'applied',
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
"""

_COLUMNS = ("event_id", "topic", "key", "type", "headers", "payload")
_COPY_THRESHOLD = 64


def channel(schema: str) -> str:
    return f"{schema}_outbox"


async def record(
    conn: asyncpg.Connection,
    topic: str,
    events: Sequence[EventData],
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> list[Envelope]:
    """Write events to the outbox on ``conn``; call inside the transaction of the change."""
    if not events:
        return []
    trace_headers = current_trace_headers()
    envelopes = [
        Envelope.wrap(
            e, correlation_id=correlation_id, causation_id=causation_id, trace_headers=trace_headers
        )
        for e in events
    ]
    rows = [
        (env.id, topic, env.subject, env.type, dict(env.kafka_headers_text()), env.data)
        for env in envelopes
    ]
    if len(rows) >= _COPY_THRESHOLD:
        # COPY is several times faster than INSERT for the roster import's thousands of events.
        await conn.copy_records_to_table("outbox", records=rows, columns=_COLUMNS)
    else:
        await conn.executemany(
            "INSERT INTO outbox (event_id, topic, key, type, headers, payload)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            rows,
        )
    # Delivered at commit: wakes the relay (one round trip, the channel named after the schema).
    await conn.execute(f"SELECT pg_notify(current_schema() || '{channel('')}', '')")
    return envelopes


class Relay:
    def __init__(
        self,
        dsn: str,
        schema: str,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 1000,
        poll_seconds: float = 1.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.producer = producer
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retention = retention
        self.published = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # One lock key per schema: replicas of one service contend, different services don't.
        self._lock_key = int.from_bytes(
            hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True
        )

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Relay until stopped, reconnecting after failures; stands by while another leads."""
        while not self._stopping.is_set():
            try:
                await self._lead_when_possible()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning(
                    "outbox relay for %s lost its connection (%s); retrying", self.schema, exc
                )
                await self._sleep(self.poll_seconds)

    async def _lead_when_possible(self) -> None:
        conn = await connect(self.dsn, self.schema)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                if await self._sleep(self.poll_seconds):
                    return
            await conn.add_listener(channel(self.schema), lambda *_: self._wake.set())
            log.info("outbox relay for %s is leading", self.schema)
            await self._relay(conn)
        finally:
            await conn.close()

    async def _relay(self, conn: asyncpg.Connection) -> None:
        next_prune = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                sent = await self.publish_batch(conn)
            except asyncpg.PostgresError:
                raise
            except Exception as exc:  # the broker is down or refused: keep rows, retry later
                log.warning(
                    "outbox relay for %s could not publish (%s); retrying", self.schema, exc
                )
                sent = 0
                await self._sleep(self.poll_seconds)
            if loop.time() >= next_prune:
                await self.prune(conn)
                next_prune = loop.time() + 300
            if sent < self.batch_size:
                # Woken by NOTIFY at commit; the poll is the fallback when a notification is lost.
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def publish_batch(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, key, headers, payload FROM outbox"
            " WHERE published_at IS NULL ORDER BY id LIMIT $1",
            self.batch_size,
        )
        if not rows:
            return 0
        # Queue every send first (the producer batches them), then wait for all acks.
        pending = [
            await self.producer.send(
                r["topic"],
                value=r["payload"],
                key=r["key"].encode(),
                headers=[(k, v.encode()) for k, v in r["headers"].items()],
            )
            for r in rows
        ]
        await asyncio.gather(*pending)
        await self.mark_published(conn, [r["id"] for r in rows])
        self.published += len(rows)
        return len(rows)

    async def mark_published(self, conn: asyncpg.Connection, ids: list[int]) -> None:
        await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1)", ids)

    async def prune(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "DELETE FROM outbox WHERE published_at < now() - $1::interval", self.retention
        )

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True
