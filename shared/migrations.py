"""Schema migrations with Alembic, one history per service, its version table in its own schema.

Each service's ``migrations/env.py`` is two lines calling :func:`run_env`; revisions are plain SQL
(``op.execute``) because the services use asyncpg, not an ORM. ``python -m shared.migrations
membership`` applies a service's migrations; each service also applies them at start-up.

Alembic and SQLAlchemy are imported only when a schema is behind: they hold about 30 MB that a
serving process would keep for its whole life. A schema already at head (a deployment's migrate
job ran, or ``shared.serve`` ran them in a process of their own) is checked with one query.
"""

from __future__ import annotations

import asyncio
import re
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from shared.db import connect

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def run_sql(script: str) -> None:
    """Run a multi-statement SQL script in a revision (asyncpg's simple protocol allows that)."""
    from alembic import op

    adapted = op.get_bind().connection.dbapi_connection
    adapted.run_async(lambda conn: conn.execute(script))  # type: ignore[union-attr]


def alembic_config(service: str, dsn: str, schema: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.attributes["dsn"] = dsn
    cfg.attributes["schema"] = schema
    return cfg


def upgrade(service: str, dsn: str, schema: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(service, dsn, schema), "head")


@cache
def head(service: str) -> str:
    """The service's newest revision: the one no other revision follows (the history is a line)."""
    revisions, followed = set(), set()
    for path in (SERVICES_DIR / service / "migrations" / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if found := _REVISION.search(text):
            revisions.add(found[1])
        if found := _DOWN_REVISION.search(text):
            followed.add(found[1])
    (newest,) = revisions - followed
    return newest


_REVISION = re.compile(r'^revision = "([^"]+)"', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision = "([^"]+)"', re.MULTILINE)


async def at_head(service: str, dsn: str, schema: str) -> bool:
    conn = await connect(dsn, schema)
    try:
        version = await conn.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return False  # a new schema
    finally:
        await conn.close()
    return bool(version == head(service))


async def upgrade_async(service: str, dsn: str, schema: str) -> None:
    if await at_head(service, dsn, schema):
        return
    # Alembic is synchronous and runs its own event loop for asyncpg: give it a thread.
    await asyncio.to_thread(upgrade, service, dsn, schema)


def run_env() -> None:
    """Body of every service's ``migrations/env.py``."""
    from alembic import context
    from sqlalchemy import pool
    from sqlalchemy.ext.asyncio import create_async_engine

    cfg = context.config
    dsn: str = cfg.attributes["dsn"]
    schema: str = cfg.attributes["schema"]
    # SQLAlchemy's asyncpg dialect passes ``ssl`` through; libpq's name for it is ``sslmode``.
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1).replace("sslmode=", "ssl=")

    def migrate(connection: Connection) -> None:
        connection.exec_driver_sql(f'SET search_path TO "{schema}"')
        context.configure(
            connection=connection, version_table_schema=schema, transaction_per_migration=True
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
            await connection.commit()
        await engine.dispose()

    asyncio.run(main())


if __name__ == "__main__":
    import importlib

    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if not (SERVICES_DIR / name / "migrations").is_dir():
        sys.exit(
            "usage: python -m shared.migrations"
            " <membership|mutual_aid|training|notifications|union_funds>"
        )
    settings = importlib.import_module(f"services.{name}.main").Settings()
    upgrade(name, settings.database_url, settings.db_schema)
    print(f"{name}: migrations applied to schema {settings.db_schema}")
