"""Send a service's dead letters back to the topics they came from:
``python -m deploy.replay_dead_letters <service> [--dry-run]``.

Run it with the service's own environment (``GONGHUI_<SERVICE>_DATABASE_URL``, ``_KAFKA_BOOTSTRAP``,
``_TOPIC_NAMESPACE``), once the cause is fixed and deployed. Each letter (shared/consumer.py puts
the failed event there unchanged, with ``dlq_*`` headers saying where it came from and why) is
replayed in two steps: the consumer's inbox row that marked it dead-lettered is deleted, then the
event goes back to its topic with its own headers. The consumer then applies it like a new event;
every other group of that topic has it in its inbox already and skips it. In that order a crash
between the steps loses nothing: the letter is still in the dead-letter topic for the next run.

The tool reads the dead-letter topic as the consumer group ``<namespace><service>.dlq-replay``
and commits after each letter, so a run replays only letters no run has replayed, and stops at
the end the topic had when it started.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.consumer import _header  # read as the consumer that wrote them
from shared.db import connect
from shared.kafka import bootstrap_servers, idempotent_producer
from shared.settings import ServiceSettings

SERVICES = ("membership", "mutual_aid", "training", "notifications", "union_funds")
DLQ_PREFIX = "dlq_"  # the headers shared.consumer adds to a dead letter


@dataclass(frozen=True)
class Letter:
    record: ConsumerRecord

    def header(self, name: str) -> str | None:
        return _header(self.record, name)

    @property
    def topic(self) -> str:
        topic = self.header("dlq_topic")
        if not topic:
            raise ValueError(f"dead letter at offset {self.record.offset} names no topic")
        return topic

    @property
    def inbox_id(self) -> str:
        """As shared.consumer keys it: the event's id, or where it sat when it had none."""
        where = f"{self.topic}:{self.header('dlq_partition')}:{self.header('dlq_offset')}"
        return self.header("ce_id") or where

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, bytes(v)) for k, v in self.record.headers or () if not k.startswith(DLQ_PREFIX)]

    def describe(self) -> str:
        return (
            f"{self.inbox_id} -> {self.topic} ({self.header('dlq_reason')}:"
            f" {self.header('dlq_error')})"
        )


async def replay(settings: ServiceSettings, *, dry_run: bool = False) -> list[Letter]:
    """Replay the letters not replayed yet; returns them (with ``dry_run``: only lists them)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings.kafka_bootstrap),
        group_id=f"{settings.dead_letter_topic}-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = idempotent_producer(settings.kafka_bootstrap)
    conn: asyncpg.Connection = await connect(settings.database_url, settings.db_schema)
    await consumer.start()
    await producer.start()
    done: list[Letter] = []
    try:
        partitions = [
            TopicPartition(settings.dead_letter_topic, p)
            for p in sorted(await producer.partitions_for(settings.dead_letter_topic))
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=100)
                for record in batch.get(tp, []):
                    letter = Letter(record)
                    done.append(letter)
                    if dry_run:
                        continue
                    await conn.execute(
                        "DELETE FROM inbox WHERE consumer = $1 AND event_id = $2"
                        " AND outcome = 'dead_lettered'",
                        letter.header("dlq_consumer"),
                        letter.inbox_id,
                    )
                    await producer.send_and_wait(
                        letter.topic,
                        value=record.value,
                        key=record.key,
                        headers=letter.original_headers,
                    )
                    await consumer.commit({tp: record.offset + 1})
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--dry-run", action="store_true", help="list the letters, change nothing")
    args = parser.parse_args(argv)
    settings = importlib.import_module(f"services.{args.service}.main").Settings()
    letters = asyncio.run(replay(settings, dry_run=args.dry_run))
    for letter in letters:
        print(("would replay " if args.dry_run else "replayed ") + letter.describe())
    print(f"{len(letters)} dead letter(s) {'to replay' if args.dry_run else 'replayed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
