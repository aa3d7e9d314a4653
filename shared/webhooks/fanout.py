"""Turning a service's own events into webhook deliveries, inside the consumer's transaction."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
import orjson

from shared.consumer import Handler
from shared.events.base import EventData
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


async def fan_out(conn: asyncpg.Connection, data: EventData, envelope: Envelope) -> None:
    added = await conn.execute(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body)"
        " SELECT id, $1, $2, $3 FROM webhook_subscriptions"
        " WHERE deleted_at IS NULL AND event_types @> ARRAY[$2::text]"
        " ON CONFLICT (subscription_id, event_id) DO NOTHING",
        envelope.id,
        envelope.type,
        delivery_body(envelope),
    )
    if added.split()[-1] != "0":
        schema = await conn.fetchval("SELECT current_schema()")
        await conn.execute("SELECT pg_notify($1, '')", channel(schema))


def webhook_fanout_handlers(event_types: Iterable[str]) -> dict[str, Handler]:
    """Handlers for ``follows={"<service>.events": ...}``: one per event type offered to
    subscribers. Merge with the service's own handlers if it follows its own topic already."""
    return dict.fromkeys(event_types, fan_out)
