"""The e2e suite runs every service as its own process, together, once per test run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support.database import ScratchDatabase
from tests.support.platform import Platform, launch_platform, wait_ready
from tests.support.servers import ROOT, SERVICES, Servers


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
