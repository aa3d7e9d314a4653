"""The consumer runner: each event applied at most once, unreadable ones dead-lettered, no stalls.

For a batch (what one fetch brought, every partition's records in their order), the fast path
records each event id in the service's ``inbox``
and runs the handlers in one database transaction, handing each run of consecutive events of one
type (of any type it handles, for an ``independent`` one) to a :class:`Batched` handler in one
call (one multi-row statement instead of one per event);
an id already in the inbox is skipped. If anything in it fails, the careful path applies the batch
again event by event, each in its own transaction, so a failing event holds no other event's
locks while it waits to be retried. Offsets are committed only after the database commit, so a
crash redelivers and the inbox absorbs the redelivery; since the inbox, not the offset, is what
keeps an event from being applied twice, offsets are committed at most every
``commit_seconds`` (and after a poll that brought nothing, when a partition is revoked, and on
stop), not after every batch: at online rates each event is a batch of its own, and a commit
per batch was a Kafka round trip per event in every group.

An event that cannot be read (no envelope, unknown type or version, bad data) or whose handler
keeps failing goes to the dead-letter topic with the reason in headers, and the partition moves
on. The dead letter is acknowledged by Kafka *before* the inbox row that marks the event handled
commits: a crash in between dead-letters it again on redelivery (a duplicate in the dead-letter
topic, where each letter carries the event id), never loses it. Retries of a batch's failing
events share a budget (``retry_budget_seconds``): a run of poison events is dead-lettered in
bounded time, well inside Kafka's ``max.poll.interval.ms``. A lost database connection is not the
event's fault: the batch is retried with back-off until the database answers again.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import asyncpg
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry import trace
from prometheus_client import Counter

from shared.events.base import EventData
from shared.events.envelope import BadEvent, Envelope
from shared.metrics import CONSUMER_LAG, DEAD_LETTERS, EVENTS_APPLIED, forget
from shared.telemetry import process_span

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, EventData, Envelope], Awaitable[None]]
Run = Sequence[tuple[EventData, Envelope]]  # consecutive events of one type, in their order
BatchHandler = Callable[[asyncpg.Connection, Run], Awaitable[None]]
# An event of a batch not in the inbox yet, and the record it came in.
Fresh = tuple[Envelope, EventData, Handler, ConsumerRecord]
_TRANSIENT = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, TimeoutError)


@dataclass(frozen=True)
class Statement:
    """A simple projection's whole effect on a run as one SQL statement: the run's rows upserted
    from arrays, nothing read back into Python, no event caused (mutual aid's eligibility view of
    joins). Declared so, a batch that is one such run is applied, inbox included, by one
    statement, which is atomic on its own: no BEGIN and COMMIT round trips.

    ``sql`` is one INSERT, UPDATE or DELETE taking ``arguments(run)`` as ``$1``, ``$2``, ...
    (arrays, one element per event, in the run's order) that writes only the events whose id
    is in ``fresh``, a relation of ``event_id`` text: the consumer's inbox insert (the events not
    applied before) on the fast path, every event of the run when called as a handler. A run
    longer than ``most`` takes the handler's own way instead (in a transaction): for arguments
    that cost more to build than the round trips they save on a roster's runs.
    """

    sql: str
    arguments: Callable[[Run], Sequence[object]]
    most: int | None = None

    def composed(self, fresh: str, run: Run, *fresh_arguments: object) -> tuple[str, list[object]]:
        """The statement after ``WITH fresh AS (<fresh>)``, ``fresh``'s parameters numbered after
        the projection's own; it answers the ids ``fresh`` holds."""
        arguments = list(self.arguments(run))
        first = len(arguments) + 1
        fresh = fresh.format(*(f"${first + i}" for i in range(len(fresh_arguments))))
        sql = f"WITH fresh AS ({fresh}), applied AS ({self.sql}) SELECT event_id FROM fresh"
        return sql, [*arguments, *fresh_arguments]

    async def apply(self, conn: asyncpg.Connection, run: Run) -> None:
        sql, arguments = self.composed(
            "SELECT unnest({0}::text[]) AS event_id", run, [e.id for _, e in run]
        )
        await conn.execute(sql, *arguments)


