"""Department credentials and signed clients for tests (and the per-service authorization
matrices): issue a credential straight into a service's schema, then call its API signed."""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from fastapi import FastAPI

from shared.auth import credentials
from shared.auth.client import SignedAuth
from shared.db import connect
from shared.settings import DEVELOPMENT_CREDENTIALS_KEY


async def issue_credential(
    dsn: str,
    schema: str,
    *,
    scopes: Iterable[str],
    department: str = "federation",
    name: str = "test",
    organisations: Iterable[str] | None = None,
    key: str = DEVELOPMENT_CREDENTIALS_KEY,
) -> tuple[str, str]:
    """(app id, secret) of a new credential in ``schema``; ``dsn`` logs in as the service's role,
    e.g. ``database.dsn("mutual_aid")``. ``key`` must be the service's ``credentials_key``."""
    conn = await connect(dsn, schema)
    try:
        return await credentials.issue(
            conn,
            key,
            name=name,
            department=department,
            scopes=scopes,
            organisations=organisations,
        )
    finally:
        await conn.close()


async def signed_client(
    app: FastAPI, app_id: str, secret: str, *, base_url: str = "http://service"
) -> httpx.AsyncClient:
    """A client to ``app`` in-process whose every request is signed; close it (``async with``)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, auth=SignedAuth(app_id, secret)
    )


# The routes shared.webhooks adds to every service, with their scope (for per-service matrices).
WEBHOOK_ROUTES = {
    ("POST", "/webhooks/subscriptions"): "webhooks:manage",
    ("GET", "/webhooks/event-types"): "webhooks:manage",
    ("GET", "/webhooks/subscriptions"): "webhooks:manage",
    ("DELETE", "/webhooks/subscriptions/{subscription_id}"): "webhooks:manage",
    ("GET", "/webhooks/deliveries"): "webhooks:manage",
    ("POST", "/webhooks/deliveries/{delivery_id}/replay"): "webhooks:manage",
}
