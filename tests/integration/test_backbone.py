"""The event backbone against the real broker and database: outbox, relay, inbox, dead letters,
order, tracing. Each test works in a schema and topic namespace of its own."""

from __future__ import annotations

import asyncpg
import pytest
from opentelemetry import trace

from shared import outbox
from shared.db import connect
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined
from shared.kafka import idempotent_producer
from shared.outbox import Relay
from shared.telemetry import setup_tracing
from shared.uow import UnitOfWork
from tests.support.backbone import Probe, Running, count_messages, joined, note, read_all
from tests.support.database import ScratchDatabase
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


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

    async with Running(probe) as running:
        await eventually(
            lambda: probe.pool.fetchval(
                "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"
            )
        )
        await eventually(lambda: probe.pool.fetchval("SELECT count(*) = 2 FROM inbox"))
        await running.caught_up()  # the second copies arrived and were skipped
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
        await running.caught_up()
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
