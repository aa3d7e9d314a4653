"""Retention: what the backbone keeps only for a while, deleted by age in small chunks.

- ``outbox``, published rows: 7 days (``outbox_retention_hours``), a replay source if a topic is
  lost;
- ``inbox``: 14 days (``inbox_retention_days``), longer than Kafka keeps events (7 days), so no
  redelivery outlives its row;
- ``audit_log``: 400 days (``audit_retention_days``), a year of department calls and a month to
  look back on it;
- settled ``webhook_deliveries`` and their ``webhook_attempts``: 30 days
  (``webhook_retention_days``).

Unpublished outbox rows and pending deliveries are never deleted. Each chunk is its own short
statement, so retention never holds locks the services' work waits on. It runs as the supervised
worker ``retention`` every ``retention_interval_seconds`` (in every process that runs workers;
two replicas deleting the same rows is harmless).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import asyncpg
from prometheus_client import Counter

from shared.settings import ServiceSettings

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)
CHUNK = 5000
DELETED = Counter(
    "gonghui_retention_deleted_total", "Rows deleted by retention", ["service", "table"]
)


def _rules(s: ServiceSettings) -> list[tuple[str, str, int]]:
    """(table, which rows are old given the age $1, age), attempts before their deliveries."""
    old_delivery = "status <> 'pending' AND created_at < now() - make_interval(days => $1)"
    return [
        ("outbox", "published_at < now() - make_interval(hours => $1)", s.outbox_retention_hours),
        ("inbox", "received_at < now() - make_interval(days => $1)", s.inbox_retention_days),
        ("audit_log", "at < now() - make_interval(days => $1)", s.audit_retention_days),
        (
            "webhook_attempts",
            f"delivery_id IN (SELECT id FROM webhook_deliveries WHERE {old_delivery})",
            s.webhook_retention_days,
        ),
        ("webhook_deliveries", old_delivery, s.webhook_retention_days),
    ]


async def prune(pool: asyncpg.Pool, settings: ServiceSettings) -> dict[str, int]:
    """Delete everything past its retention now; rows deleted per table."""
    deleted: dict[str, int] = {}
    for table, old, age in _rules(settings):
        statement = (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {table} WHERE {old} LIMIT {CHUNK}))"
        )
        total = 0
        while True:
            status = await pool.execute(statement, age)
            count = int(status.split()[-1])
            total += count
            if count < CHUNK:
                break
        deleted[table] = total
        if total:
            DELETED.labels(settings.service, table).inc(total)
    return deleted


async def retention(runtime: ServiceRuntime) -> None:
    """The worker: prune, then wait for the next round."""
    settings = runtime.settings
    while True:
        deleted = await prune(runtime.pool, settings)
        if any(deleted.values()):
            log.info("%s retention deleted %s", settings.service, deleted)
        await asyncio.sleep(settings.retention_interval_seconds)
