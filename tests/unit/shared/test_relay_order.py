"""The relay keeps a partition's batches in order across a failed send: a batch goes out only once
the one before it on the same partition is acknowledged, and a failure settles every send before
the relay retries, so a re-sent batch can never land after a later one.

The producer here is a recorder standing in for aiokafka's, so a send can fail on cue; the same
relay against the real broker is covered by tests/integration/test_backbone*.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from shared.outbox import Relay


class Batch:
    def __init__(self, capacity: int) -> None:
        self.keys: list[bytes] = []
        self.capacity = capacity

    def append(self, *, key: bytes, **_: Any) -> object | None:
        if len(self.keys) == self.capacity:
            return None
        self.keys.append(key)
        return object()


class RecordingProducer:
    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first  # the n-th send fails once the next one could have started
        self.sends: list[tuple[int, list[bytes]]] = []
        self.in_flight: set[int] = set()
        self.overlap = False

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> Batch:
        return Batch(capacity=2)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        number = len(self.sends)
        self.sends.append((partition, batch.keys))
        if self.in_flight:
            self.overlap = True  # a second batch of the partition before the first was acked
        self.in_flight.add(number)
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def settle() -> None:
            await asyncio.sleep(0.01)
            self.in_flight.discard(number)
            if number == self.fail_first:
                ack.set_exception(KafkaTimeoutError())
            else:
                ack.set_result(None)

        asyncio.get_running_loop().create_task(settle())
        return ack


class Connection:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.marked: list[int] = []

    async def fetch(self, *_: Any) -> list[dict[str, Any]]:
        return self.rows

    async def execute(self, _sql: str, *args: Any) -> None:
        self.marked.extend(range(args[0], args[1] + 1) if len(args) == 2 else args[0])


def rows(count: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "topic": "t", "key": f"m{i}", "type": "Probe", "headers": {}, "payload": b"{}"}
        for i in range(1, count + 1)
    ]


async def test_a_partitions_batches_go_one_after_the_other() -> None:
    producer = RecordingProducer(fail_first=-1)
    conn = Connection(rows(6))
    relay = Relay("dsn", "probe", producer)  # type: ignore[arg-type]
    assert await relay.publish_batch(conn) == 6  # type: ignore[arg-type]
    assert not producer.overlap
    assert [keys for _, keys in producer.sends] == [[b"m1", b"m2"], [b"m3", b"m4"], [b"m5", b"m6"]]
    assert conn.marked == [1, 2, 3, 4, 5, 6]


async def test_after_a_failed_send_nothing_later_is_sent_and_nothing_is_marked() -> None:
    producer = RecordingProducer(fail_first=0)
    conn = Connection(rows(6))
    relay = Relay("dsn", "probe", producer)  # type: ignore[arg-type]
    with pytest.raises(KafkaTimeoutError):
        await relay.publish_batch(conn)  # type: ignore[arg-type]
    assert [keys for _, keys in producer.sends] == [[b"m1", b"m2"]]  # the later ones wait
    assert producer.in_flight == set() and conn.marked == []
    # The retry sends the partition's batches again, in their order.
    assert await relay.publish_batch(conn) == 6  # type: ignore[arg-type]
    assert [keys for _, keys in producer.sends][1:] == [
        [b"m1", b"m2"],
        [b"m3", b"m4"],
        [b"m5", b"m6"],
    ]
