"""Turning a service's own events into webhook deliveries, inside the consumer's transaction."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
import orjson

from shared.consumer import Batched, Handler, Run, Statement
from shared.events.envelope import CONTENT_TYPE, Envelope
from shared.webhooks.store import channel


def delivery_body(envelope: Envelope) -> bytes:
    """The event as a structured-mode CloudEvent (``application/cloudevents+json``)."""
    attributes = {
        "specversion": envelope.specversion,
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "subject": envelope.subject,
        "time": envelope.time.isoformat(),
        "datacontenttype": CONTENT_TYPE,
        "dataschema": envelope.dataschema,
        "schemaversion": envelope.schemaversion,
        "correlationid": envelope.correlationid,
    }
    # The data goes out exactly as the producer wrote it (a Fragment is embedded unparsed).
    return orjson.dumps({**attributes, "data": orjson.Fragment(envelope.data or b"null")})


# One delivery per event and matching subscription, in event order (so each subscription's
# deliveries keep the events' order); each inserted delivery's RETURNING wakes the sender (the
# notifications of one transaction on one channel are delivered once). ``{only}`` narrows the
# events to some.
_DELIVERIES = (
    "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body)"
    " SELECT s.id, e.id, e.type, e.body FROM unnest($1::text[], $2::text[], $3::bytea[])"
    " WITH ORDINALITY AS e(id, type, body, n) JOIN webhook_subscriptions s"
    " ON s.deleted_at IS NULL AND s.event_types @> ARRAY[e.type]{only}"
    " ORDER BY e.n ON CONFLICT (subscription_id, event_id) DO NOTHING"
    f" RETURNING pg_notify(current_schema() || '{channel('')}', '')"
)


async def fan_out(conn: asyncpg.Connection, events: Run) -> None:
    """The deliveries of a run of events, of any types; when nobody subscribed to any of them
    (the usual case for a roster's joins or a lecture's completions), one look and no bodies."""
    types = sorted({envelope.type for _, envelope in events})
    if await conn.fetchval(
        "SELECT EXISTS (SELECT FROM webhook_subscriptions"
        " WHERE deleted_at IS NULL AND event_types && $1::text[])",
        types,
    ):
        await conn.execute(_DELIVERIES.format(only=""), *_deliveries(events))


def _deliveries(run: Run) -> list[object]:
    envelopes = [envelope for _, envelope in run]
    return [
        [e.id for e in envelopes],
        [e.type for e in envelopes],
        [delivery_body(e) for e in envelopes],
    ]


# fan_out as one statement with the consumer's inbox row: an online join's event is one round
# trip, not BEGIN, inbox, subscriptions, COMMIT. Its bodies are built whether or not anyone
# subscribed (about 6-18 us an event), so a roster's long runs take fan_out's way, which looks
# for subscriptions first.
FAN_OUT = Statement(
    _DELIVERIES.format(only=" WHERE e.id IN (SELECT event_id FROM fresh)"), _deliveries, most=16
)


def webhook_fanout_handlers(event_types: Iterable[str]) -> dict[str, Handler]:
    """Handlers for ``follows={"<service>.events": ...}``: one per event type offered to
    subscribers. Merge with the service's own handlers if it follows its own topic already."""
    # Independent: a delivery is its event's own row, so a run is every consecutive event (a
    # lecture's completions and certificates all have the class as subject, and alternate).
    return dict.fromkeys(event_types, Batched(fan_out, FAN_OUT, independent=True))
