"""The AsyncAPI document of the event catalogue: valid, committed as generated, true to the events.

``asyncapi-3.0.0.schema.json`` beside this module is the official AsyncAPI 3.0.0 JSON Schema,
``schemas/3.0.0.json`` of https://github.com/asyncapi/spec-json-schemas (release 6.11.1, commit
7dd3990d9fff9df76e81c8d2ab544e0000f29aff), unchanged; Copyright the AsyncAPI Initiative, licensed
under the Apache License 2.0. It is a draft-07 schema whose definitions carry their own ``$id``
(``http://asyncapi.com/definitions/3.0.0/...``); the registry below resolves them all from that one
file and refuses to fetch anything, so the test runs offline.
"""

from __future__ import annotations

import json
import types
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin

import pytest
from jsonschema import Draft7Validator
from pydantic import BaseModel
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7

from shared.events import asyncapi
from shared.events.catalogue import CATALOGUE, EventData
from shared.events.envelope import Envelope
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[3]
DOCUMENT = ROOT / "docs" / "asyncapi.json"
SPEC_SCHEMA = Path(__file__).with_name("asyncapi-3.0.0.schema.json")
DOCUMENT_URI = "urn:gonghui:test:asyncapi"
M = TypeVar("M", bound=BaseModel)


def _offline(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)


def spec_validator() -> Draft7Validator:
    schema = json.loads(SPEC_SCHEMA.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry(retrieve=_offline).with_resource(
        schema["$id"], DRAFT7.create_resource(schema)
    )
    return Draft7Validator(schema, registry=registry)


def within(document: dict[str, Any], pointer: str) -> Draft7Validator:
    """A validator for the schema at ``pointer`` in the document, its ``#/...`` refs resolved."""
    registry: Registry[Any] = Registry(retrieve=_offline).with_resource(
        DOCUMENT_URI, DRAFT7.create_resource(document)
    )
    return Draft7Validator(
        {"$ref": f"{DOCUMENT_URI}#{pointer}"},
        registry=registry,
        format_checker=Draft7Validator.FORMAT_CHECKER,
    )


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi.build_document()


def test_the_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    errors = sorted(spec_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10]
    )


JOINED = "gonghui.membership.member.joined"


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        (("operations", "membership.publish"), "action", "publish"),  # AsyncAPI 2's word
        (("channels", "membership.events", "bindings", "kafka"), "partitions", 0),
        (("components", "messages", JOINED, "bindings", "kafka"), "key", 5),
        (("components", "messages", JOINED), "payloadSchema", {}),
        (("components", "schemas", "MemberJoined"), "type", 5),
        (("components", "correlationIds", "cloudEventsCorrelation"), "location", "header"),
    ],
)
def test_the_validator_rejects_an_invalid_document(
    document: dict[str, Any], where: tuple[str, ...], key: str, value: Any
) -> None:
    broken = json.loads(json.dumps(document))
    node = broken
    for part in where:
        node = node[part]
    node[key] = value
    assert not spec_validator().is_valid(broken)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_is_local_and_resolves(document: dict[str, Any]) -> None:
    assert "$defs" not in json.dumps(document)
    for ref in _refs(document):
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]


def test_the_committed_document_is_the_generated_one(document: dict[str, Any]) -> None:
    regenerate = f"regenerate it with `{asyncapi.REGENERATE}`"
    assert DOCUMENT.exists(), f"{DOCUMENT.relative_to(ROOT)} is missing: {regenerate}"
    committed = DOCUMENT.read_text(encoding="utf-8")
    assert committed == asyncapi.render(document), (
        f"{DOCUMENT.relative_to(ROOT)} differs from the event catalogue: {regenerate}"
    )


