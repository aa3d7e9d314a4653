"""The webhook administration API a service includes: ``app.include_router(webhooks_router())``.

Everything needs the scope ``webhooks:manage``. A department system sees and changes only its
own subscriptions; federation staff (department ``federation``) see all and may replay any
delivery. A credential limited to organisations may not subscribe: events are not filtered by
organisation, so it would see other organisations' events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from shared.auth import Caller, require_scope
from shared.auth.credentials import encrypt, new_secret
from shared.errors import DomainError, Forbidden, NotFound
from shared.events.base import CATALOGUE
from shared.http import router as service_router
from shared.inputs import Command, Limit, RowId
from shared.webhooks.store import url_problem

SCOPE = "webhooks:manage"
STAFF = "federation"


class NewSubscription(Command):
    url: str = Field(max_length=2000, examples=["https://tax.example.gov.cn/gonghui/events"])
    event_types: list[str] = Field(
        min_length=1, max_length=100, examples=[["membership.member.joined.v1"]]
    )


class Subscription(BaseModel):
    id: uuid.UUID
    app_id: str
    url: str
    event_types: list[str]
    created_at: datetime
    consecutive_failures: int


class CreatedSubscription(Subscription):
    secret: str = Field(description="Signs the deliveries; shown only now, keep it safe.")


class Delivery(BaseModel):
    id: int
    subscription_id: uuid.UUID
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


_SUBSCRIPTION_COLUMNS = "id, app_id, url, event_types, created_at, consecutive_failures"
_DELIVERY_COLUMNS = (
    "d.id, d.subscription_id, d.event_id, d.event_type, d.status, d.attempts, d.last_status,"
    " d.last_error, d.created_at, d.next_attempt_at, d.delivered_at"
)


def _sees_all(caller: Caller) -> bool:
    return caller.department == STAFF


def webhooks_router(event_types: Iterable[str] | None = None) -> APIRouter:
    """Routes under ``/webhooks``; ``event_types`` are those offered to subscribers (the same
    list given to :func:`webhook_fanout_handlers`); None offers every type in the catalogue."""
    offered = frozenset(event_types) if event_types is not None else None
    router = service_router(prefix="/webhooks", tags=["webhooks"])
    guard = require_scope(SCOPE)

    @router.post(
        "/subscriptions",
        status_code=201,
        summary="Subscribe a URL to events",
        description=(
            "Events of the listed types are POSTed to the URL as CloudEvents (structured JSON),"
            " signed like requests with the secret in the answer, which is shown only once."
            " Failed deliveries are retried with back-off; see docs/departments.md."
        ),
    )
    async def create_subscription(
        body: NewSubscription, request: Request, caller: Caller = Depends(guard)
    ) -> CreatedSubscription:
        if caller.organisations is not None:
            raise Forbidden(
                "caller",
                "organisation_bound_credential",
                "a credential limited to organisations may not subscribe",
            )
        settings = request.app.state.runtime.settings
        problem = url_problem(body.url, settings.environment)
        if problem:
            raise DomainError("url", "url_refused", problem)
        for i, event_type in enumerate(body.event_types):
            known = event_type in CATALOGUE if offered is None else event_type in offered
            if not known:
                raise DomainError(
                    f"event_types[{i}]",
                    "unknown_event_type",
                    "this service offers no such event type",
                )
        secret = new_secret()
        row = await request.app.state.runtime.pool.fetchrow(
            "INSERT INTO webhook_subscriptions (id, app_id, url, event_types, secret_encrypted)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_SUBSCRIPTION_COLUMNS}",
            uuid.uuid4(),
            caller.app_id,
            body.url,
            sorted(set(body.event_types)),
            encrypt(settings.credentials_key, secret),
        )
        return CreatedSubscription(**dict(row), secret=secret)

    @router.get(
        "/event-types",
        summary="The event types this service offers to subscribers",
        description=(
            "CloudEvents types (e.g. `membership.member.joined.v1`) that `event_types` of a"
            " subscription may name; their payloads are in docs/asyncapi.json."
        ),
    )
    async def offered_event_types(_: Caller = Depends(guard)) -> list[str]:
        return sorted(offered if offered is not None else CATALOGUE)

    @router.get(
        "/subscriptions",
        summary="Your subscriptions (federation staff: all)",
        description=(
            "The subscriptions of the calling credential, oldest first; federation staff see"
            " every department's. The signing secret is never shown again after creation."
            " `consecutive_failures` counts deliveries failed in a row: an endpoint that keeps"
            " failing is retried with back-off, never dropped."
        ),
    )
    async def list_subscriptions(
        request: Request, caller: Caller = Depends(guard)
    ) -> list[Subscription]:
        rows = await request.app.state.runtime.pool.fetch(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions"
            " WHERE deleted_at IS NULL AND ($1 OR app_id = $2) ORDER BY created_at",
            _sees_all(caller),
            caller.app_id,
        )
        return [Subscription(**dict(r)) for r in rows]

    @router.delete(
        "/subscriptions/{subscription_id}",
        status_code=204,
        summary="Unsubscribe; pending deliveries are cancelled",
        description=(
            "Ends the subscription at once: no new deliveries, and the pending ones are"
            " cancelled (their records stay). `unknown_subscription` (404) when the id is not"
            " one of yours."
        ),
    )
    async def delete_subscription(
        subscription_id: uuid.UUID, request: Request, caller: Caller = Depends(guard)
    ) -> Response:
        async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "UPDATE webhook_subscriptions SET deleted_at = now()"
                " WHERE id = $1 AND deleted_at IS NULL AND ($2 OR app_id = $3) RETURNING true",
                subscription_id,
                _sees_all(caller),
                caller.app_id,
            )
            if not found:
                raise NotFound("subscription_id", "unknown_subscription", "no such subscription")
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'cancelled'"
                " WHERE subscription_id = $1 AND status = 'pending'",
                subscription_id,
            )
        return Response(status_code=204)

    @router.get(
        "/deliveries",
        summary="Recent deliveries, newest first",
        description="Filter by subscription and status; `limit` is 1 to 1000.",
    )
    async def list_deliveries(
        request: Request,
        caller: Caller = Depends(guard),
        subscription_id: uuid.UUID | None = None,
        status: Literal["pending", "delivered", "failed", "cancelled"] | None = None,
        limit: Limit = 100,
    ) -> list[Delivery]:
        rows = await request.app.state.runtime.pool.fetch(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d"
            " JOIN webhook_subscriptions s ON s.id = d.subscription_id"
            " WHERE ($1 OR s.app_id = $2) AND ($3::uuid IS NULL OR d.subscription_id = $3)"
            " AND ($4::text IS NULL OR d.status = $4) ORDER BY d.id DESC LIMIT $5",
            _sees_all(caller),
            caller.app_id,
            subscription_id,
            status,
            limit,
        )
        return [Delivery(**dict(r)) for r in rows]

    @router.post(
        "/deliveries/{delivery_id}/replay",
        status_code=202,
        summary="Send a delivery again, now",
        description=(
            "Whatever became of it, the delivery is sent again at once with the same event id"
            " (receivers dedupe on `X-Gonghui-Event-Id`), and the endpoint's back-off ends."
            " `unknown_delivery` (404) when it is not one of yours."
        ),
    )
    async def replay_delivery(
        delivery_id: RowId, request: Request, caller: Caller = Depends(guard)
    ) -> Delivery:
        """Send the delivery again, now, whatever became of it (the event id stays the same)."""
        async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE webhook_deliveries d SET status = 'pending', attempts = 0,"
                " next_attempt_at = now() FROM webhook_subscriptions s"
                " WHERE d.id = $1 AND s.id = d.subscription_id AND s.deleted_at IS NULL"
                f" AND ($2 OR s.app_id = $3) RETURNING {_DELIVERY_COLUMNS}",
                delivery_id,
                _sees_all(caller),
                caller.app_id,
            )
            if row is None:
                raise NotFound("delivery_id", "unknown_delivery", "no such delivery")
            # Whoever replays has usually just fixed the endpoint: end its back-off too.
            await conn.execute(
                "UPDATE webhook_subscriptions SET resume_at = now() WHERE id = $1",
                row["subscription_id"],
            )
        return Delivery(**dict(row))

    return router
