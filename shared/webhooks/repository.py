"""SQL of the webhook administration API on the service's ``webhook_subscriptions`` and
``webhook_deliveries`` (the fan-out and the sender keep their own statements next to their loops).

``owner`` limits a call to one credential's subscriptions; None (federation staff) means all.
"""

from __future__ import annotations

import uuid

import asyncpg

from shared.webhooks.views import Delivery, Subscription

_SUBSCRIPTION_COLUMNS = "id, app_id, url, event_types, created_at, consecutive_failures"
_DELIVERY_COLUMNS = (
    "d.id, d.subscription_id, d.event_id, d.event_type, d.status, d.attempts, d.last_status,"
    " d.last_error, d.created_at, d.next_attempt_at, d.delivered_at"
)


class WebhookRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def subscribe(
        self, app_id: str, url: str, event_types: list[str], secret_encrypted: str
    ) -> Subscription:
        row = await self.pool.fetchrow(
            "INSERT INTO webhook_subscriptions (id, app_id, url, event_types, secret_encrypted)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_SUBSCRIPTION_COLUMNS}",
            uuid.uuid4(),
            app_id,
            url,
            sorted(set(event_types)),
            secret_encrypted,
        )
        return Subscription(**dict(row))

    async def subscriptions(self, owner: str | None) -> list[Subscription]:
        """Those not ended, oldest first."""
        rows = await self.pool.fetch(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions"
            " WHERE deleted_at IS NULL AND ($1::text IS NULL OR app_id = $1) ORDER BY created_at",
            owner,
        )
        return [Subscription(**dict(r)) for r in rows]

    async def unsubscribe(self, subscription_id: uuid.UUID, owner: str | None) -> bool:
        """End the subscription and cancel its pending deliveries; False if there is none."""
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "UPDATE webhook_subscriptions SET deleted_at = now() WHERE id = $1"
                " AND deleted_at IS NULL AND ($2::text IS NULL OR app_id = $2) RETURNING true",
                subscription_id,
                owner,
            )
            if not found:
                return False
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'cancelled'"
                " WHERE subscription_id = $1 AND status = 'pending'",
                subscription_id,
            )
        return True

    async def deliveries(
        self,
        owner: str | None,
        subscription_id: uuid.UUID | None,
        status: str | None,
        limit: int,
    ) -> list[Delivery]:
        """Newest first."""
        rows = await self.pool.fetch(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d"
            " JOIN webhook_subscriptions s ON s.id = d.subscription_id"
            " WHERE ($1::text IS NULL OR s.app_id = $1)"
            " AND ($2::uuid IS NULL OR d.subscription_id = $2)"
            " AND ($3::text IS NULL OR d.status = $3) ORDER BY d.id DESC LIMIT $4",
            owner,
            subscription_id,
            status,
            limit,
        )
        return [Delivery(**dict(r)) for r in rows]

    async def replay(self, delivery_id: int, owner: str | None) -> Delivery | None:
        """Make the delivery due now with a fresh count of attempts, and end its subscription's
        back-off; None if there is no such delivery of a live subscription."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE webhook_deliveries d SET status = 'pending', attempts = 0,"
                " next_attempt_at = now() FROM webhook_subscriptions s"
                " WHERE d.id = $1 AND s.id = d.subscription_id AND s.deleted_at IS NULL"
                f" AND ($2::text IS NULL OR s.app_id = $2) RETURNING {_DELIVERY_COLUMNS}",
                delivery_id,
                owner,
            )
            if row is None:
                return None
            # Whoever replays has usually just fixed the endpoint: end its back-off too.
            await conn.execute(
                "UPDATE webhook_subscriptions SET resume_at = now() WHERE id = $1",
                row["subscription_id"],
            )
        return Delivery(**dict(row))
