from __future__ import annotations

from datetime import date

import orjson
import pytest

from shared.events.catalogue import CATALOGUE
from shared.events.envelope import BadEvent, Envelope
from shared.events.membership import MemberJoined


def joined() -> MemberJoined:
    return MemberJoined(
        member_id="m-1",
        name="李四",
        union_id="u-9",
        union_path=["city", "county", "u-9"],
        channel="platform_worker",
        categories=["new_employment_form"],
        joined_on=date(2026, 3, 1),
        card_number="GH0000000017",
        sex="F",
        birth_date=date(1992, 2, 29),
    )


def test_envelope_round_trips_through_kafka_headers() -> None:
    sent = Envelope.wrap(
        joined(), correlation_id="req-1", trace_headers={"traceparent": "00-ab-cd-01"}
    )
    headers = sent.kafka_headers()
    names = [k for k, _ in headers]
    assert {"ce_id", "ce_type", "ce_source", "ce_subject", "ce_time", "ce_specversion"} <= set(
        names
    )
    assert ("content-type", b"application/json") in headers
    received = Envelope.from_kafka(headers, sent.data)
    assert received == sent
    assert received.read() == joined()
    assert received.subject == "m-1"
    assert received.correlationid == "req-1"


def test_tolerant_reading_of_a_newer_additive_version() -> None:
    sent = Envelope.wrap(joined())
    newer = orjson.loads(sent.data) | {"preferred_language": "zh-CN"}
    headers = [(k, b"2" if k == "ce_schemaversion" else v) for k, v in sent.kafka_headers()]
    received = Envelope.from_kafka(headers, orjson.dumps(newer))
    assert received.schemaversion == 2
    assert received.read() == joined()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h, v: ([x for x in h if x[0] != "ce_type"], v), "missing headers ce_type"),
        (
            lambda h, v: ([(k, b"0.3" if k == "ce_specversion" else b) for k, b in h], v),
            "specversion",
        ),
        (
            lambda h, v: ([(k, b"x" if k == "ce_schemaversion" else b) for k, b in h], v),
            "attribute",
        ),
    ],
)
def test_unreadable_envelopes_are_refused_with_a_reason(mutate, message) -> None:
    sent = Envelope.wrap(joined())
    headers, value = mutate(sent.kafka_headers(), sent.data)
    with pytest.raises(BadEvent, match=message):
        Envelope.from_kafka(headers, value)


def test_data_that_does_not_match_the_schema_is_refused() -> None:
    sent = Envelope.wrap(joined())
    received = Envelope.from_kafka(sent.kafka_headers(), b'{"member_id": "m-1"}')
    with pytest.raises(BadEvent, match="does not match"):
        received.read()
    unknown = Envelope.from_kafka(
        [(k, b"gonghui.nobody.thing" if k == "ce_type" else v) for k, v in sent.kafka_headers()],
        sent.data,
    )
    with pytest.raises(BadEvent, match="not in the catalogue"):
        unknown.read()


def test_catalogue_entries_are_complete() -> None:
    assert len(CATALOGUE) >= 10
    for type_name, model in CATALOGUE.items():
        assert model.type == type_name
        assert type_name.startswith("gonghui.")
        assert model.source.startswith("gonghui/")
        assert isinstance(model.version, int) and model.version >= 1
        # Additive evolution only: every field a new version adds must be optional.
        assert model.model_config.get("extra") == "ignore"
