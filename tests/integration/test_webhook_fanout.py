"""The webhook fan-out declared as one statement (``FAN_OUT``, the consumer's fast path for short
runs) leaves the deliveries ``fan_out`` leaves, and wakes the sender when it adds any."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from shared.db import connect
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined, MemberLeft
from shared.webhooks.fanout import FAN_OUT, fan_out
from shared.webhooks.store import channel
from tests.support.backbone import Probe, joined

pytestmark = pytest.mark.integration


async def subscribe(conn: asyncpg.Connection, types: list[str], deleted: bool = False) -> None:
    await conn.execute(
        "INSERT INTO webhook_subscriptions (id, app_id, url, event_types, secret_encrypted,"
        " deleted_at) VALUES ($1, 'app', 'https://example.org/hook', $2, 'x',"
        " CASE WHEN $3 THEN now() END)",
        uuid.uuid4(),
        types,
        deleted,
    )


async def written(conn: asyncpg.Connection) -> list[tuple[object, ...]]:
    rows = await conn.fetch(
        "SELECT subscription_id, event_id, event_type, body FROM webhook_deliveries ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def test_one_statement_leaves_what_fan_out_leaves_and_wakes_the_sender(probe: Probe) -> None:
    conn = await connect(probe.dsn, probe.schema)
    woken = asyncio.Event()
    try:
        await subscribe(conn, [MemberJoined.type])
        await subscribe(conn, [MemberJoined.type, MemberLeft.type])
        await subscribe(conn, [MemberLeft.type])  # another type
        await subscribe(conn, [MemberJoined.type], deleted=True)
        run = [(e, Envelope.wrap(e)) for e in (joined("m1"), joined("m2"), joined("m3"))]
        async with conn.transaction():
            await fan_out(conn, run)
            one_by_one = await written(conn)
            await conn.execute("DELETE FROM webhook_deliveries")
        await conn.add_listener(channel(probe.schema), lambda *_: woken.set())
        await FAN_OUT.apply(conn, run)  # on its own: committed, so the notification is sent
        at_once = await written(conn)
        await asyncio.wait_for(woken.wait(), timeout=5)
    finally:
        await conn.close()
    assert at_once == one_by_one
    assert len(at_once) == 6  # two live subscriptions of the type, three events each