@dataclass(frozen=True)
class Batched:
    """A handler that applies a run of consecutive events of one type in one call, in their order.

    No two events of a run have the same subject (the Kafka key: the member, the union), so the
    effect equals applying them one by one as long as each event touches only its subject's rows:
    each row is written once (Postgres cannot upsert a row twice in one statement) and what the
    handler reads is as the events before the run left it. It is a :data:`Handler` too (one event
    is a run of one), so it is registered like any other and the careful path calls it that way.
    ``Batched.of(statement)`` declares a run's effect as one :class:`Statement`;
    ``Batched(apply, statement)`` when runs longer than the statement's ``most`` go by ``apply``;
    ``Batched.of(statement, rest)`` when the statement is the run's first effect and ``rest``
    the others (notifications: its directory, then the messages): the inbox insert and the
    statement are then one round trip, and ``rest`` is given the events not applied before.

    ``independent``: each event's effect is rows of its own, read from rows none of the events it
    handles writes (notifications' messages): a run is then every consecutive event it handles,
    of any type, subjects again included. A lecture's completions and certificates all have the
    class as subject and alternate, so otherwise each would be a run of one.
    """

    apply: BatchHandler
    statement: Statement | None = None
    rest: BatchHandler | None = None
    independent: bool = False

    @classmethod
    def of(cls, statement: Statement, rest: BatchHandler | None = None) -> Batched:
        if rest is None:
            return cls(statement.apply, statement)

        async def both(conn: asyncpg.Connection, run: Run) -> None:
            await statement.apply(conn, run)
            await rest(conn, run)

        return cls(both, statement, rest)

    async def __call__(self, conn: asyncpg.Connection, data: EventData, envelope: Envelope) -> None:
        await self.apply(conn, [(data, envelope)])


@dataclass
class DeadLetter:
    record: ConsumerRecord
    reason: str
    error: str


_GATHER_BYTES = 1024 * 1024  # more than a burst's fetch needs: a roster never waits


