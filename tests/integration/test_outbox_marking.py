"""The relay marks exactly the rows it sent: an outbox id taken by a transaction that commits
after the relay's read stays unpublished, and goes out in the next batch."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared import backbone_schema, outbox
from shared.db import connect, create_pool
from shared.events.membership import MemberLeft
from shared.kafka import ensure_topics, idempotent_producer
from shared.outbox import Relay
from tests.support.database import ScratchDatabase

pytestmark = pytest.mark.integration


def left(member_id: str) -> MemberLeft:
    return MemberLeft(member_id=member_id, left_on=date(2026, 3, 2), reason="retired")


@pytest.fixture
async def schema(database: ScratchDatabase) -> AsyncIterator[str]:
    name = f"marking_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database.admin_dsn)
    await admin.execute(f"CREATE SCHEMA {name}")
    await admin.execute(f"SET search_path TO {name}")
    await admin.execute("".join(backbone_schema.STEPS))
    await admin.close()
    yield name


@dataclass
class Outbox:
    """The schema's outbox: a topic, a pool, a started producer and the relay's connection."""

    dsn: str
    schema: str
    topic: str
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    relay_conn: asyncpg.Connection

    async def unsent(self) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT key FROM outbox WHERE published_at IS NULL ORDER BY id"
        )
        return [r["key"] for r in rows]


@pytest.fixture
async def box(
    database: ScratchDatabase, servers, namespace: str, schema: str
) -> AsyncIterator[Outbox]:
    topic = f"{namespace}marking.events"
    await ensure_topics(servers.kafka_bootstrap, {topic: 3})
    pool = await create_pool(database.admin_dsn, schema)
    producer = idempotent_producer(servers.kafka_bootstrap)
    await producer.start()
    relay_conn = await connect(database.admin_dsn, schema)
    try:
        yield Outbox(database.admin_dsn, schema, topic, pool, producer, relay_conn)
    finally:
        await relay_conn.close()
        await producer.stop()
        await pool.close()


async def test_a_row_committed_after_the_read_is_not_marked_with_the_batch(box: Outbox) -> None:
    topic, pool, producer, relay_conn = box.topic, box.pool, box.producer, box.relay_conn
    async with pool.acquire() as conn, conn.transaction():
        await outbox.record(conn, topic, [left("m-1"), left("m-2")])
    late = await pool.acquire()
    late_tx = late.transaction()
    await late_tx.start()
    await outbox.record(late, topic, [left("m-late")])  # takes the next id, uncommitted
    async with pool.acquire() as conn, conn.transaction():
        await outbox.record(conn, topic, [left("m-3")])

    class CommitBeforeTheMark(Relay):
        async def mark_published(self, conn: asyncpg.Connection, ids: list[int]) -> None:
            await late_tx.commit()  # between the relay's read and its mark
            await super().mark_published(conn, ids)

    relay: Relay = CommitBeforeTheMark(box.dsn, box.schema, producer)
    assert await relay.publish_batch(relay_conn) == 3
    await pool.release(late)
    relay = Relay(box.dsn, box.schema, producer)
    assert await box.unsent() == ["m-late"]

    assert await relay.publish_batch(relay_conn) == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_the_leading_relay_marks_a_batch_with_its_next_read(box: Outbox) -> None:
    relay = Relay(box.dsn, box.schema, box.producer)
    async with box.pool.acquire() as conn, conn.transaction():
        await outbox.record(conn, box.topic, [left("m-1"), left("m-2")])
    assert await relay.publish_batch(box.relay_conn, mark_later=True) == 2
    assert await box.unsent() == ["m-1", "m-2"]  # sent, and marked with the next read
    async with box.pool.acquire() as conn, conn.transaction():
        await outbox.record(conn, box.topic, [left("m-3")])
    assert await relay.publish_batch(box.relay_conn, mark_later=True) == 1  # m-3 alone
    assert await box.unsent() == ["m-3"]
    assert await relay.publish_batch(box.relay_conn, mark_later=True) == 0
    assert await box.unsent() == []
