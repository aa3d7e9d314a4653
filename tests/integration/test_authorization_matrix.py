"""The authorization matrix: every kind of department credential against every guarded endpoint
of the five services. A call without a signature is refused (401), a credential without the
endpoint's scope is refused (403), and no refused call changes a row (apart from the audit trail
that records it). Each service's own tests show that the declared scope is enough."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.membership import main as membership
from services.mutual_aid import main as mutual_aid
from services.notifications import main as notifications
from services.training import main as training
from services.union_funds import main as union_funds
from tests.support.auth import issue_credential, signed_client
from tests.support.database import ScratchDatabase
from tests.support.service import running, settings_for

pytestmark = pytest.mark.integration
SERVICES = {
    "membership": membership,
    "mutual_aid": mutual_aid,
    "training": training,
    "notifications": notifications,
    "union_funds": union_funds,
}
# What each kind of integrating system is given in production (docs/departments.md). The tax
# bureau's and finance's union-funds scopes (remittances:submit, subsidies:write) are union_funds'.
KINDS: dict[str, tuple[str, list[str], list[str] | None]] = {
    "hr_bureau": ("hr", ["roster:submit", "members:read"], None),
    "employer_hr": ("employer_hr", ["roster:submit"], ["some-union"]),
    "tax_bureau": ("tax", ["remittances:submit"], None),
    "finance_bureau": ("finance", ["backstop:read", "backstop:grant", "subsidies:write"], None),
    "member_portal": ("federation", ["members:join", "training:enrol", "claims:submit"], None),
}
# Open by design: probes, WeChat's own callback (WeChat signs it), public certificate checks.
PUBLIC = {"/healthz", "/readyz", "/wechat/callback", "/certificates/{number}/verification"}
AUDIT_TABLES = {"audit_log", "auth_nonces"}


@dataclass
class Route:
    method: str
    path: str
    scopes: set[str]


def guarded_routes(app: FastAPI) -> list[Route]:
    """Every operation, each of which must declare its scope unless it is public by design."""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        for method, op in operations.items():
            scopes = {s for req in op.get("security", []) for group in req.values() for s in group}
            assert scopes or path in PUBLIC, f"{method.upper()} {path} declares no scope"
            if scopes:
                routes.append(Route(method.upper(), re.sub(r"\{[^}]+\}", "x", path), scopes))
    return routes


async def row_counts(dsn: str, schema: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        return {
            t["tablename"]: await conn.fetchval(f'SELECT count(*) FROM {schema}."{t["tablename"]}"')
            for t in tables
            if t["tablename"] not in AUDIT_TABLES
        }
    finally:
        await conn.close()


@pytest.fixture(params=sorted(SERVICES))
async def service(
    request: pytest.FixtureRequest, database: ScratchDatabase, servers: Any, namespace: str
) -> AsyncIterator[tuple[str, FastAPI]]:
    module = SERVICES[request.param]
    settings = settings_for(module.Settings, database, servers, namespace)
    async with running(module.build, settings) as (app, _):
        yield request.param, app


async def test_every_guarded_endpoint_refuses_unsigned_and_unscoped_calls(
    service: tuple[str, FastAPI], database: ScratchDatabase
) -> None:
    name, app = service
    routes = guarded_routes(app)
    assert routes, f"{name} declares no scopes"
    before = await row_counts(database.admin_dsn, name)
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")
    clients: dict[str, httpx.AsyncClient] = {}
    for kind, (department, scopes, organisations) in KINDS.items():
        app_id, secret = await issue_credential(
            database.dsn(name),
            name,
            scopes=scopes,
            department=department,
            name=kind,
            organisations=organisations,
        )
        clients[kind] = await signed_client(app, app_id, secret)
    refused: list[str] = []
    try:
        for route in routes:
            answer = await anonymous.request(route.method, route.path, json={})
            if answer.status_code != 401:
                refused.append(f"unsigned {route.method} {route.path}: {answer.status_code}")
            for kind, (_, scopes, _) in KINDS.items():
                if route.scopes & set(scopes):
                    continue  # this kind may call it: the service's own tests cover that
                answer = await clients[kind].request(route.method, route.path, json={})
                if answer.status_code != 403:
                    refused.append(f"{kind} {route.method} {route.path}: {answer.status_code}")
    finally:
        await anonymous.aclose()
        for client in clients.values():
            await client.aclose()
    assert refused == [], "\n".join(refused)
    after = await row_counts(database.admin_dsn, name)
    after["credentials"] -= len(KINDS)
    after["credential_secrets"] -= len(KINDS)
    assert after == before