class ConsumerRunner:
    def __init__(
        self,
        *,
        name: str,
        pool: asyncpg.Pool,
        service: str | None = None,
        bootstrap: str,
        topics: Iterable[str],
        handlers: dict[str, Handler],
        producer: AIOKafkaProducer,
        dead_letter_topic: str,
        batch_size: int = 500,
        max_attempts: int = 3,
        backoff_seconds: float = 0.2,
        retry_budget_seconds: float = 5.0,
        linger_seconds: float = 0.01,
        commit_seconds: float = 0.5,
        gather_ms: int = 0,
    ) -> None:
        self.name = name
        self.service = service or name
        self.pool = pool
        self.topics = list(topics)
        self.handlers = handlers
        self.producer = producer
        self.dead_letter_topic = dead_letter_topic
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.retry_budget_seconds = retry_budget_seconds
        self.linger_seconds = linger_seconds
        self.commit_seconds = commit_seconds
        self.applied = 0
        self.dead_lettered = 0
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
            # The broker answers a fetch when it holds this much, or after gather_ms: a steady
            # stream (joins at hundreds a second) comes in fetches of several events instead of
            # one fetch, and one decode and one send of the next fetch, per event.
            fetch_min_bytes=_GATHER_BYTES if gather_ms else 1,
            fetch_max_wait_ms=gather_ms or 500,
        )
        self.consumer.subscribe(self.topics, listener=_CommitBeforeRevoking(self))
        # The next offset of each partition applied (committed in the database) but not yet
        # committed to Kafka, and when they are due.
        self._uncommitted: dict[TopicPartition, int] = {}
        self._commit_due = 0.0
        self._stopping = asyncio.Event()
        self.started = asyncio.Event()
        self._applied_counters: dict[str, Counter] = {}
        for topic in self.topics:  # at 0 from the start, so the first letter is an increase
            DEAD_LETTERS.labels(self.service, name, topic)
        self._lag = LagReport(self.service, name)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        settle_heap()
        await self.consumer.start()
        self.started.set()
        finished = 0.0  # when the last batch was done
        try:
            while not self._stopping.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=self.batch_size)
                if batches and time.monotonic() - finished < self.linger_seconds:
                    await self._linger(batches)
                if batches:
                    await self._process(batches)
                    finished = time.monotonic()
                if self._uncommitted and (not batches or finished >= self._commit_due):
                    await self.commit()
                await self._lag.report(self.consumer)
        finally:
            # Drain done: what was applied is committed before leaving the group cleanly (a
            # failure here only means the next member redelivers it to the inbox).
            try:
                await self.commit()
            except KafkaError as exc:
                log.warning("%s: offsets not committed at stop (%s)", self.name, exc)
            await self.consumer.stop()

    async def _linger(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Events arrived while the last batch was applied: a steady stream (online joins at
        hundreds a second), whose events would each cost a transaction of their own. Waiting a
        few milliseconds for more makes one batch of several; a lone event (nothing came during
        the last batch) and a full batch (a roster) go at once."""
        count = sum(len(part) for part in batches.values())
        if count >= self.batch_size:
            return
        await asyncio.sleep(self.linger_seconds)
        more = await self.consumer.getmany(timeout_ms=0, max_records=self.batch_size - count)
        for tp, part in more.items():  # each partition's later records after its earlier ones
            batches.setdefault(tp, []).extend(part)

    async def _process(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Apply what one fetch brought, every partition's records in one transaction (each
        partition's in their order; a key lives in one partition, so no subject's order changes),
        then note every partition's next offset for the next commit (:meth:`commit`)."""
        records = [record for part in batches.values() for record in part]
        delay = self.backoff_seconds
        while True:
            try:
                await self._apply_batch(records)
                break
            except _TRANSIENT as exc:
                log.warning(
                    "%s: database unavailable (%s); retrying in %.1fs", self.name, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
        if not self._uncommitted:
            self._commit_due = time.monotonic() + self.commit_seconds
        self._uncommitted.update({tp: part[-1].offset + 1 for tp, part in batches.items()})

    async def commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit the offsets applied since the last commit (of ``partitions`` only, if given)
        in one request."""
        if partitions is None:
            offsets, self._uncommitted = self._uncommitted, {}
        else:
            offsets = {
                tp: self._uncommitted.pop(tp) for tp in partitions if tp in self._uncommitted
            }
        held = self.consumer.assignment()
        # One the group has given to another member would fail the whole request.
        offsets = {tp: offset for tp, offset in offsets.items() if tp in held}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            # A partition moved to another member during a rebalance; it will redeliver from
            # the last commit and the inbox skips what we applied. Any other commit failure is
            # raised: the supervisor starts a new consumer rather than leave this one stopped.
            log.info("%s: commit for %s skipped after a rebalance", self.name, list(offsets))

    async def _apply_batch(self, records: list[ConsumerRecord]) -> None:
        try:
            readable = self._read(records)
        except Exception as exc:  # BadEvent: the careful path finds and dead-letters it
            log.debug("%s: batch needs the careful path (%s)", self.name, exc)
            readable = None
        if readable == []:
            return  # nothing this service follows: no transaction for nothing
        async with self.pool.acquire() as conn:
            if readable is not None:
                try:
                    applied = await self._apply_fast(conn, readable, alone=len(records) == 1)
                except _TRANSIENT:
                    raise
                except Exception as exc:
                    log.debug("%s: batch needs the careful path (%s)", self.name, exc)
                    applied = None
                if applied is not None:
                    for event_type, count in applied.items():
                        self._applied_counter(event_type).inc(count)
                    return
            budget = [self.retry_budget_seconds]  # seconds of retry waits left for this batch
            for record in records:
                await self._apply_one(conn, record, budget)

    def _read(self, records: list[ConsumerRecord]) -> list[Fresh]:
        """The batch's events this service follows, each with its handler and record; raises
        :class:`BadEvent` for one that cannot be read."""
        readable = []
        for record in records:
            envelope = Envelope.from_kafka(record.headers, record.value)
            handler = self.handlers.get(envelope.type)
            if handler is not None:
                readable.append((envelope, envelope.read(), handler, record))
        return readable

    async def _apply_fast(
        self, conn: asyncpg.Connection, readable: list[Fresh], alone: bool
    ) -> collections.Counter[str] | None:
        """How many events of each type the fast path applied (counted by the caller once
        committed), or None when the batch is better taken event by event (a lone event: the
        careful path costs it the same round trips)."""
        declared = _declared(readable)
        if declared is not None and declared.rest is None:
            return await self._apply_in_one_statement(conn, declared, readable)
        if declared is not None:
            async with conn.transaction():
                return await self._apply_in_one_statement(conn, declared, readable)
        if alone:
            return None
        async with conn.transaction():
            return await self._apply_together(conn, readable)

    async def _apply_in_one_statement(
        self, conn: asyncpg.Connection, handler: Batched, run: list[Fresh]
    ) -> collections.Counter[str]:
        """A batch that is one run of a declared :class:`Statement`: its inbox rows and the
        statement's effect in one statement, so one round trip (no transaction either when the
        statement is all: a lone online join's usual case); then the handler's ``rest``, if
        any, for the events not applied before."""
        assert handler.statement is not None
        first, _, _, where = run[0]
        events = [(data, envelope) for envelope, data, *_ in run]
        sql, arguments = handler.statement.composed(
            _INBOX_INSERT,
            events,
            self.name,
            [e.id for e, *_ in run],
            [e.type for e, *_ in run],
        )
        with self._span(where, first, len(run)):
            new = {r["event_id"] for r in await conn.fetch(sql, *arguments)}
            if handler.rest is not None and new:
                await handler.rest(conn, [(d, e) for d, e in events if e.id in new])
        self.applied += len(new)
        return collections.Counter(e.type for e, *_ in run if e.id in new)

    async def _apply_together(
        self, conn: asyncpg.Connection, readable: list[Fresh]
    ) -> collections.Counter[str]:
        """The fast path: one inbox insert for the batch, handlers back to back, no savepoints;
        how many events of each type it applied (counted by the caller once committed).

        Any failing handler raises, the batch's transaction rolls back (inbox rows included),
        and the careful path takes the batch event by event.
        """
        applied: collections.Counter[str] = collections.Counter()
        rows = await conn.fetch(
            _INBOX_INSERT.format("$1", "$2", "$3"),
            self.name,
            [e.id for e, *_ in readable],
            [e.type for e, *_ in readable],
        )
        new = {r["event_id"] for r in rows}
        fresh: list[Fresh] = []
        for item in readable:
            if item[0].id in new:  # else applied before (a redelivery), or twice in this batch
                new.discard(item[0].id)
                fresh.append(item)
        for run in _runs(fresh):
            first, _, handler, where = run[0]
            applied.update(e.type for e, *_ in run)
            if isinstance(handler, Batched):
                # One span for the run, in the first event's trace: a span per event would cost
                # more than applying it.
                with self._span(where, first, len(run)):
                    await handler.apply(conn, [(data, envelope) for envelope, data, *_ in run])
                continue
            for envelope, data, handler, record in run:
                with self._span(record, envelope):
                    await handler(conn, data, envelope)
        self.applied += len(fresh)  # counted only once the whole batch went through
        return applied

    async def _apply_one(
        self, conn: asyncpg.Connection, record: ConsumerRecord, budget: list[float]
    ) -> None:
        """Apply one event in its own transaction, retrying while the batch's budget lasts."""
        try:
            envelope = Envelope.from_kafka(record.headers, record.value)
        except BadEvent as exc:
            await self._dead_letter(conn, DeadLetter(record, "unreadable", str(exc)))
            return
        handler = self.handlers.get(envelope.type)
        if handler is None:
            return  # an event this service does not follow: nothing to do
        try:
            data = envelope.read()
        except BadEvent as exc:
            await self._dead_letter(conn, DeadLetter(record, "bad_data", str(exc)), envelope)
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._span(record, envelope, offset=record.offset):
                    async with conn.transaction():
                        if not await self._remember(conn, record, "applied", envelope):
                            return  # already applied: a redelivery
                        await handler(conn, data, envelope)
                self.applied += 1
                self._applied_counter(envelope.type).inc()
                return
            except _TRANSIENT:
                raise
            except Exception as exc:
                wait = self.backoff_seconds * attempt
                if attempt >= self.max_attempts or budget[0] < wait:
                    error = f"{type(exc).__name__}: {exc}"
                    await self._dead_letter(
                        conn, DeadLetter(record, "handler_failed", error), envelope
                    )
                    return
                budget[0] -= wait
                await asyncio.sleep(wait)  # outside any transaction: no locks held meanwhile

    async def _remember(
        self,
        conn: asyncpg.Connection,
        record: ConsumerRecord,
        outcome: str,
        envelope: Envelope | None = None,
    ) -> bool:
        inserted = await conn.fetchval(
            "INSERT INTO inbox (consumer, event_id, event_type, outcome) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING RETURNING true",
            self.name,
            _inbox_id(record, envelope),
            envelope.type if envelope else "unreadable",
            outcome,
        )
        return bool(inserted)

    def _applied_counter(self, event_type: str) -> Counter:
        counter = self._applied_counters.get(event_type)
        if counter is None:
            counter = self._applied_counters[event_type] = EVENTS_APPLIED.labels(
                self.service, self.name, event_type
            )
        return counter

    def _span(
        self, record: ConsumerRecord, envelope: Envelope, count: int = 1, offset: int | None = None
    ) -> AbstractContextManager[trace.Span]:
        return trace.use_span(
            process_span(
                envelope.trace_headers,
                topic=record.topic,
                partition=record.partition,
                group=self.name,
                message_id=envelope.id,
                offset=offset,
                count=count,
            ),
            end_on_exit=True,
        )

    async def _dead_letter(
        self, conn: asyncpg.Connection, letter: DeadLetter, envelope: Envelope | None = None
    ) -> None:
        """Send the letter, then record the event as handled: Kafka's ack comes first."""
        r = letter.record
        if await conn.fetchval(
            "SELECT true FROM inbox WHERE consumer = $1 AND event_id = $2",
            self.name,
            _inbox_id(r, envelope),
        ):
            return  # dead-lettered (or applied) before this redelivery
        headers = [
            *(r.headers or []),
            ("dlq_reason", letter.reason.encode()),
            ("dlq_error", letter.error[:2000].encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_topic", r.topic.encode()),
            ("dlq_partition", str(r.partition).encode()),
            ("dlq_offset", str(r.offset).encode()),
        ]
        delay = self.backoff_seconds
        while True:
            try:
                await self.producer.send_and_wait(
                    self.dead_letter_topic, value=r.value, key=r.key, headers=headers
                )
                break
            except KafkaError as exc:  # never move past an event that is neither applied nor kept
                log.warning("%s: dead-letter send failed (%s); retrying", self.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
        async with conn.transaction():
            await self._remember(conn, r, "dead_lettered", envelope)
        self.dead_lettered += 1
        DEAD_LETTERS.labels(self.service, self.name, r.topic).inc()
        log.warning(
            "%s: dead-lettered %s@%s:%s: %s",
            self.name,
            r.topic,
            r.partition,
            r.offset,
            letter.error,
        )


class _CommitBeforeRevoking(ConsumerRebalanceListener):
    """A partition given to another member is committed first, so it does not start again
    from an offset older than what this one applied (aiokafka calls this once fetching has
    stopped, before the group rebalances)."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        try:
            await self.runner.commit(revoked)
        except KafkaError as exc:  # the new owner redelivers to the inbox: nothing lost
            log.warning("%s: offsets not committed before a rebalance (%s)", self.runner.name, exc)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass


def settle_heap() -> None:
    """Spare the collector what start-up built. Everything imported and configured by now
    (modules, pydantic's validators, the app) lives as long as the process, yet each full
    collection walked all of it again, and a batch's garbage set one off every few batches:
    about a quarter of a consumer's CPU per event. Frozen, they are never walked again; a young
    collection every 20,000 new objects instead of 700 costs a batch a few, not hundreds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)


def _inbox_id(record: ConsumerRecord, envelope: Envelope | None) -> str:
    """The inbox key of an event: its CloudEvents id, or where it sat when it has none."""
    if envelope is not None:
        return envelope.id
    return _header(record, "ce_id") or f"{record.topic}:{record.partition}:{record.offset}"


# The batch's events in the inbox, answering those not there before ({0}-{2}: the consumer,
# the event ids, their types).
_INBOX_INSERT = (
    "INSERT INTO inbox (consumer, event_id, event_type)"
    " SELECT {0}, e, t FROM unnest({1}::text[], {2}::text[]) AS x(e, t)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


def _declared(readable: list[Fresh]) -> Batched | None:
    """The handler whose :class:`Statement` starts the whole batch, if it is one run of one
    (each event once: its inbox row and its effect are written by the same statement)."""
    handler = readable[0][2]
    if not isinstance(handler, Batched) or handler.statement is None:
        return None
    if handler.statement.most is not None and len(readable) > handler.statement.most:
        return None
    runs = _runs(readable)
    if len(next(runs)) != len(readable) or len({e.id for e, *_ in readable}) != len(readable):
        return None
    return handler


def _runs(fresh: list[Fresh]) -> Iterator[list[Fresh]]:
    """The batch cut where the handler changes and, unless it is ``independent``, where the type
    changes or a subject comes again (see :class:`Batched`)."""
    run: list[Fresh] = []
    subjects: set[str] = set()
    for item in fresh:
        envelope, _, handler, _ = item
        if run and _ends(run, subjects, envelope, handler):
            yield run
            run, subjects = [], set()
        run.append(item)
        subjects.add(envelope.subject)
    if run:
        yield run


def _ends(run: list[Fresh], subjects: set[str], envelope: Envelope, handler: Handler) -> bool:
    first, _, first_handler, _ = run[0]
    if handler is not first_handler:
        return True
    if isinstance(handler, Batched) and handler.independent:
        return False
    return envelope.type != first.type or envelope.subject in subjects


class LagReport:
    """``gonghui_consumer_lag`` of the partitions a consumer holds, from what it already knows:
    its position and the highwater of its last fetch (no request to the broker). At most once a
    second; a partition given to another consumer in a rebalance is dropped."""

    def __init__(self, service: str, group: str, every: float = 1.0) -> None:
        self.service = service
        self.group = group
        self.every = every
        self._due = 0.0
        self._reported: set[TopicPartition] = set()

    async def report(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self.every
        held = consumer.assignment()
        for tp in self._reported - held:
            forget(CONSUMER_LAG, self.service, self.group, tp.topic, str(tp.partition))
        self._reported &= held
        for tp in held:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue  # not fetched yet; then its position is known without asking too
            lag = max(highwater - await consumer.position(tp), 0)
            CONSUMER_LAG.labels(self.service, self.group, tp.topic, str(tp.partition)).set(lag)
            self._reported.add(tp)


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or []:
        if key == name:
            return value.decode(errors="replace")
    return None
