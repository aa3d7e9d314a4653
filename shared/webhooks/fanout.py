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


async def fan_out(conn: asyncpg.Connection, events: Run) -> None:
    """One delivery per event and matching subscription; a run of events is one statement, and
    none when nobody subscribed to its type (the usual case for a roster's joins)."""
    subscriptions = await conn.fetch(
        "SELECT id FROM webhook_subscriptions"
        " WHERE deleted_at IS NULL AND event_types @> ARRAY[$1::text]",
        events[0][1].type,  # the consumer hands over a run of one type
    )
    if not subscriptions:
        return
    envelopes = [envelope for _, envelope in events]
    added = await conn.execute(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body)"
        " SELECT s.id, e.id, $3, e.body FROM unnest($2::text[], $4::bytea[])"
        " WITH ORDINALITY AS e(id, body, n) CROSS JOIN unnest($1::uuid[]) AS s(id)"
        # In event order, so each subscription's deliveries keep the events' order.
        " ORDER BY e.n ON CONFLICT (subscription_id, event_id) DO NOTHING",
        [r["id"] for r in subscriptions],
        [e.id for e in envelopes],
        envelopes[0].type,
        [delivery_body(e) for e in envelopes],
    )
    if added.split()[-1] != "0":
        schema = await conn.fetchval("SELECT current_schema()")
        await conn.execute("SELECT pg_notify($1, '')", channel(schema))


def _deliveries(run: Run) -> list[object]:
    envelopes = [envelope for _, envelope in run]
    return [[e.id for e in envelopes], envelopes[0].type, [delivery_body(e) for e in envelopes]]


# fan_out as one statement with the consumer's inbox row: an online join's event is one round
# trip, not BEGIN, inbox, subscriptions, COMMIT. Each inserted delivery's RETURNING wakes the
# sender (notifications of one transaction on one channel are delivered once). Its bodies are
# built whether or not anyone subscribed (about 6-18 us an event), so a roster's long runs take
# fan_out's way, which looks for subscriptions first.
FAN_OUT = Statement(
    "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body)"
    " SELECT s.id, e.id, $2, e.body FROM unnest($1::text[], $3::bytea[])"
    " WITH ORDINALITY AS e(id, body, n) JOIN webhook_subscriptions s"
    " ON s.deleted_at IS NULL AND s.event_types @> ARRAY[$2::text]"
    " WHERE e.id IN (SELECT event_id FROM fresh)"
    # In event order, so each subscription's deliveries keep the events' order.
    " ORDER BY e.n ON CONFLICT (subscription_id, event_id) DO NOTHING"
    f" RETURNING pg_notify(current_schema() || '{channel('')}', '')",
    _deliveries,
    most=16,
)


def webhook_fanout_handlers(event_types: Iterable[str]) -> dict[str, Handler]:
    """Handlers for ``follows={"<service>.events": ...}``: one per event type offered to
    subscribers. Merge with the service's own handlers if it follows its own topic already."""
    return dict.fromkeys(event_types, Batched(fan_out, FAN_OUT))
