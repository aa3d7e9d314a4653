"""The AsyncAPI 3.0.0 document of every event the platform publishes, built from the catalogue.

One channel per service topic (``<service>.events``) and one per its dead-letter topic
(``<service>.dlq``), one message per CloudEvents type, and a ``send`` operation per channel for the
service that owns it. Services are the catalogue's sources (``gonghui/<service>``): a new service's
event module, once imported by :mod:`shared.events.catalogue`, appears here without a change.

Messages travel in CloudEvents binary mode: the attributes are ``ce_`` headers (see
:mod:`shared.events.envelope`), the value is the data as JSON and the key is the subject.

``python -m shared.events.asyncapi docs/asyncapi.json`` writes the document;
``python -m shared.events.asyncapi --check docs/asyncapi.json`` exits 1 when the file differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from shared.events.catalogue import CATALOGUE, EventData
from shared.events.envelope import CONTENT_TYPE, SPECVERSION, schema_uri
from shared.runtime import EVENT_PARTITIONS
from shared.settings import ServiceSettings

ASYNCAPI_VERSION = "3.0.0"
# The document's own version: bump the minor for a new event type or field, the major for a
# removal (which the catalogue's additive-only rule should make rare).
DOCUMENT_VERSION = "2.0.0"
DEFAULT_PATH = "docs/asyncapi.json"
REGENERATE = f"python -m shared.events.asyncapi {DEFAULT_PATH}"
KAFKA_BINDING_VERSION = "0.5.0"
DEAD_LETTER_PARTITIONS = 1  # one partition keeps failed messages in arrival order
SOURCE_PREFIX = "gonghui/"

_SCHEMAS = "#/components/schemas/"
CE_HEADERS = "CloudEventsKafkaHeaders"
DLQ_HEADERS = "DeadLetterKafkaHeaders"
DEAD_LETTER_MESSAGE = "gonghui.dead_letter"
_TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


def events_topic(service: str) -> str:
    """A service's topic with no namespace, as ``ServiceSettings.events_topic`` names it."""
    return f"{service}.events"


def dead_letter_topic(service: str) -> str:
    """Its dead-letter topic with no namespace, as ``ServiceSettings.dead_letter_topic``."""
    return f"{service}.dlq"


def service_of(model: type[EventData]) -> str:
    if not model.source.startswith(SOURCE_PREFIX):
        raise ValueError(f"{model.type}: source {model.source!r} is not {SOURCE_PREFIX}<service>")
    return model.source.removeprefix(SOURCE_PREFIX)


