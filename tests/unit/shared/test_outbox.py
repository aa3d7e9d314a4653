"""The outbox's own work: rows carry each event's envelope (though a batch shares one template
per type), and the relay puts each key on the partition any Kafka producer would."""

from __future__ import annotations

import random
import uuid
from datetime import date

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined, MemberLeft
from shared.outbox import murmur2, outbox_rows
from tests.unit.shared.test_envelope import joined as a_join


def joined(member_id: str) -> MemberJoined:
    return a_join().model_copy(update={"member_id": member_id})


def left(member_id: str) -> MemberLeft:
    return MemberLeft(member_id=member_id, left_on=date(2026, 3, 2), reason="retired")


def read_back(row: tuple[str, str, str, str, dict[str, str], bytes]) -> Envelope:
    _, _, _, _, headers, payload = row
    return Envelope.from_kafka([(k, v.encode()) for k, v in headers.items()], payload)


def test_each_row_is_the_envelope_wrap_gives_for_its_event() -> None:
    events = [joined("m-1"), left("m-1"), joined("m-2"), left("m-3")]
    rows = outbox_rows(
        "t.membership.events",
        events,
        correlation_id="roster-1",
        causation_id="cmd-7",
        trace_headers={"traceparent": "00-ab-cd-01"},
    )
    for event, row in zip(events, rows, strict=True):
        event_id, topic, key, kind, headers, payload = row
        expected = dict(
            Envelope.wrap(
                event,
                correlation_id="roster-1",
                causation_id="cmd-7",
                trace_headers={"traceparent": "00-ab-cd-01"},
            ).kafka_headers_text()
        )
        assert (topic, key, kind) == ("t.membership.events", event.subject(), event.type)
        assert headers.keys() == expected.keys()
        own = {"ce_id", "ce_time"}
        assert {k: v for k, v in headers.items() if k not in own} == {
            k: v for k, v in expected.items() if k not in own
        }
        assert headers["ce_id"] == event_id
        assert payload == event.model_dump_json().encode()
        assert read_back(row).read() == event


def test_ids_are_distinct_time_ordered_uuids_and_start_their_own_correlation() -> None:
    rows = outbox_rows(
        "t",
        [joined(f"m-{i}") for i in range(500)],
        correlation_id=None,
        causation_id=None,
        trace_headers={},
    )
    ids = [row[0] for row in rows]
    assert len(set(ids)) == 500
    assert all(uuid.UUID(i).version == 7 and str(uuid.UUID(i)) == i for i in ids)
    later = outbox_rows(
        "t", [joined("m-x")], correlation_id=None, causation_id=None, trace_headers={}
    )
    assert later[0][0][:13] >= max(i[:13] for i in ids)  # the millisecond comes first
    for row in rows:
        envelope = read_back(row)
        assert envelope.id == envelope.correlationid == row[0]
        assert envelope.causationid is None


@given(st.binary(max_size=64))
def test_the_relay_hashes_keys_as_kafka_producers_do(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_member_ids_hash_as_kafka_producers_do() -> None:
    rng = random.Random(5)
    keys = [f"m-{rng.getrandbits(128):032x}".encode() for _ in range(2_000)]
    assert [murmur2(k) for k in keys] == [aiokafka_murmur2(k) for k in keys]
