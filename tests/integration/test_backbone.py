"""The event backbone against the real broker and database: outbox, relay, inbox, dead letters,
order, tracing. Each test works in a schema and topic namespace of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from opentelemetry import trace

from shared import outbox
from shared.consumer import ConsumerRunner
from shared.db import connect, create_pool
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined
from shared.kafka import ensure_topics, idempotent_producer
from shared.outbox import Relay
from shared.telemetry import setup_tracing
from shared.uow import UnitOfWork
from tests.support.database import ScratchDatabase

pytestmark = pytest.mark.integration


def joined(member_id: str, name: str = "张三") -> MemberJoined:
    return MemberJoined(
        member_id=member_id,
        name=name,
        union_id="u1",
        union_path=["city", "u1"],
        channel="online",
        categories=[],
        joined_on=date(2026, 1, 5),
        card_number="GH0000000001",
        sex="M",
        birth_date=date(1990, 1, 1),
    )


@dataclass
class Probe:
    """A throwaway service: its own schema with outbox, inbox and a table the handler writes."""

    schema: str
    dsn: str
    pool: asyncpg.Pool
    topic: str
    dlq: str
    bootstrap: str

    async def notes(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT member_id, name, trace_id FROM notes ORDER BY seq")


@pytest.fixture
async def probe(database: ScratchDatabase, namespace: str, servers) -> AsyncIterator[Probe]:
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database.admin_dsn)
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.execute(f"SET search_path TO {schema}")
    await admin.execute(outbox.DDL)
    await admin.execute(
        "CREATE TABLE notes (seq bigserial, member_id text, name text, trace_id text)"
    )
    await admin.close()
    dsn = database.admin_dsn
    pool = await create_pool(dsn, schema)
    topic, dlq = f"{namespace}probe.events", f"{namespace}probe.dlq"
    await ensure_topics(servers.kafka_bootstrap, {topic: 3, dlq: 1})
    yield Probe(schema, dsn, pool, topic, dlq, servers.kafka_bootstrap)
    await pool.close()


async def note(conn: asyncpg.Connection, data: EventData, envelope: Envelope) -> None:
    assert isinstance(data, MemberJoined)
    span = trace.get_current_span().get_span_context()
    await conn.execute(
        "INSERT INTO notes (member_id, name, trace_id) VALUES ($1, $2, $3)",
        data.member_id,
        data.name,
        format(span.trace_id, "032x"),
    )


class Running:
    """Runs a relay and a consumer for a probe until the block ends."""

    def __init__(self, probe: Probe, *, relay: Relay | None = None, group: str | None = None):
        self.probe = probe
        self.producer = idempotent_producer(probe.bootstrap)
        self.relay = relay
        self.group = group or f"{probe.topic}.consumer"
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Running:
        await self.producer.start()
        if self.relay is None:
            self.relay = Relay(self.probe.dsn, self.probe.schema, self.producer, poll_seconds=0.2)
        self.consumer = ConsumerRunner(
            name=self.group,
            pool=self.probe.pool,
            bootstrap=self.probe.bootstrap,
            topics=[self.probe.topic],
            handlers={MemberJoined.type: note},
            producer=self.producer,
            dead_letter_topic=self.probe.dlq,
            backoff_seconds=0.01,
        )
        self.tasks = [
            asyncio.create_task(self.relay.run()),
            asyncio.create_task(self.consumer.run()),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.relay is not None
        self.relay.stop()
        self.consumer.stop()
        await asyncio.gather(*self.tasks)
        await self.producer.stop()


async def eventually(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s; last value {result!r}")
        await asyncio.sleep(0.1)


async def test_change_and_event_commit_together_or_not_at_all(probe: Probe) -> None:
    async with UnitOfWork(probe.pool, probe.topic) as uow:
        await uow.conn.execute("INSERT INTO notes (member_id) VALUES ('kept')")
        uow.publish(joined("kept"))
        await uow.commit()
    with pytest.raises(RuntimeError):
        async with UnitOfWork(probe.pool, probe.topic) as uow:
            await uow.conn.execute("INSERT INTO notes (member_id) VALUES ('lost')")
            await outbox.record(uow.conn, probe.topic, [joined("lost")])
            raise RuntimeError("the request failed after its event was written")
    assert [r["member_id"] for r in await probe.notes()] == ["kept"]
    keys = await probe.pool.fetch("SELECT key FROM outbox")
    assert [r["key"] for r in keys] == ["kept"]


async def test_relay_crash_after_ack_republishes_and_consumer_applies_once(probe: Probe) -> None:
    class CrashAfterAck(Relay):
        async def mark_published(self, conn: asyncpg.Connection, ids: list[int]) -> None:
            raise asyncpg.PostgresConnectionError("relay killed after the broker's ack")

    async with UnitOfWork(probe.pool, probe.topic) as uow:
        uow.publish(joined("m1"), joined("m2"))
        await uow.commit()

    producer = idempotent_producer(probe.bootstrap)
    await producer.start()
    crashing = CrashAfterAck(probe.dsn, probe.schema, producer)
    conn = await connect(probe.dsn, probe.schema)
    with pytest.raises(asyncpg.PostgresConnectionError):
        await crashing.publish_batch(conn)
    await conn.close()
    await producer.stop()
    assert await probe.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 2

    async with Running(probe):
        await eventually(
            lambda: probe.pool.fetchval(
                "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"
            )
        )
        await eventually(lambda: probe.pool.fetchval("SELECT count(*) = 2 FROM inbox"))
        await asyncio.sleep(1.0)  # time for the second copies to arrive and be skipped
    assert await count_messages(probe.bootstrap, probe.topic) == 4  # each event published twice
    assert sorted(r["member_id"] for r in await probe.notes()) == ["m1", "m2"]  # applied once


async def test_duplicated_delivery_is_applied_once(probe: Probe) -> None:
    envelope = Envelope.wrap(joined("dup"))
    producer = idempotent_producer(probe.bootstrap)
    await producer.start()
    for _ in range(3):
        await producer.send_and_wait(
            probe.topic, envelope.data, key=b"dup", headers=envelope.kafka_headers()
        )
    await producer.stop()
    async with Running(probe) as running:
        await eventually(lambda: asyncio.sleep(0, running.consumer.applied >= 1))
        await asyncio.sleep(1.0)
    assert [r["member_id"] for r in await probe.notes()] == ["dup"]


async def test_poison_message_goes_to_dead_letter_and_the_next_is_processed(probe: Probe) -> None:
    good = Envelope.wrap(joined("after-poison"))
    bad_data = Envelope.wrap(joined("bad"))
    bad_data.data = b'{"member_id": "bad"}'  # required fields missing
    producer = idempotent_producer(probe.bootstrap)
    await producer.start()
    await producer.send_and_wait(probe.topic, b"not json at all", key=b"k", headers=[])
    await producer.send_and_wait(
        probe.topic, bad_data.data, key=b"k", headers=bad_data.kafka_headers()
    )
    await producer.send_and_wait(probe.topic, good.data, key=b"k", headers=good.kafka_headers())
    await producer.stop()
    async with Running(probe):
        await eventually(lambda: probe.notes())
    assert [r["member_id"] for r in await probe.notes()] == ["after-poison"]
    letters = await read_all(probe.bootstrap, probe.dlq, expected=2)
    reasons = [dict(m.headers)["dlq_reason"].decode() for m in letters]
    assert reasons == ["unreadable", "bad_data"]
    assert "missing headers" in dict(letters[0].headers)["dlq_error"].decode()
    assert "MemberJoined" in dict(letters[1].headers)["dlq_error"].decode() or "member.joined" in (
        dict(letters[1].headers)["dlq_error"].decode()
    )


async def test_a_handler_that_keeps_failing_is_dead_lettered_without_stalling(probe: Probe) -> None:
    async def refuse_one(conn: asyncpg.Connection, data: EventData, envelope: Envelope) -> None:
        assert isinstance(data, MemberJoined)
        if data.member_id == "cursed":
            raise ValueError("cannot apply this member")
        await note(conn, data, envelope)

    async with UnitOfWork(probe.pool, probe.topic) as uow:
        uow.publish(joined("cursed"), joined("fine"))
        await uow.commit()
    async with Running(probe) as running:
        running.consumer.handlers[MemberJoined.type] = refuse_one
        await eventually(lambda: probe.notes())
    assert [r["member_id"] for r in await probe.notes()] == ["fine"]
    letters = await read_all(probe.bootstrap, probe.dlq, expected=1)
    headers = dict(letters[0].headers)
    assert headers["dlq_reason"] == b"handler_failed"
    assert b"cannot apply this member" in headers["dlq_error"]


async def test_per_key_order_holds_across_batches(probe: Probe) -> None:
    members = [f"m{i}" for i in range(5)]
    async with UnitOfWork(probe.pool, probe.topic) as uow:
        for seq in range(200):
            uow.publish(joined(members[seq % 5], name=str(seq)))
        await uow.commit()
    async with Running(probe):
        await eventually(lambda: probe.pool.fetchval("SELECT count(*) = 200 FROM notes"))
    seen: dict[str, list[int]] = {}
    for r in await probe.notes():
        seen.setdefault(r["member_id"], []).append(int(r["name"]))
    assert set(seen) == set(members)
    for sequence in seen.values():
        assert sequence == sorted(sequence) and len(sequence) == 40


async def test_one_trace_spans_request_outbox_kafka_and_consumer(probe: Probe) -> None:
    setup_tracing("test", "off", "")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /members") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        async with UnitOfWork(probe.pool, probe.topic) as uow:
            uow.publish(joined("traced"))
            await uow.commit()
    async with Running(probe):
        await eventually(lambda: probe.notes())
    assert [r["trace_id"] for r in await probe.notes()] == [trace_id]


async def test_each_service_role_reaches_only_its_own_schema(database: ScratchDatabase) -> None:
    conn = await asyncpg.connect(database.dsn("training"))
    await conn.execute("CREATE TABLE training.private_note (x int)")
    await conn.close()
    conn = await asyncpg.connect(database.dsn("membership"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM training.private_note")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.stray (x int)")
        await conn.execute("CREATE TABLE membership.own_note (x int)")
        await conn.execute("DROP TABLE membership.own_note")
    finally:
        await conn.close()


async def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list:  # type: ignore[type-arg]
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(records)
    finally:
        await consumer.stop()
    return sorted(found, key=lambda m: (m.partition, m.offset))


async def count_messages(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        ends = await consumer.end_offsets(parts)
        return sum(ends.values())
    finally:
        await consumer.stop()
