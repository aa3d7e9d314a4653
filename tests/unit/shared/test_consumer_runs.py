"""How the consumer's fast path cuts a batch into runs for batch handlers."""

from __future__ import annotations

from datetime import date

from aiokafka import ConsumerRecord

from shared.consumer import Batched, Fresh, Handler, _runs
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberDetailsChanged, MemberReinstated


async def ignore(*_: object) -> None:
    pass


def record(partition: int = 0, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", partition, offset, 0, 0, None, None, None, 0, 0, [])


def fresh(event: EventData, handler: Handler = ignore) -> Fresh:
    return Envelope.wrap(event), event, handler, record()


def reinstated(member_id: str) -> MemberReinstated:
    return MemberReinstated(member_id=member_id, reinstated_on=date(2026, 3, 1))


def changed(member_id: str) -> MemberDetailsChanged:
    return MemberDetailsChanged(member_id=member_id, name="李四", categories=[], changed_fields=[])


def members(runs: list[list[Fresh]]) -> list[list[str]]:
    return [[envelope.subject for envelope, *_ in run] for run in runs]


def test_a_run_ends_where_the_type_changes() -> None:
    batch = [fresh(e) for e in (reinstated("a"), reinstated("b"), changed("a"), reinstated("c"))]
    assert members(list(_runs(batch))) == [["a", "b"], ["a"], ["c"]]


def test_a_run_never_holds_one_member_twice() -> None:
    batch = [fresh(reinstated(m)) for m in ("a", "b", "a", "c", "b")]
    assert members(list(_runs(batch))) == [["a", "b"], ["a", "c", "b"]]


def test_an_empty_batch_has_no_runs() -> None:
    assert list(_runs([])) == []


def test_an_independent_handler_takes_every_consecutive_event_it_handles() -> None:
    messages, other = Batched(ignore, independent=True), Batched(ignore)
    events = (reinstated("a"), changed("a"), reinstated("a"), reinstated("b"), changed("c"))
    batch = [fresh(e, messages) for e in events]
    batch[3] = fresh(events[3], other)
    assert members(list(_runs(batch))) == [["a", "a", "a"], ["b"], ["c"]]


def test_a_handler_that_is_not_independent_still_gets_runs_of_one_type_and_subject_once() -> None:
    view = Batched(ignore)
    batch = [fresh(e, view) for e in (reinstated("a"), changed("b"), changed("a"), changed("b"))]
    assert members(list(_runs(batch))) == [["a"], ["b", "a"], ["b"]]
