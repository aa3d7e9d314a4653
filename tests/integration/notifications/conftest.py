"""Fixtures of the notifications suite: a database of each test's own (the sender's queue, token
and send gate are per database, so tests cannot take each other's messages) and a fresh WeChat
simulator per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.integration.notifications.harness import (
    Ids,
    WeChat,
    wechat_simulator,
)
from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.servers import Servers


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[ScratchDatabase]:
    database = await create_database(servers)
    yield database
    await drop_database(database)


@pytest.fixture
async def wechat() -> AsyncIterator[WeChat]:
    async with wechat_simulator() as simulator:
        yield simulator


@pytest.fixture
def ids() -> Ids:
    return Ids(uuid.uuid4().hex[:6])
