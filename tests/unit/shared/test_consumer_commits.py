"""When the consumer commits its offsets to Kafka (``ConsumerRunner.commit``): not after every
batch, but once a while, after a poll that brought nothing, before a partition is revoked and
at stop; only what the database has applied, and only partitions it still holds."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from shared import consumer as module
from shared.consumer import ConsumerRunner

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)
Fetch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def record(tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, None, None, 0, 0, [])


class Kafka:
    """Stands in for the Kafka consumer: answers each getmany with the next fetch (an empty one
    is an idle poll) and stops the runner after the last; records every commit."""

    def __init__(self, runner: ConsumerRunner, *fetches: Fetch) -> None:
        self.runner = runner
        self.fetches = list(fetches)
        self.commits: list[dict[int, int]] = []
        self.held = {P0, P1}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Fetch:
        if not self.fetches:
            self.runner.stop()
            return {}
        return self.fetches.pop(0)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append({tp.partition: offset for tp, offset in offsets.items()})

    def assignment(self) -> set[TopicPartition]:
        return self.held

    def highwater(self, tp: TopicPartition) -> None:
        return None


@pytest.fixture
async def runner(monkeypatch: pytest.MonkeyPatch) -> ConsumerRunner:
    monkeypatch.setattr(module, "settle_heap", lambda: None)  # not this test process's heap
    made = ConsumerRunner(
        name="commits",
        pool=None,  # the database is stood in for below
        bootstrap="localhost:9092",
        topics=["t"],
        handlers={},
        producer=None,
        dead_letter_topic="t.dlq",
        linger_seconds=0.0,
        commit_seconds=3600.0,
    )

    async def applied(records: Any) -> None:
        pass

    monkeypatch.setattr(made, "_apply_batch", applied)
    return made


def kafka(runner: ConsumerRunner, *fetches: Fetch) -> Kafka:
    stand_in = Kafka(runner, *fetches)
    runner.consumer = stand_in
    return stand_in


async def test_batches_back_to_back_are_committed_together_after_an_idle_poll(
    runner: ConsumerRunner,
) -> None:
    broker = kafka(
        runner,
        {P0: [record(P0, 0), record(P0, 1)]},
        {P1: [record(P1, 4)]},
        {P0: [record(P0, 2)]},
        {},  # nothing came: what was applied is committed now
        {P1: [record(P1, 5)]},
    )
    await runner.run()
    assert broker.commits == [{0: 3, 1: 5}, {1: 6}]  # the last one at stop


async def test_offsets_are_committed_once_they_are_due(runner: ConsumerRunner) -> None:
    runner.commit_seconds = 0.0
    broker = kafka(runner, {P0: [record(P0, 0)]}, {P0: [record(P0, 1)]})
    await runner.run()
    assert broker.commits == [{0: 1}, {0: 2}]


async def test_a_revoked_partition_is_committed_before_it_goes_and_only_it(
    runner: ConsumerRunner,
) -> None:
    broker = kafka(runner)
    await runner._process({P0: [record(P0, 7)], P1: [record(P1, 2)]})
    await module._CommitBeforeRevoking(runner).on_partitions_revoked([P1])
    assert broker.commits == [{1: 3}]
    await runner.commit()
    assert broker.commits == [{1: 3}, {0: 8}]


async def test_a_partition_given_to_another_member_is_not_committed(
    runner: ConsumerRunner,
) -> None:
    broker = kafka(runner)
    await runner._process({P0: [record(P0, 7)], P1: [record(P1, 2)]})
    broker.held = {P0}
    await runner.commit()
    await runner.commit()
    assert broker.commits == [{0: 8}]
