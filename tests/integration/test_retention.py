"""Retention deletes what is past its age from the backbone's tables, and nothing else: not an
unpublished event, not a pending webhook delivery, not a recent row."""

from __future__ import annotations

import uuid

import pytest

from services.training.main import Settings
from shared.retention import prune
from tests.support.backbone import Probe

pytestmark = pytest.mark.integration


async def test_retention_deletes_old_rows_only(probe: Probe) -> None:
    old, recent = "now() - interval '400 days'", "now() - interval '1 hour'"
    p = probe.pool
    for published, created in (("NULL", old), (old, old), (recent, recent)):
        await p.execute(
            "INSERT INTO outbox (event_id, topic, key, type, headers, payload, created_at,"
            f" published_at) VALUES ($1, 't', 'k', 'x', '{{}}', '', {created}, {published})",
            uuid.uuid4(),
        )
    for when in (old, recent):
        await p.execute(
            "INSERT INTO inbox (consumer, event_id, event_type, received_at)"
            f" VALUES ('c', $1, 'x', {when})",
            str(uuid.uuid4()),
        )
        await p.execute(
            "INSERT INTO audit_log (at, method, route, status, outcome, duration_ms)"
            f" VALUES ({old if when == old else recent} - interval '100 days', 'GET', '/', 200,"
            " 'accepted', 1)"
        )
    subscription = uuid.uuid4()
    await p.execute(
        "INSERT INTO webhook_subscriptions (id, app_id, url, event_types, secret_encrypted)"
        " VALUES ($1, 'a', 'https://x', '{x}', 's')",
        subscription,
    )
    for status, when in (("delivered", old), ("pending", old), ("failed", recent)):
        delivery = await p.fetchval(
            "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body, status,"
            f" created_at) VALUES ($1, $2, 'x', '', $3, {when}) RETURNING id",
            subscription,
            str(uuid.uuid4()),
            status,
        )
        await p.execute(
            "INSERT INTO webhook_attempts (delivery_id, duration_ms) VALUES ($1, 1)", delivery
        )

    deleted = await prune(p, Settings())
    assert deleted == {
        "outbox": 1,
        "inbox": 1,
        "audit_log": 1,
        "webhook_attempts": 1,
        "webhook_deliveries": 1,
    }
    assert await p.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
    statuses = await p.fetch("SELECT status FROM webhook_deliveries ORDER BY status")
    assert [r["status"] for r in statuses] == ["failed", "pending"]
    assert (await prune(p, Settings())) == dict.fromkeys(deleted, 0)