def build_document(catalogue: dict[str, type[EventData]] | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document (a JSON-ready dict) of the catalogue's events.

    Pure and deterministic: services and types are sorted, so import order does not matter.
    """
    catalogue = CATALOGUE if catalogue is None else catalogue
    types = sorted(catalogue)
    by_service: dict[str, list[str]] = defaultdict(list)
    for event_type in types:
        by_service[service_of(catalogue[event_type])].append(event_type)

    payload_refs, schemas = _payload_schemas([catalogue[t] for t in types])
    schemas[CE_HEADERS] = _cloudevents_headers()
    schemas[DLQ_HEADERS] = _dead_letter_headers()

    messages: dict[str, Any] = {
        t: _message(catalogue[t], payload_refs[catalogue[t]]) for t in types
    }
    messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for service in sorted(by_service):
        events, dlq = events_topic(service), dead_letter_topic(service)
        channels[events] = _events_channel(service, by_service[service])
        channels[dlq] = _dead_letter_channel(service)
        operations[f"{service}.publish"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{events}"},
            "title": f"{service} publishes its events",
            "summary": (
                f"The {service} service's outbox relay sends each event it recorded, in the order "
                "of its subject."
            ),
            "messages": [
                {"$ref": f"#/channels/{events}/messages/{t}"} for t in by_service[service]
            ],
        }
        operations[f"{service}.deadLetter"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{dlq}"},
            "title": f"{service} dead-letters what it cannot apply",
            "summary": (
                f"A consumer of the {service} service sends a message it cannot read or apply, "
                "unchanged, with the reason in dlq_ headers, and moves on."
            ),
            "messages": [{"$ref": f"#/channels/{dlq}/messages/{DEAD_LETTER_MESSAGE}"}],
        }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:gonghui:events",
        "info": {
            "title": "Gonghui events",
            "version": DOCUMENT_VERSION,
            "description": (
                "Every domain event the Gonghui services publish, generated from the event "
                "catalogue (shared/events) by `python -m shared.events.asyncapi`.\n\n"
                "Events are CloudEvents 1.0 in Kafka binary mode: each attribute is a `ce_` "
                "header, the value is the event's data as JSON and the key is the subject (the "
                "aggregate id), so one aggregate's events stay in order on one partition. "
                "Evolution is additive: a new optional field keeps the schema version, anything "
                "else is a new type; readers ignore fields they do not know."
            ),
        },
        "servers": {
            "local": {
                "host": str(ServiceSettings.model_fields["kafka_bootstrap"].default),
                "protocol": "kafka",
                "description": "The development broker (deploy/local); deployments set their own.",
            }
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": messages,
            "correlationIds": {
                "cloudEventsCorrelation": {
                    "description": (
                        "Ties together everything one request caused (the CloudEvents "
                        "`correlationid` extension)."
                    ),
                    "location": "$message.header#/ce_correlationid",
                }
            },
        },
    }


def _payload_schemas(
    models: list[type[EventData]],
) -> tuple[dict[type[EventData], dict[str, Any]], dict[str, Any]]:
    """Each model's ``$ref`` and the schemas they need, named and referenced as components.

    pydantic builds all of them at once, so a nested model shared by two events is one component
    and two models of one name in different modules get distinct names.
    """
    refs, top = models_json_schema(
        [(m, "validation") for m in models], ref_template=_SCHEMAS + "{model}"
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    return {m: refs[(m, "validation")] for m in models}, schemas


def _message(model: type[EventData], payload_ref: dict[str, Any]) -> dict[str, Any]:
    doc = (model.__dict__.get("__doc__") or "").strip()
    message: dict[str, Any] = {
        "name": model.type,
        "title": model.__name__,
        "summary": f"{model.type} v{model.version}, published by {model.source}.",
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "allOf": [{"$ref": _SCHEMAS + CE_HEADERS}],
            "properties": {
                "ce_type": {"const": model.type},
                "ce_source": {"const": model.source},
                "ce_dataschema": {"const": schema_uri(model.type, model.version)},
                "ce_schemaversion": {"const": str(model.version)},
            },
        },
        "payload": payload_ref,
        "correlationId": {"$ref": "#/components/correlationIds/cloudEventsCorrelation"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": _key_description(model)},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "tags": [{"name": service_of(model)}],
    }
    if doc:
        message["description"] = doc
    return message


def _key_description(model: type[EventData]) -> str:
    field = _subject_field(model)
    what = f"the event's `{field}`" if field else "the id of the aggregate the event is about"
    return (
        f"The CloudEvents subject (also in ce_subject): {what}. Kafka's murmur2 partitioner puts "
        "every event of one subject on one partition, in order."
    )


def _subject_field(model: type[EventData]) -> str | None:
    """The field ``subject()`` returns, found by asking an instance with a marker in each field."""
    markers = {name: f"\x00{name}\x00" for name in model.model_fields}
    try:
        subject = model.model_construct(None, **markers).subject()
    except Exception:
        return None
    return next((name for name, marker in markers.items() if marker == subject), None)


def _cloudevents_headers() -> dict[str, Any]:
    string: dict[str, Any] = {"type": "string"}
    return {
        "title": "CloudEvents Kafka headers",
        "description": (
            "CloudEvents 1.0 attributes in Kafka binary mode (UTF-8 header values), plus the W3C "
            "trace context. Producers send every required header; a consumer needs only ce_id, "
            "ce_type, ce_source and ce_specversion and dead-letters a message without them. "
            "Other headers may be present and are ignored."
        ),
        "type": "object",
        "properties": {
            "ce_id": string | {"description": "Unique id of the event (deduplicates redelivery)."},
            "ce_type": string | {"description": "The event type, e.g. gonghui.membership.x.y."},
            "ce_source": string | {"description": "gonghui/<service>: who published it."},
            "ce_subject": string
            | {"description": "The aggregate id the event is about; also the Kafka key."},
            "ce_time": string
            | {"format": "date-time", "description": "When it happened (RFC 3339)."},
            "ce_specversion": {"const": SPECVERSION, "description": "CloudEvents version."},
            "ce_dataschema": string
            | {"format": "uri", "description": "urn:gonghui:schema:<type>:v<schema version>."},
            "ce_schemaversion": string
            | {"pattern": "^[1-9][0-9]*$", "description": "The data's schema version."},
            "ce_correlationid": string
            | {"description": "Ties together everything one request caused (extension)."},
            "ce_causationid": string
            | {"description": "The event or request that directly caused this one (extension)."},
            "content-type": {"const": CONTENT_TYPE, "description": "Media type of the value."},
            "traceparent": string
            | {"pattern": _TRACEPARENT, "description": "W3C trace context of the publisher."},
            "tracestate": string | {"description": "W3C trace state, when there is one."},
        },
        "required": [
            "ce_id",
            "ce_type",
            "ce_source",
            "ce_subject",
            "ce_time",
            "ce_specversion",
            "ce_dataschema",
            "ce_schemaversion",
            "ce_correlationid",
            "content-type",
        ],
    }


def _dead_letter_headers() -> dict[str, Any]:
    string: dict[str, Any] = {"type": "string"}
    number: dict[str, Any] = {"type": "string", "pattern": "^[0-9]+$"}
    return {
        "title": "Dead-letter Kafka headers",
        "description": (
            "The original message's headers (CloudEvents ones when it had them), plus why and "
            "where it failed."
        ),
        "type": "object",
        "properties": {
            "dlq_reason": {
                "type": "string",
                "enum": ["unreadable", "bad_data", "handler_failed"],
                "description": (
                    "unreadable: not a CloudEvent; bad_data: the data does not match its "
                    "catalogue type; handler_failed: the handler kept failing."
                ),
            },
            "dlq_error": string | {"maxLength": 2000, "description": "The error, cut short."},
            "dlq_consumer": string | {"description": "The consumer that gave up on it."},
            "dlq_topic": string | {"description": "The topic it was read from."},
            "dlq_partition": number | {"description": "Its partition there."},
            "dlq_offset": number | {"description": "Its offset there."},
        },
        "required": [
            "dlq_reason",
            "dlq_error",
            "dlq_consumer",
            "dlq_topic",
            "dlq_partition",
            "dlq_offset",
        ],
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": DEAD_LETTER_MESSAGE,
        "title": "Dead letter",
        "summary": "A message a consumer could not read or apply, kept for a person to look at.",
        "headers": {"$ref": _SCHEMAS + DLQ_HEADERS},
        "payload": {
            "description": "The original message's value, byte for byte (not necessarily JSON)."
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original message's key."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _namespace_note(service: str) -> str:
    return (
        f"The address is the default topic name: a deployment that sets the service's "
        f"topic_namespace (GONGHUI_{service.upper()}_TOPIC_NAMESPACE) prefixes it."
    )


def _events_channel(service: str, types: list[str]) -> dict[str, Any]:
    topic = events_topic(service)
    return {
        "address": topic,
        "title": f"{service} events",
        "description": (
            f"Every event the {service} service publishes, keyed by subject. "
            + _namespace_note(service)
        ),
        "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in types},
        "bindings": {
            "kafka": {
                "topic": topic,
                "partitions": EVENT_PARTITIONS,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _dead_letter_channel(service: str) -> dict[str, Any]:
    topic = dead_letter_topic(service)
    return {
        "address": topic,
        "title": f"{service} dead letters",
        "description": (
            f"Messages the {service} service's consumers could not read or apply, from any topic "
            "they follow. " + _namespace_note(service)
        ),
        "messages": {DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}},
        "bindings": {
            "kafka": {
                "topic": topic,
                "partitions": DEAD_LETTER_PARTITIONS,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def render(document: dict[str, Any]) -> str:
    """The document as the committed file holds it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.events.asyncapi",
        description="Write (or check) the AsyncAPI document of the event catalogue.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the generated one"
    )
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH, type=Path)
    args = parser.parse_args(argv)
    text = render(build_document())
    path: Path = args.path
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            what = "is missing" if current is None else "differs from the event catalogue"
            print(
                f"{path} {what}: regenerate it with `python -m shared.events.asyncapi {path}`",
                file=sys.stderr,
            )
            return 1
        print(f"{path} is up to date")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