def test_check_mode_fails_on_a_stale_file(
    tmp_path: Path, document: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "asyncapi.json"
    assert asyncapi.main([str(path)]) == 0
    assert asyncapi.main(["--check", str(path)]) == 0
    stale = json.loads(path.read_text(encoding="utf-8"))
    stale["components"]["schemas"]["MemberJoined"]["required"].remove("card_number")
    path.write_text(asyncapi.render(stale), encoding="utf-8")
    assert asyncapi.main(["--check", str(path)]) == 1
    assert "python -m shared.events.asyncapi" in capsys.readouterr().err
    assert asyncapi.main(["--check", str(tmp_path / "missing.json")]) == 1


def test_one_message_per_event_type_on_its_service_channel(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    assert set(messages) - {asyncapi.DEAD_LETTER_MESSAGE} == set(CATALOGUE)
    for event_type, model in CATALOGUE.items():
        assert messages[event_type]["name"] == event_type
        service = asyncapi.service_of(model)
        channel = document["channels"][asyncapi.events_topic(service)]
        assert event_type in channel["messages"]
        sent = document["operations"][f"{service}.publish"]["messages"]
        assert {"$ref": f"#/channels/{channel['address']}/messages/{event_type}"} in sent


def test_channel_addresses_are_the_services_default_topics(document: dict[str, Any]) -> None:
    services = {asyncapi.service_of(m) for m in CATALOGUE.values()}
    addresses = set()
    for service in services:

        class Settings(ServiceSettings):
            pass

        Settings.service = service
        settings = Settings.model_construct(topic_namespace="")  # no environment read
        addresses |= {settings.events_topic, settings.dead_letter_topic}
    assert {c["address"] for c in document["channels"].values()} == addresses
    # ... and those topics exist locally with the partitions the channels say.
    topics = ROOT / "deploy" / "local" / "topics.txt"
    lines = topics.read_text(encoding="utf-8").splitlines()
    created = dict(line.split() for line in lines if line.strip() and not line.startswith("#"))
    for channel in document["channels"].values():
        assert created.get(channel["address"]) == str(channel["bindings"]["kafka"]["partitions"])


def example_value(annotation: Any, name: str) -> Any:
    """A plausible value of a field's type: enough for every type the catalogue uses."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return example_value(next(a for a in get_args(annotation) if a is not type(None)), name)
    if origin is list:
        return [example_value(get_args(annotation)[0], name)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return example(annotation)
    simple = {
        str: f"{name}-1",
        int: 7,
        bool: True,
        date: date(2026, 3, 1),
        datetime: datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    }
    if annotation in simple:
        return simple[annotation]
    raise AssertionError(f"teach example_value an example of {annotation!r} (field {name})")


def example(model: type[M]) -> M:
    return model.model_validate(
        {n: example_value(f.annotation, n) for n, f in model.model_fields.items()}
    )


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_a_real_event_matches_its_message(document: dict[str, Any], event_type: str) -> None:
    model = CATALOGUE[event_type]
    event = example(model)
    pointer = f"/components/messages/{event_type}"

    data = json.loads(event.model_dump_json())
    errors = [e.message for e in within(document, f"{pointer}/payload").iter_errors(data)]
    assert not errors, errors
    required = document["components"]["schemas"][model.__name__]["required"]
    assert not within(document, f"{pointer}/payload").is_valid(
        {k: v for k, v in data.items() if k != required[0]}
    )

    envelope = Envelope.wrap(
        event,
        causation_id="cause-1",
        trace_headers={"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"},
    )
    headers = dict(envelope.kafka_headers_text())
    errors = [e.message for e in within(document, f"{pointer}/headers").iter_errors(headers)]
    assert not errors, errors
    other = headers | {"ce_type": "gonghui.other.thing.happened"}
    assert not within(document, f"{pointer}/headers").is_valid(other)

    key = document["components"]["messages"][event_type]["bindings"]["kafka"]["key"]
    assert isinstance(event.subject(), str) and event.subject() == headers["ce_subject"]
    assert f"`{asyncapi._subject_field(model)}`" in key["description"]


class Place(BaseModel):
    city: str
    district: str | None = None


class _Hoisted(EventData):
    type: ClassVar[str] = "gonghui.test_hoist.venue.opened"
    source: ClassVar[str] = "gonghui/test_hoist"
    venue_id: str
    place: Place
    other_places: list[Place]

    def subject(self) -> str:
        return self.venue_id


def test_nested_models_are_hoisted_into_components() -> None:
    document = asyncapi.build_document({_Hoisted.type: _Hoisted})
    assert "$defs" not in json.dumps(document)
    assert "Place" in document["components"]["schemas"]
    assert not list(spec_validator().iter_errors(document))
    test_every_reference_is_local_and_resolves(document)
    data = json.loads(example(_Hoisted).model_dump_json())
    payload = within(document, f"/components/messages/{_Hoisted.type}/payload")
    assert payload.is_valid(data)
    assert not payload.is_valid(data | {"place": {"district": "x"}})
