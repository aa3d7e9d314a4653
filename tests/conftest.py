"""Fixtures every suite finds. Servers start once per run; each test gets its own topics,
consumer groups and rows (a topic namespace and fresh ids), so tests stay independent."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from shared.kafka import delete_topics
from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.servers import Servers, find_servers


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
        await delete_topics(request.getfixturevalue("servers").kafka_bootstrap, prefix)
