"""The e2e suite runs every service as its own process, together, once per test run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.platform import Platform, launch_platform, wait_ready
from tests.support.servers import ROOT, SERVICES, Servers


@pytest.fixture(scope="session")
async def database(servers: Servers) -> AsyncIterator[ScratchDatabase]:
    """The platform's own database, not the one the other suites share: its processes (relays,
    roster jobs, consumers) run all session and would otherwise work on those tests' rows."""
    db = await create_database(servers)
    yield db
    await drop_database(db)


@pytest.fixture(scope="session")
async def platform(servers: Servers, database: ScratchDatabase) -> AsyncIterator[Platform]:
    namespace = f"e2e{uuid.uuid4().hex[:6]}."
    started = launch_platform(
        {s: database.dsn(s) for s in SERVICES},
        servers.kafka_bootstrap,
        namespace,
        ROOT / "var" / "log" / "e2e",
    )
    await wait_ready(started)
    yield started
    started.stop()
