"""A unit of work cancelled while its BEGIN is under way gives its connection back to the pool."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shared.db import create_pool
from shared.uow import UnitOfWork
from tests.support.database import ScratchDatabase

pytestmark = pytest.mark.integration


async def test_cancelled_during_begin_the_connection_goes_back_and_the_pool_closes(
    database: ScratchDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await create_pool(database.dsn("training"), "training", min_size=1, max_size=1)
    start = asyncpg.transaction.Transaction.start

    async def begun_then_cancelled(tx: Any) -> None:
        await start(tx)  # the server ran BEGIN...
        raise asyncio.CancelledError  # ...and the worker is stopped before it hears back

    monkeypatch.setattr(asyncpg.transaction.Transaction, "start", begun_then_cancelled)
    with pytest.raises(asyncio.CancelledError):
        async with UnitOfWork(pool, "unused"):
            pass
    monkeypatch.undo()

    # The pool's only connection is back, out of the transaction: usable and closable.
    conn = await asyncio.wait_for(pool.acquire(), 5)  # leaked, it would never come back
    assert not conn.is_in_transaction()
    await pool.release(conn)
    await asyncio.wait_for(pool.close(), 10)
