"""A throwaway service for testing the event backbone: its own schema with outbox, inbox and a
table the handler writes, its own topics, and a relay and consumer run for a block."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry import trace

from shared import backbone_schema
from shared.consumer import ConsumerRunner, Handler
from shared.db import connect, create_pool
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined
from shared.kafka import ensure_topics, idempotent_producer
from shared.outbox import Relay
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers
from tests.support.waiting import caught_up, eventually


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

    def __init__(
        self,
        probe: Probe,
        *,
        relay: Relay | None = None,
        group: str | None = None,
        handler: Handler | None = None,
        **consumer_options: Any,
    ):
        self.probe = probe
        self.handler = handler or note
        self.consumer_options = consumer_options
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
            handlers={MemberJoined.type: self.handler},
            producer=self.producer,
            dead_letter_topic=self.probe.dlq,
            **({"backoff_seconds": 0.01} | self.consumer_options),
        )
        self.tasks = [
            asyncio.create_task(self.relay.run()),
            asyncio.create_task(self.consumer.run()),
        ]
        return self

    async def caught_up(self, timeout: float = 30.0) -> None:
        """Everything in the outbox so far is published, applied and its offsets committed."""
        await eventually(
            lambda: self.probe.pool.fetchval(
                "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"
            ),
            timeout,
        )
        await caught_up(self.probe.bootstrap, self.group, [self.probe.topic], timeout)

    async def __aexit__(self, *exc: object) -> None:
        assert self.relay is not None
        self.relay.stop()
        self.consumer.stop()
        await asyncio.gather(*self.tasks)
        await self.producer.stop()


async def backbone_probe(
    database: ScratchDatabase, namespace: str, servers: Servers
) -> AsyncIterator[Probe]:
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database.admin_dsn)
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.execute(f"SET search_path TO {schema}")
    await admin.execute("".join(backbone_schema.STEPS))
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


async def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list[Any]:
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
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        ends = await consumer.end_offsets(parts)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def relay_once(probe: Probe) -> None:
    """Publish what the probe's outbox holds, once, without a running relay."""
    producer = idempotent_producer(probe.bootstrap)
    await producer.start()
    conn = await connect(probe.dsn, probe.schema)
    try:
        await Relay(probe.dsn, probe.schema, producer).publish_batch(conn)
    finally:
        await conn.close()
        await producer.stop()
