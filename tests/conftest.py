"""Fixtures every suite finds. Servers start once per run; each test gets its own topics,
consumer groups and rows (a topic namespace and fresh ids), so tests stay independent."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.kafka import delete_topics
from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.servers import SERVICES, Servers, find_servers


@pytest.fixture(scope="session")
def servers() -> Servers:
    try:
        return find_servers()
    except Exception as exc:
        if os.environ.get("CI"):
            raise  # in CI a missing server fails the run; it is never skipped
        pytest.skip(f"real Kafka and Postgres are not available: {exc}")


@pytest.fixture(scope="session")
async def database(servers: Servers) -> AsyncIterator[ScratchDatabase]:
    db = await create_database(servers)
    yield db
    await drop_database(db)


@pytest.fixture
async def namespace(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A topic namespace (and consumer-group prefix) of this test's own; its topics go with it."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    yield prefix
    if "servers" in request.fixturenames:
        used = {v.name: v for v in request.node.funcargs.values() if isinstance(v, ScratchDatabase)}
        for db in used.values():
            await forget_unpublished(db, prefix)
        await delete_topics(request.getfixturevalue("servers").kafka_bootstrap, prefix)


async def forget_unpublished(db: ScratchDatabase, prefix: str) -> None:
    """Drop events a test's services left unpublished for its own topics. Databases outlive a test
    (the session's is shared): once the topics are deleted, such rows would hold up the next
    test's relay on the same outbox for good (it never skips an event it cannot publish)."""
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        for schema in SERVICES:
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.outbox"):
                await conn.execute(
                    f"DELETE FROM {schema}.outbox WHERE published_at IS NULL"
                    " AND starts_with(topic, $1)",
                    prefix,
                )
    finally:
        await conn.close()
