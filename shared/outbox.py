"""The transactional outbox: events commit with the change that caused them, and a relay publishes.

:func:`record` writes events into the service's ``outbox`` table on the caller's connection, inside
the business transaction: both commit or neither does. :class:`Relay` publishes rows in id order
(so per-aggregate order holds: the Kafka key is the aggregate id), in batches, through an
idempotent producer, and marks rows published only after the broker acknowledged every one.
Only the replica holding a Postgres advisory lock relays, so order holds with several replicas.
A crash between the broker's ack and the mark republishes the batch: consumers' inboxes absorb it.
The leading relay marks a batch with its next read, in one statement (or after a quiet poll, or
at stop): at online rates each event is a batch, and the mark was a round trip of its own.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import struct
import time
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from prometheus_client import Counter

from shared.db import connect, lock_key
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.metrics import EVENTS_PUBLISHED
from shared.telemetry import current_trace_headers, send_span

log = logging.getLogger(__name__)


_COLUMNS = ("event_id", "topic", "key", "type", "headers", "payload")
_COPY_THRESHOLD = 64
OutboxRow = tuple[str, str, str, str, dict[str, str], bytes]  # _COLUMNS


def channel(schema: str) -> str:
    return f"{schema}_outbox"


async def record(
    conn: asyncpg.Connection,
    topic: str,
    events: Sequence[EventData],
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> None:
    """Write events to the outbox on ``conn``; call inside the transaction of the change.

    A handful (an online join's one event) is one round trip: the insert and the notification
    that wakes the relay at commit are one statement. Thousands (a roster chunk) go by COPY.
    """
    if not events:
        return
    rows = _traced_rows(topic, events, correlation_id, causation_id)
    if len(rows) >= _COPY_THRESHOLD:
        # COPY is several times faster than INSERT for the roster import's thousands of events.
        await conn.copy_records_to_table("outbox", records=rows, columns=_COLUMNS)
        await conn.execute(_NOTIFY)
    else:
        await conn.execute(_INSERT_AND_NOTIFY, *zip(*rows, strict=True))


def _traced_rows(
    topic: str,
    events: Sequence[EventData],
    correlation_id: str | None,
    causation_id: str | None,
) -> list[OutboxRow]:
    """The events' outbox rows, carrying the current trace."""
    return outbox_rows(
        topic,
        events,
        correlation_id=correlation_id,
        causation_id=causation_id,
        trace_headers=current_trace_headers(),
    )


async def record_with(
    conn: asyncpg.Connection,
    statement: str,
    args: Sequence[object],
    topic: str,
    events: Sequence[EventData],
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> object:
    """Run ``statement`` and write ``events`` to the outbox in the same statement
    (:func:`_with_events`): the write's returned value, None when it wrote nothing (and no event
    was written either). Needs no transaction of its own."""
    rows = _traced_rows(topic, events, correlation_id, causation_id)
    sql, values = _with_events(statement, args, rows)
    return await conn.fetchval(sql, *values)


def _with_events(
    statement: str, args: Sequence[object], rows: Sequence[OutboxRow]
) -> tuple[str, list[object]]:
    """``statement`` (one write ending in ``RETURNING``, its parameters ``args``) and the outbox
    ``rows`` of the events it causes, as one statement, atomic on its own: the events are written
    only if the write returned a row, and the statement answers the write's first value (NULL when
    it wrote nothing). An online join is one round trip this way, not BEGIN, write, outbox, COMMIT.
    """
    if not rows:
        return statement, list(args)
    arrays = ", ".join(f"${len(args) + i}::{t}[]" for i, t in enumerate(_TYPES, start=1))
    sql = (
        f"WITH change AS ({statement}), written AS (INSERT INTO outbox ({', '.join(_COLUMNS)})"
        f" SELECT * FROM unnest({arrays}) WHERE EXISTS (SELECT FROM change))"
        f" SELECT (SELECT * FROM change LIMIT 1), CASE WHEN EXISTS (SELECT FROM change)"
        f" THEN {_NOTIFY_CALL} END"
    )
    return sql, [*args, *(list(column) for column in zip(*rows, strict=True))]


# Delivered at commit: wakes the relay (the channel is named after the schema).
_NOTIFY_CALL = f"pg_notify(current_schema() || '{channel('')}', '')"
_NOTIFY = f"SELECT {_NOTIFY_CALL}"
_TYPES = ("uuid", "text", "text", "text", "jsonb", "bytea")  # of _COLUMNS
# A data-modifying WITH runs whether or not the outer query reads it.
_INSERT_AND_NOTIFY = (
    f"WITH written AS (INSERT INTO outbox ({', '.join(_COLUMNS)})"
    f" SELECT * FROM unnest({', '.join(f'${i}::{t}[]' for i, t in enumerate(_TYPES, start=1))}))"
    f" {_NOTIFY}"
)


def outbox_rows(
    topic: str,
    events: Sequence[EventData],
    *,
    correlation_id: str | None,
    causation_id: str | None,
    trace_headers: dict[str, str],
) -> list[OutboxRow]:
    """Outbox rows (``_COLUMNS``) for events, each with the envelope :meth:`Envelope.wrap` gives.

    A roster writes 657,000 events: wrapping each costs more than the rest of its row, so one
    envelope per event type is the template and each event changes only its own attributes.
    """
    templates: dict[str, dict[str, str]] = {}
    ids = _event_ids(len(events))
    rows = []
    for event, event_id in zip(events, ids, strict=True):
        headers = templates.get(event.type)
        if headers is None:
            envelope = Envelope.wrap(
                event,
                correlation_id=correlation_id,
                causation_id=causation_id,
                trace_headers=trace_headers,
            )
            headers = templates[event.type] = dict(envelope.kafka_headers_text())
        subject = event.subject()
        headers = headers | {"ce_id": event_id, "ce_subject": subject}
        if correlation_id is None:  # the event starts its own chain
            headers["ce_correlationid"] = event_id
        data = event.model_dump_json().encode()
        rows.append((event_id, topic, subject, event.type, headers, data))
    return rows


def _event_ids(count: int) -> list[str]:
    """``count`` new UUIDs (version 7: the time in milliseconds, then 74 random bits) as text.

    Time-ordered ids land at the right-hand end of the unique index on ``event_id`` (and of the
    consumers' inbox keys) instead of on a random page each: a roster's 657,000 random ones
    made Postgres write most of those indexes' pages again after every checkpoint.
    """
    millis = f"{time.time_ns() // 1_000_000:012x}"
    prefix = f"{millis[:8]}-{millis[8:]}-7"
    digits = os.urandom(10 * count).hex()
    return [
        f"{prefix}{h[:3]}-{_VARIANT[h[3]]}{h[4:7]}-{h[7:19]}"
        for h in (digits[i : i + 20] for i in range(0, 20 * count, 20))
    ]


# RFC 9562 variant: the 17th hex digit is 8, 9, a or b.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


_M = 0x5BD1E995
_WORD = 0xFFFFFFFF


def murmur2(key: bytes) -> int:
    """Kafka's key hash (the Java client's, and aiokafka's DefaultPartitioner's): the partition is
    ``(murmur2(key) & 0x7FFFFFFF) % partitions``, so a key lands where any Kafka producer puts it.

    The same arithmetic as aiokafka's, without its redundant masking and byte-at-a-time reads:
    that one took half of the relay's CPU.
    """
    length = len(key)
    end = length & ~3
    h = 0x9747B28C ^ length
    for (k,) in struct.iter_unpack("<I", key[:end]):
        k = (k * _M) & _WORD
        k = ((k ^ (k >> 24)) * _M) & _WORD
        h = ((h * _M) & _WORD) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= key[end + 2] << 16
        if tail >= 2:
            h ^= key[end + 1] << 8
        h = ((h ^ key[end]) * _M) & _WORD
    h = ((h ^ (h >> 13)) * _M) & _WORD
    return h ^ (h >> 15)


_READ = (
    "SELECT id, topic, key, type, headers, payload FROM outbox"
    " WHERE published_at IS NULL{} ORDER BY id LIMIT $1"
)


def _these(ids: list[int], first: int) -> tuple[str, list[object]]:
    """The condition that holds for exactly these rows (ascending ids), its parameters numbered
    from ``first``. Never a bare range over ids that were not fetched: a transaction that took
    an id inside it may commit after the fetch, and its row would be marked unsent. When the
    batch is every id from first to last (the usual case) the range is the same rows and one
    index scan, not a lookup per id."""
    if ids[-1] - ids[0] + 1 == len(ids):
        return f"id BETWEEN ${first} AND ${first + 1}", [ids[0], ids[-1]]
    return f"id = ANY(${first})", [ids]


class Relay:
    def __init__(
        self,
        dsn: str,
        schema: str,
        producer: AIOKafkaProducer,
        *,
        service: str | None = None,
        batch_size: int = 1000,
        poll_seconds: float = 1.0,
        linger_seconds: float = 0.01,
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.service = service or schema
        self._published: dict[str, Counter] = {}
        self.producer = producer
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.linger_seconds = linger_seconds
        self.published = 0
        self._unmarked: list[int] = []  # published, acked, to be marked with the next read
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # One lock key per schema: replicas of one service contend, different services don't.
        self._lock_key = lock_key(schema)

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
        self._unmarked = []  # a new connection: what a lost one left unmarked goes out again
        finished = 0.0  # when the last batch short of full was published
        while not self._stopping.is_set():
            if time.monotonic() - finished < self.linger_seconds:
                # Woken again at once: a steady stream (joins at hundreds a second), whose events
                # would each cost a read, a produce and a mark. A few milliseconds more make one
                # batch of several; a lone event (quiet before) goes at once.
                await self._sleep(self.linger_seconds)
            self._wake.clear()
            try:
                sent = await self.publish_batch(conn, mark_later=True)
            except (asyncpg.PostgresError, asyncpg.InterfaceError):
                raise  # reconnect (run() does, within poll_seconds)
            except Exception as exc:  # the broker is down or refused: keep rows, retry later
                if conn.is_closed():
                    raise  # the database connection went with it: reconnect
                log.warning(
                    "outbox relay for %s could not publish (%s); retrying", self.schema, exc
                )
                sent = 0
                await self._sleep(self.poll_seconds)
            if sent < self.batch_size:  # a full batch goes on at once: the backlog is there
                finished = time.monotonic()
                # Woken by NOTIFY at commit; the poll is the fallback when a notification is lost.
                # Quiet (no wake): the last batch is marked now rather than with the next read.
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except TimeoutError:
                    await self._mark_unmarked(conn)
        await self._mark_unmarked(conn)

    async def _mark_unmarked(self, conn: asyncpg.Connection) -> None:
        if self._unmarked:
            await self.mark_published(conn, self._unmarked)
            self._unmarked = []

    async def publish_batch(self, conn: asyncpg.Connection, *, mark_later: bool = False) -> int:
        """Publish the oldest unpublished rows and mark them; with ``mark_later`` (the leading
        relay) they are marked by the next call's read instead, in the same statement."""
        rows = await self._read(conn)
        if not rows:
            return 0
        # Rows go into record batches per partition, built here: the producer's per-message
        # send() cost three times as much CPU as the rest of a row's way to the broker.
        batches: dict[tuple[str, int], list[BatchBuilder]] = {}
        traces: dict[tuple[str, int], list[dict[str, str]]] = {}
        sent: collections.Counter[tuple[str, int]] = collections.Counter()
        partitions_of: dict[str, list[int]] = {}
        for r in rows:
            topic, key, value, row_headers = (
                r["topic"],
                r["key"].encode(),
                r["payload"],
                r["headers"],
            )
            headers = [(k, v.encode()) for k, v in row_headers.items()]
            if topic not in partitions_of:
                partitions_of[topic] = sorted(await self.producer.partitions_for(topic))
            partitions = partitions_of[topic]
            where = (topic, partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)])
            sent[where] += 1
            if "traceparent" in row_headers:
                traces.setdefault(where, []).append(row_headers)
            chain = batches.setdefault(where, [])
            if chain and chain[-1].append(timestamp=None, key=key, value=value, headers=headers):
                continue
            chain.append(self.producer.create_batch())  # the first, or the last one is full
            chain[-1].append(timestamp=None, key=key, value=value, headers=headers)
        # Partitions in parallel; within one, each batch only once the one before is acked. Were
        # a later batch in flight when an earlier one failed, the retry would land the earlier
        # events after the later ones: a member's events out of order.
        results = await asyncio.gather(
            *(
                self._send_in_order(where, chain, sent[where], traces.get(where, []))
                for where, chain in batches.items()
            ),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]  # all settled first: nothing of this batch is still in flight
        if mark_later:
            self._unmarked = [r["id"] for r in rows]
        else:
            await self.mark_published(conn, [r["id"] for r in rows])
        self.published += len(rows)
        for event_type, count in collections.Counter(r["type"] for r in rows).items():
            self._published_counter(event_type).inc(count)
        return len(rows)

    def _published_counter(self, event_type: str) -> Counter:
        counter = self._published.get(event_type)
        if counter is None:
            counter = self._published[event_type] = EVENTS_PUBLISHED.labels(
                self.service, event_type
            )
        return counter

    async def _send_in_order(
        self,
        where: tuple[str, int],
        chain: list[BatchBuilder],
        count: int,
        traces: list[dict[str, str]],
    ) -> None:
        topic, partition = where
        with send_span(topic, partition, count, traces):
            for batch in chain:
                await (await self.producer.send_batch(batch, topic, partition=partition))

    async def _read(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        """The oldest unpublished rows; the last batch's, still unmarked, are marked by the same
        statement (and left out of the read, whose snapshot is from before the mark)."""
        if not self._unmarked:
            return await conn.fetch(_READ.format(""), self.batch_size)
        which, args = _these(self._unmarked, first=2)
        rows = await conn.fetch(
            f"WITH marked AS (UPDATE outbox SET published_at = now() WHERE {which})"
            + _READ.format(f" AND NOT ({which})"),
            self.batch_size,
            *args,
        )
        self._unmarked = []
        return rows

    async def mark_published(self, conn: asyncpg.Connection, ids: list[int]) -> None:
        """Mark exactly these rows (ascending ids)."""
        which, args = _these(ids, first=1)
        await conn.execute(f"UPDATE outbox SET published_at = now() WHERE {which}", *args)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True
