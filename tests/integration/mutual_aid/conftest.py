"""A scratch database per test: the fund is one aggregate per schema, so sharing the run's
database would mix one test's money into another's sums."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.servers import Servers


@pytest.fixture
async def fund_database(servers: Servers) -> AsyncIterator[ScratchDatabase]:
    db = await create_database(servers)
    yield db
    await drop_database(db)
