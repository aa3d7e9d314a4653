"""What the consumer adds to a fetch while events stream in (``ConsumerRunner._linger``)."""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from shared.consumer import ConsumerRunner

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


def record(tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, None, None, 0, 0, [])


class Fetches:
    """Stands in for the Kafka consumer: answers each getmany with the next of its fetches."""

    def __init__(self, *fetches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]):
        self.fetches = list(fetches)
        self.asked: list[int] = []

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        assert max_records is not None
        self.asked.append(max_records)
        return self.fetches.pop(0) if self.fetches else {}


async def runner(fetches: Fetches, batch_size: int) -> ConsumerRunner:
    made = ConsumerRunner(
        name="linger",
        pool=None,  # _linger never touches the database
        bootstrap="localhost:9092",
        topics=["t"],
        handlers={},
        producer=None,
        dead_letter_topic="t.dlq",
        batch_size=batch_size,
        linger_seconds=0.0,
    )
    made.consumer = fetches
    return made


def offsets(batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> Any:
    return {tp.partition: [r.offset for r in part] for tp, part in batches.items()}


async def test_what_came_meanwhile_joins_the_batch_after_each_partitions_earlier_records() -> None:
    fetches = Fetches({P0: [record(P0, 7)], P1: [record(P1, 3)]})
    consumer = await runner(fetches, batch_size=10)
    batches = {P0: [record(P0, 5), record(P0, 6)]}
    await consumer._linger(batches)
    assert offsets(batches) == {0: [5, 6, 7], 1: [3]}
    assert fetches.asked == [8]  # never more than the batch size in all


async def test_a_full_batch_goes_at_once() -> None:
    fetches = Fetches({P0: [record(P0, 2)]})
    consumer = await runner(fetches, batch_size=2)
    batches = {P0: [record(P0, 0), record(P0, 1)]}
    await consumer._linger(batches)
    assert offsets(batches) == {0: [0, 1]}
    assert fetches.asked == []
