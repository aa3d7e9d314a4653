"""Every service's first migration creates the integration tables in its own schema."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from alembic import command

from shared.migrations import alembic_config
from tests.support.database import ScratchDatabase
from tests.support.servers import SERVICES

pytestmark = pytest.mark.integration

TABLES = {
    "outbox",
    "inbox",
    "credentials",
    "credential_secrets",
    "auth_nonces",
    "audit_log",
    "webhook_subscriptions",
    "webhook_deliveries",
    "webhook_attempts",
}


@pytest.mark.parametrize("service", SERVICES)
async def test_first_migration_creates_the_tables_as_the_service_role(
    database: ScratchDatabase, service: str
) -> None:
    schema = f"first_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database.admin_dsn)
    try:
        await admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {service}")
    finally:
        await admin.close()
    dsn = database.dsn(service)
    await asyncio.to_thread(command.upgrade, alembic_config(service, dsn, schema), "0001")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1", schema
        )
    finally:
        await conn.close()
    owners = {r["tablename"]: r["tableowner"] for r in rows}
    assert owners.keys() >= TABLES
    assert {owners[t] for t in TABLES} == {service}
