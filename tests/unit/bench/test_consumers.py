"""The consumers benchmark builds its events as it sends them, never all of them at once."""

from __future__ import annotations

from collections.abc import Iterator

from bench.consumers import _chunks, joins


def test_events_are_built_a_chunk_at_a_time() -> None:
    built: list[int] = []

    def events() -> Iterator[int]:
        for serial in range(12):
            built.append(serial)
            yield serial

    chunks = _chunks(events(), 5)
    assert next(chunks) == [0, 1, 2, 3, 4]
    assert built == [0, 1, 2, 3, 4]
    assert [len(chunk) for chunk in chunks] == [5, 2]


def test_the_joins_are_the_same_every_run() -> None:
    first = [e.model_dump() for e in joins(50, 7)]
    assert first == [e.model_dump() for e in joins(50, 7)]
    assert len({e["member_id"] for e in first}) == 50
