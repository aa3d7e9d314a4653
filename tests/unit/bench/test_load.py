"""The load generator keeps only what a step reports, compactly: flat columns an answer long, no
task once answered, and send times worked out from the schedule rather than stored."""

from __future__ import annotations

import gc
import tracemalloc
from array import array

import pytest

from bench.load import Refused, Step, open_loop, percentile

RATE = 1_000_000  # the schedule never waits: the tests are about what is kept, not when


async def test_a_step_keeps_each_success_in_flat_columns() -> None:
    async def send(serial: int) -> None:
        if serial % 3 == 0:
            raise Refused("409 already_enrolled")

    step = await open_loop(send, rate=RATE, seconds=0, first=10, count=9)
    assert sorted(step.serials) == [10, 11, 13, 14, 16, 17]
    for column in (step.latencies_ms, step.answered_at, step.serials):
        assert isinstance(column, array)
        assert len(column) == 6
    assert step.made == {}  # the serial names what an enrolment made: nothing else is kept
    assert step.error_kinds == {"409 already_enrolled": 3}


async def test_what_the_server_made_maps_to_the_time_its_request_was_due() -> None:
    rate = 100_000

    async def send(serial: int) -> str:
        return f"member-{serial}"

    step = await open_loop(send, rate=rate, seconds=0, first=5, count=4)
    sent = step.sent_at()
    assert sorted(sent) == ["member-5", "member-6", "member-7", "member-8"]
    assert sent["member-5"] == step.wall_start
    # The schedule's spacing, however late each answer came.
    # (to a wall-clock float's resolution, a quarter of a microsecond in this century)
    assert sent["member-8"] - sent["member-5"] == pytest.approx(3 / rate, abs=1e-6)


def test_a_send_time_follows_from_the_serial_and_the_schedule() -> None:
    step = Step(offered=200, seconds=1, first=100, wall_start=1_700_000_000.0)
    assert step.due_at(100) == 1_700_000_000.0
    assert step.due_at(150) == pytest.approx(1_700_000_000.25)


async def test_an_answered_request_leaves_a_few_bytes_behind() -> None:
    requests = 20_000

    async def send(serial: int) -> None:
        return None

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        step = await open_loop(send, rate=RATE, seconds=0, first=1, count=requests)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(step.latencies_ms) == requests
    # Three 8-byte columns and their growth; a finished task kept per request was about 1 KB.
    assert kept / requests < 64


async def test_a_fault_in_send_itself_is_raised_not_counted() -> None:
    async def send(serial: int) -> None:
        if serial == 3:
            raise KeyError("a bug in the benchmark, not an answer")

    with pytest.raises(KeyError):
        await open_loop(send, rate=RATE, seconds=0, first=0, count=10)


async def test_the_collector_is_held_back_for_the_step_only() -> None:
    found = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's own, whatever an earlier test left
    try:

        async def send(serial: int) -> None:
            # No full collection lands on a measured answer.
            assert gc.get_threshold() != (700, 10, 10)

        await open_loop(send, rate=RATE, seconds=0, first=0, count=3)
        # The polling after a step makes garbage of its own, collected as usual again.
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*found)


@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.9, 0.99, 1.0])
def test_a_percentile_is_the_nearest_rank_of_every_value(q: float) -> None:
    values = array("d", [float((serial * 7919) % 1013) for serial in range(2_000)])  # ties too
    ordered = sorted(values)
    assert percentile(values, q) == ordered[min(len(ordered) - 1, int(q * len(ordered)))]
