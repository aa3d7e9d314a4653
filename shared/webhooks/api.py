"""The webhook administration API a service includes: ``app.include_router(webhooks_router())``.

Everything needs the scope ``webhooks:manage``. A department system sees and changes only its
own subscriptions; federation staff (department ``federation``) see all and may replay any
delivery. A credential limited to organisations may not subscribe: events are not filtered by
organisation, so it would see other organisations' events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from shared.auth import Caller, require_scope
from shared.auth.credentials import encrypt, new_secret
from shared.errors import DomainError, Forbidden, NotFound
from shared.events.base import CATALOGUE
from shared.http import router as service_router
from shared.inputs import Command, Limit, RowId
from shared.webhooks.repository import WebhookRepository
from shared.webhooks.store import url_problem
from shared.webhooks.views import CreatedSubscription, Delivery, Subscription

SCOPE = "webhooks:manage"
STAFF = "federation"

router = service_router(prefix="/webhooks", tags=["webhooks"])
Manager = Annotated[Caller, Depends(require_scope(SCOPE))]


class NewSubscription(Command):
    url: str = Field(max_length=2000, examples=["https://tax.example.gov.cn/gonghui/events"])
    event_types: list[str] = Field(
        min_length=1, max_length=100, examples=[["membership.member.joined.v1"]]
    )


def webhooks_router(event_types: Iterable[str] | None = None) -> APIRouter:
    """Routes under ``/webhooks``; ``event_types`` are those offered to subscribers (the same
    list given to :func:`webhook_fanout_handlers`); None offers every type in the catalogue."""
    offered = frozenset(event_types) if event_types is not None else None

    # The routes are declared once, below; each service's list reaches them through the request.
    async def offer(request: Request) -> None:
        request.state.webhook_event_types = offered

    service = service_router(dependencies=[Depends(offer)])
    service.include_router(router)
    return service


async def offered_types(request: Request) -> frozenset[str]:
    offered: frozenset[str] | None = getattr(request.state, "webhook_event_types", None)
    # The catalogue is read per request: event modules imported later still count.
    return offered if offered is not None else frozenset(CATALOGUE)


async def repository(request: Request) -> WebhookRepository:
    return WebhookRepository(request.app.state.runtime.pool)


Offered = Annotated[frozenset[str], Depends(offered_types)]
Repository = Annotated[WebhookRepository, Depends(repository)]


def owner(caller: Caller) -> str | None:
    """Whose subscriptions the caller may see and change: its own, or all for staff (None)."""
    return None if caller.department == STAFF else caller.app_id


def check_new_subscription(
    body: NewSubscription, caller: Caller, offered: frozenset[str], environment: str
) -> None:
    if caller.organisations is not None:
        raise Forbidden(
            "caller",
            "organisation_bound_credential",
            "a credential limited to organisations may not subscribe",
        )
    problem = url_problem(body.url, environment)
    if problem:
        raise DomainError("url", "url_refused", problem)
    for i, event_type in enumerate(body.event_types):
        if event_type not in offered:
            raise DomainError(
                f"event_types[{i}]", "unknown_event_type", "this service offers no such event type"
            )


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
    body: NewSubscription,
    request: Request,
    webhooks: Repository,
    offered: Offered,
    caller: Manager,
) -> CreatedSubscription:
    settings = request.app.state.runtime.settings
    check_new_subscription(body, caller, offered, settings.environment)
    secret = new_secret()
    encrypted = encrypt(settings.credentials_key, secret)
    subscription = await webhooks.subscribe(caller.app_id, body.url, body.event_types, encrypted)
    return CreatedSubscription(**subscription.model_dump(), secret=secret)


@router.get(
    "/event-types",
    summary="The event types this service offers to subscribers",
    description=(
        "CloudEvents types (e.g. `membership.member.joined.v1`) that `event_types` of a"
        " subscription may name; their payloads are in docs/asyncapi.json."
    ),
)
async def offered_event_types(offered: Offered, _: Manager) -> list[str]:
    return sorted(offered)


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
async def list_subscriptions(webhooks: Repository, caller: Manager) -> list[Subscription]:
    return await webhooks.subscriptions(owner(caller))


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
    subscription_id: uuid.UUID, webhooks: Repository, caller: Manager
) -> Response:
    if not await webhooks.unsubscribe(subscription_id, owner(caller)):
        raise NotFound("subscription_id", "unknown_subscription", "no such subscription")
    return Response(status_code=204)


@router.get(
    "/deliveries",
    summary="Recent deliveries, newest first",
    description="Filter by subscription and status; `limit` is 1 to 1000.",
)
async def list_deliveries(
    webhooks: Repository,
    caller: Manager,
    subscription_id: uuid.UUID | None = None,
    status: Literal["pending", "delivered", "failed", "cancelled"] | None = None,
    limit: Limit = 100,
) -> list[Delivery]:
    return await webhooks.deliveries(owner(caller), subscription_id, status, limit)


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
async def replay_delivery(delivery_id: RowId, webhooks: Repository, caller: Manager) -> Delivery:
    delivery = await webhooks.replay(delivery_id, owner(caller))
    if delivery is None:
        raise NotFound("delivery_id", "unknown_delivery", "no such delivery")
    return delivery
