"""Fixtures of the integration suites."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.backbone import Probe, backbone_probe
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers


@pytest.fixture
async def probe(
    database: ScratchDatabase, namespace: str, servers: Servers
) -> AsyncIterator[Probe]:
    """A throwaway service schema and topics for backbone tests."""
    async for made in backbone_probe(database, namespace, servers):
        yield made
