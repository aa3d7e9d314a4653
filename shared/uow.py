"""The unit of work: one transaction around a use case, whose events go to the outbox with it.

Handlers append the events their aggregates recorded with :meth:`UnitOfWork.publish`; on
:meth:`commit` they are written to the outbox in the same transaction as the change. A unit of
work opened on a consumer's connection joins the consumer's transaction, so the inbox row, the
change and the events it causes commit together.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import asyncpg

from shared import outbox
from shared.events.base import EventData
from shared.events.envelope import Envelope


class UncommittedWork(RuntimeError):
    """A unit of work joining a consumer's transaction ended without committing."""


class UnitOfWork:
    def __init__(self, pool: asyncpg.Pool | None, topic: str) -> None:
        self.pool = pool
        self.topic = topic
        self.events: list[EventData] = []
        self.cause: Envelope | None = None
        self._conn: asyncpg.Connection | None = None
        self._borrowed: asyncpg.Connection | None = None
        self._tx: asyncpg.transaction.Transaction | None = None

    @classmethod
    def joining(cls, conn: asyncpg.Connection, topic: str, cause: Envelope) -> Self:
        """A unit of work inside a consumer's transaction, for the event ``cause``."""
        uow = cls(pool=None, topic=topic)
        uow._borrowed = conn
        uow.cause = cause
        return uow

    @property
    def conn(self) -> asyncpg.Connection:
        assert self._conn is not None, "use the unit of work inside 'async with'"
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self.events = []
        if self._borrowed is not None:
            self._conn = self._borrowed
        else:
            assert self.pool is not None
            self._conn = await self.pool.acquire()
        self._tx = self._conn.transaction()
        try:
            await self._tx.start()
        except BaseException:
            # Cancelled (a worker stopping) or failed with BEGIN under way: no __aexit__ follows,
            # so give the connection back here, or the pool's close waits for it for ever.
            if self._borrowed is None and self.pool is not None:
                await self.pool.release(self._conn)  # releasing rolls back what BEGIN opened
            self._conn = self._tx = None
            raise
        self.on_enter()
        return self

    def on_enter(self) -> None:
        """Subclasses build their repositories on ``self.conn`` here."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        uncommitted = self._tx is not None and self._borrowed is not None and exc_type is None
        try:
            if self._tx is not None:
                await self._tx.rollback()
        finally:
            if self._borrowed is None and self._conn is not None and self.pool is not None:
                await self.pool.release(self._conn)
            self._conn = self._tx = None
        if uncommitted:
            # The consumer would commit the event's inbox row: marked applied with no effect.
            raise UncommittedWork(
                f"the unit of work for event {self.cause.id if self.cause else '?'} ended without"
                " commit(); a handler with nothing to change still commits"
            )

    def publish(self, *events: EventData) -> None:
        self.events.extend(events)

    async def commit(self) -> None:
        cause = self.cause
        await outbox.record(
            self.conn,
            self.topic,
            self.events,
            correlation_id=cause.correlationid if cause else None,
            causation_id=cause.id if cause else None,
        )
        assert self._tx is not None
        await self._tx.commit()
        self._tx = None
        self.events = []
