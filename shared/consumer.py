"""The consumer runner: each event applied at most once, unreadable ones dead-lettered, no stalls.

For a batch from one partition, one database transaction records each event id in the service's
``inbox`` and runs its handler, each event inside a savepoint; an id already in the inbox is
skipped. Offsets are committed only after the database commit, so a crash redelivers and the inbox
absorbs the redelivery. An event that cannot be read (no envelope, unknown type or version, bad
data) or whose handler keeps failing goes to the dead-letter topic with the reason in headers, and
the partition moves on. A lost database connection is not the event's fault: the batch is retried
with back-off until the database answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry import trace

from shared.events.base import EventData
from shared.events.envelope import BadEvent, Envelope
from shared.telemetry import context_from_headers

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, EventData, Envelope], Awaitable[None]]
_TRANSIENT = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, TimeoutError)
_tracer = trace.get_tracer("gonghui.consumer")


@dataclass
class DeadLetter:
    record: ConsumerRecord
    reason: str
    error: str


class ConsumerRunner:
    def __init__(
        self,
        *,
        name: str,
        pool: asyncpg.Pool,
        bootstrap: str,
        topics: Iterable[str],
        handlers: dict[str, Handler],
        producer: AIOKafkaProducer,
        dead_letter_topic: str,
        batch_size: int = 500,
        max_attempts: int = 3,
        backoff_seconds: float = 0.2,
    ) -> None:
        self.name = name
        self.pool = pool
        self.topics = list(topics)
        self.handlers = handlers
        self.producer = producer
        self.dead_letter_topic = dead_letter_topic
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.applied = 0
        self.dead_lettered = 0
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=bootstrap,
            group_id=name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
        )
        self._stopping = asyncio.Event()
        self.started = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await self.consumer.start()
        self.started.set()
        try:
            while not self._stopping.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=self.batch_size)
                for tp, records in batches.items():
                    await self._process(tp, records)
        finally:
            # Drain done: the last batch was committed above; leave the group cleanly.
            await self.consumer.stop()

    async def _process(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        delay = self.backoff_seconds
        while True:
            try:
                dead = await self._apply_batch(records)
                break
            except _TRANSIENT as exc:
                log.warning(
                    "%s: database unavailable (%s); retrying in %.1fs", self.name, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
        for letter in dead:
            await self._dead_letter(letter)
        try:
            await self.consumer.commit({tp: records[-1].offset + 1})
        except CommitFailedError:
            # The partition moved to another member during a rebalance; it will redeliver from
            # the last commit and the inbox skips what we applied.
            log.info("%s: commit for %s skipped after a rebalance", self.name, tp)

    async def _apply_batch(self, records: list[ConsumerRecord]) -> list[DeadLetter]:
        dead: list[DeadLetter] = []
        async with self.pool.acquire() as conn, conn.transaction():
            if len(records) > 1:
                try:
                    async with conn.transaction():  # one savepoint for the whole batch
                        await self._apply_together(conn, records)
                    return dead
                except _TRANSIENT:
                    raise
                except Exception as exc:
                    log.debug("%s: batch needs the careful path (%s)", self.name, exc)
            for record in records:
                letter = await self._apply_one(conn, record)
                if letter is not None:
                    dead.append(letter)
                    await self._remember(conn, letter.record, "dead_lettered")
        return dead

    async def _apply_together(
        self, conn: asyncpg.Connection, records: list[ConsumerRecord]
    ) -> None:
        """The fast path: one inbox insert for the batch, handlers back to back, no savepoints.

        Any unreadable event or failing handler raises, the batch's savepoint rolls back (inbox
        rows included), and the careful path takes the batch event by event.
        """
        readable = []
        for record in records:
            envelope = Envelope.from_kafka(record.headers, record.value)
            handler = self.handlers.get(envelope.type)
            if handler is not None:
                readable.append((envelope, envelope.read(), handler))
        if not readable:
            return
        rows = await conn.fetch(
            "INSERT INTO inbox (consumer, event_id, event_type)"
            " SELECT $1, e, t FROM unnest($2::text[], $3::text[]) AS x(e, t)"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            self.name,
            [e.id for e, _, _ in readable],
            [e.type for e, _, _ in readable],
        )
        new = {r["event_id"] for r in rows}
        applied = 0
        for envelope, data, handler in readable:
            if envelope.id not in new:
                continue  # applied before (a redelivery), or twice in this very batch
            new.discard(envelope.id)
            with _tracer.start_as_current_span(
                f"consume {envelope.type}",
                context=context_from_headers(envelope.trace_headers),
                kind=trace.SpanKind.CONSUMER,
            ):
                await handler(conn, data, envelope)
            applied += 1
        self.applied += applied  # counted only once the whole batch went through

    async def _apply_one(
        self, conn: asyncpg.Connection, record: ConsumerRecord
    ) -> DeadLetter | None:
        try:
            envelope = Envelope.from_kafka(record.headers, record.value)
        except BadEvent as exc:
            return DeadLetter(record, "unreadable", str(exc))
        handler = self.handlers.get(envelope.type)
        if handler is None:
            return None  # an event this service does not follow: nothing to do
        try:
            data = envelope.read()
        except BadEvent as exc:
            return DeadLetter(record, "bad_data", str(exc))
        for attempt in range(1, self.max_attempts + 1):
            try:
                with _tracer.start_as_current_span(
                    f"consume {envelope.type}",
                    context=context_from_headers(envelope.trace_headers),
                    kind=trace.SpanKind.CONSUMER,
                ):
                    async with conn.transaction():
                        if not await self._remember(conn, record, "applied", envelope):
                            return None  # already applied: a redelivery
                        await handler(conn, data, envelope)
                self.applied += 1
                return None
            except _TRANSIENT:
                raise
            except Exception as exc:
                if attempt == self.max_attempts:
                    return DeadLetter(record, "handler_failed", f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(self.backoff_seconds * attempt)
        return None

    async def _remember(
        self,
        conn: asyncpg.Connection,
        record: ConsumerRecord,
        outcome: str,
        envelope: Envelope | None = None,
    ) -> bool:
        event_id = envelope.id if envelope else f"{record.topic}:{record.partition}:{record.offset}"
        event_type = envelope.type if envelope else "unreadable"
        inserted = await conn.fetchval(
            "INSERT INTO inbox (consumer, event_id, event_type, outcome) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING RETURNING true",
            self.name,
            _header(record, "ce_id") or event_id,
            event_type,
            outcome,
        )
        return bool(inserted)

    async def _dead_letter(self, letter: DeadLetter) -> None:
        r = letter.record
        headers = [
            *(r.headers or []),
            ("dlq_reason", letter.reason.encode()),
            ("dlq_error", letter.error[:2000].encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_topic", r.topic.encode()),
            ("dlq_partition", str(r.partition).encode()),
            ("dlq_offset", str(r.offset).encode()),
        ]
        while True:
            try:
                await self.producer.send_and_wait(
                    self.dead_letter_topic, value=r.value, key=r.key, headers=headers
                )
                break
            except KafkaError as exc:  # never commit past an event that is neither applied nor kept
                log.warning("%s: dead-letter send failed (%s); retrying", self.name, exc)
                await asyncio.sleep(1)
        self.dead_lettered += 1
        log.warning(
            "%s: dead-lettered %s@%s:%s: %s",
            self.name,
            r.topic,
            r.partition,
            r.offset,
            letter.error,
        )


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or []:
        if key == name:
            return value.decode(errors="replace")
    return None
