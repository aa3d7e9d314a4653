"""deploy.replay_dead_letters sends a dead letter back to its topic, clears the inbox row that
would make the consumer skip it, and never replays the same letter twice."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deploy.replay_dead_letters import replay
from services.membership.main import Settings
from shared.kafka import ensure_topics
from shared.migrations import upgrade_async
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers
from tests.support.service import settings_for


async def test_a_dead_letter_goes_back_to_its_topic_once(
    database: ScratchDatabase, servers: Servers, namespace: str
) -> None:
    settings = settings_for(Settings, database, servers, namespace)
    await upgrade_async("membership", settings.database_url, settings.db_schema)
    await ensure_topics(
        settings.kafka_bootstrap, {settings.events_topic: 1, settings.dead_letter_topic: 1}
    )
    consumer_name = f"{namespace}membership"
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute(f"SET search_path = {settings.db_schema}")
    await conn.execute(
        "INSERT INTO inbox (consumer, event_id, event_type, outcome)"
        " VALUES ($1, 'event-1', 'MemberJoined', 'dead_lettered'),"
        " ($1, 'event-2', 'MemberJoined', 'applied')",
        consumer_name,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    await producer.send_and_wait(
        settings.dead_letter_topic,
        value=b'{"member_id": "m1"}',
        key=b"m1",
        headers=[
            ("ce_id", b"event-1"),
            ("ce_type", b"MemberJoined"),
            ("dlq_reason", b"handler_failed"),
            ("dlq_error", b"boom"),
            ("dlq_consumer", consumer_name.encode()),
            ("dlq_topic", settings.events_topic.encode()),
            ("dlq_partition", b"0"),
            ("dlq_offset", b"7"),
        ],
    )
    await producer.stop()

    listed = await replay(settings, dry_run=True)
    assert [letter.inbox_id for letter in listed] == ["event-1"]
    # The run's scratch database is shared: only this test's consumer's rows are its own.
    mine = "SELECT event_id FROM inbox WHERE consumer = $1 ORDER BY event_id"
    assert await conn.fetch(mine, consumer_name) == [("event-1",), ("event-2",)]  # a dry run

    replayed = await replay(settings)
    assert [letter.inbox_id for letter in replayed] == ["event-1"]
    assert await conn.fetch(mine, consumer_name) == [("event-2",)]
    events = AIOKafkaConsumer(
        settings.events_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
    )
    await events.start()
    try:
        record = await events.getone()
    finally:
        await events.stop()
    assert (record.key, record.value) == (b"m1", b'{"member_id": "m1"}')
    assert dict(record.headers) == {"ce_id": b"event-1", "ce_type": b"MemberJoined"}

    assert await replay(settings) == []  # the letter was replayed once, and only once
    await conn.close()
