"""A database migrated step by step, as a long-running installation was, ends up with exactly the
schema of one migrated at once today: no migration depends on code that changed since."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from shared.migrations import alembic_config
from tests.support.database import create_database, drop_database
from tests.support.servers import SERVICES, Servers

pytestmark = pytest.mark.integration

CATALOGUE = """
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = $1
UNION ALL
SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' '
       || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = $1::regnamespace
UNION ALL
SELECT 'function ' || p.proname || ' ' || md5(p.prosrc) FROM pg_proc p
WHERE p.pronamespace = $1::regnamespace
ORDER BY 1
"""


async def schema_of(dsn: str, schema: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r[0] for r in await conn.fetch(CATALOGUE, schema)]
    finally:
        await conn.close()


def migrate_step_by_step(service: str, dsn: str) -> int:
    config = alembic_config(service, dsn, service)
    revisions = list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))
    for revision in revisions:
        command.upgrade(config, revision.revision)
    return len(revisions)


async def test_step_by_step_and_at_once_give_the_same_schema(servers: Servers) -> None:
    stepwise, at_once = await create_database(servers), await create_database(servers)
    try:
        for service in SERVICES:
            steps = await asyncio.to_thread(migrate_step_by_step, service, stepwise.dsn(service))
            assert steps >= 2
            config = alembic_config(service, at_once.dsn(service), service)
            await asyncio.to_thread(command.upgrade, config, "head")
            one = await schema_of(stepwise.admin_dsn, service)
            other = await schema_of(at_once.admin_dsn, service)
            assert one and one == other, service
    finally:
        await drop_database(stepwise)
        await drop_database(at_once)
