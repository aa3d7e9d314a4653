"""The webhook fan-out declared as one statement (``FAN_OUT``, the consumer's fast path for short
runs) leaves the deliveries ``fan_out`` leaves, and wakes the sender when it adds any."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

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
        # A run may mix types and hold a member twice (the handler is independent).
        left = MemberLeft(member_id="m1", left_on=date(2026, 3, 1), reason="retired")
        events = (joined("m1"), left, joined("m2"), joined("m3"))
        run = [(e, Envelope.wrap(e)) for e in events]
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
    # Two live subscriptions of each type: three joins and a leaving, in the events' order.
    ids = [e.id for _, e in run]
    assert [(row[1], row[2]) for row in at_once] == [
        (ids[0], MemberJoined.type),
        (ids[0], MemberJoined.type),
        (ids[1], MemberLeft.type),
        (ids[1], MemberLeft.type),
        (ids[2], MemberJoined.type),
        (ids[2], MemberJoined.type),
        (ids[3], MemberJoined.type),
        (ids[3], MemberJoined.type),
    ]
