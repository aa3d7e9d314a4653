"""``python -m services.<name> --role migrate`` (the Kubernetes migrate Job) brings the schema to
the code's revision and exits, serving nothing."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

from shared.migrations import SERVICES_DIR, head, upgrade_async
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


async def test_a_schema_at_head_is_checked_without_loading_alembic(
    database: ScratchDatabase, servers: Servers
) -> None:
    # What a serving process does at start once its migrations ran in a process of their own:
    # Alembic and SQLAlchemy would stay loaded in it for good.
    dsn = database.dsn("union_funds")
    await upgrade_async("union_funds", dsn, "union_funds")
    check = (
        "import asyncio, sys; from shared.migrations import upgrade_async;"
        f" asyncio.run(upgrade_async('union_funds', {dsn!r}, 'union_funds'));"
        " print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'sqlalchemy')))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", check, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert (proc.returncode, out.decode().strip()) == (0, "[]")
    assert head("union_funds") == max(
        p.stem.split("_")[0] for p in (SERVICES_DIR / "union_funds/migrations/versions").glob("0*")
    )
