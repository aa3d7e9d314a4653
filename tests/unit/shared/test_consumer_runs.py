"""How the consumer's fast path cuts a batch into runs for batch handlers."""

from __future__ import annotations

from datetime import date

from aiokafka import ConsumerRecord

from shared.consumer import Fresh, _runs
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberDetailsChanged, MemberReinstated


async def ignore(*_: object) -> None:
    pass


def record(partition: int = 0, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", partition, offset, 0, 0, None, None, None, 0, 0, [])


def fresh(event: EventData) -> Fresh:
    return Envelope.wrap(event), event, ignore, record()


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
