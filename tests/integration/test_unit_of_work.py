"""The unit of work against a real Postgres: a cancelled BEGIN, a commit in one statement."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from shared import backbone_schema
from shared.db import create_pool
from shared.events.membership import MemberJoined
from shared.uow import UnitOfWork
from tests.support.database import ScratchDatabase
from tests.unit.shared.test_envelope import joined

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


async def _backbone_pool(database: ScratchDatabase, size: int) -> asyncpg.Pool:
    """A pool on a schema of its own holding only the backbone's tables (outbox, inbox)."""
    schema = f"uow_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database.admin_dsn)
    await admin.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}")
    await admin.execute("".join(backbone_schema.STEPS))
    await admin.close()
    return await create_pool(database.admin_dsn, schema, min_size=size, max_size=size)


class _Joining(UnitOfWork):
    """A unit of work whose aggregate is one event, as a repository would track it."""

    def record(self, member_id: str) -> None:
        self.publish(joined().model_copy(update={"member_id": member_id}))


_ONCE = (
    "INSERT INTO inbox (consumer, event_id, event_type) VALUES ('uow-test', $1, 'x')"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


@pytest.mark.parametrize("one_statement", [True, False])
async def test_commit_with_writes_the_events_only_with_the_write(
    database: ScratchDatabase, one_statement: bool
) -> None:
    pool = await _backbone_pool(database, size=1)
    key = f"uow-{uuid.uuid4().hex}"
    try:
        outcomes = []
        for _ in range(2):  # the second write finds the row there and changes nothing
            uow = _Joining(pool, "membership.events")
            async with uow.in_one_statement() if one_statement else uow:
                uow.record(key)
                outcomes.append(await uow.commit_with(_ONCE, key))
        assert outcomes == [key, None]
        written = await pool.fetch("SELECT type FROM outbox WHERE key = $1", key)
        assert [r["type"] for r in written] == [MemberJoined.type]
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
    finally:
        await pool.close()


async def test_a_sibling_keeps_a_transaction_of_its_own_in_flight(
    database: ScratchDatabase,
) -> None:
    """Two units of work of one use case at once: each has its own connection and transaction,
    and commits only its own events; one rolling back leaves the other's."""
    pool = await _backbone_pool(database, size=2)
    first = _Joining(pool, "membership.events")
    second = first.sibling()
    kept, dropped = f"kept-{uuid.uuid4().hex}", f"dropped-{uuid.uuid4().hex}"
    try:
        assert (second.pool, second.topic, second.clock) == (first.pool, first.topic, first.clock)
        with pytest.raises(RuntimeError, match="given up"):
            async with first, second:
                assert first.conn is not second.conn
                first.record(kept)
                second.record(dropped)
                await first.commit()
                raise RuntimeError("given up")  # the second is left uncommitted
        keys = await pool.fetch("SELECT key FROM outbox WHERE key = ANY($1)", [kept, dropped])
        assert [r["key"] for r in keys] == [kept]
    finally:
        await pool.close()
