"""Schema migrations with Alembic, one history per service, its version table in its own schema.

Each service's ``migrations/env.py`` is two lines calling :func:`run_env`; revisions are plain SQL
(``op.execute``) because the services use asyncpg, not an ORM. ``python -m shared.migrations
membership`` applies a service's migrations; each service also applies them at start-up.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def run_sql(script: str) -> None:
    """Run a multi-statement SQL script in a revision (asyncpg's simple protocol allows that)."""
    adapted = op.get_bind().connection.dbapi_connection
    adapted.run_async(lambda conn: conn.execute(script))  # type: ignore[union-attr]


def alembic_config(service: str, dsn: str, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.attributes["dsn"] = dsn
    cfg.attributes["schema"] = schema
    return cfg


def upgrade(service: str, dsn: str, schema: str) -> None:
    command.upgrade(alembic_config(service, dsn, schema), "head")


async def upgrade_async(service: str, dsn: str, schema: str) -> None:
    # Alembic is synchronous and runs its own event loop for asyncpg: give it a thread.
    await asyncio.to_thread(upgrade, service, dsn, schema)


def run_env() -> None:
    """Body of every service's ``migrations/env.py``."""
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
