"""``python -m services.<name> --role migrate`` (the Kubernetes migrate Job) brings the schema to
the code's revision and exits, serving nothing."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

from shared.migrations import SERVICES_DIR
from tests.support.database import ScratchDatabase
from tests.support.servers import ROOT, Servers


async def test_the_migrate_role_applies_the_migrations_and_exits(
    database: ScratchDatabase, servers: Servers
) -> None:
    dsn = database.dsn("union_funds")
    env = os.environ | {
        "GONGHUI_UNION_FUNDS_DATABASE_URL": dsn,
        "GONGHUI_UNION_FUNDS_KAFKA_BOOTSTRAP": servers.kafka_bootstrap,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.union_funds", "--role", "migrate", cwd=ROOT, env=env
    )
    assert await asyncio.wait_for(proc.wait(), timeout=120) == 0
    heads = {
        p.stem.split("_")[0]
        for p in (SERVICES_DIR / "union_funds/migrations/versions").glob("[0-9]*.py")
    }
    conn = await asyncpg.connect(dsn)
    try:
        revision = await conn.fetchval("SELECT version_num FROM union_funds.alembic_version")
    finally:
        await conn.close()
    assert revision == max(heads)
