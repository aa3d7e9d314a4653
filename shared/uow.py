"""The unit of work: one transaction around a use case, whose events go to the outbox with it.

Repositories hand every aggregate they load or add to :meth:`UnitOfWork.track` (cosmicpython's
``seen``); on :meth:`commit` the events those aggregates recorded, and any a handler published
itself with :meth:`UnitOfWork.publish`, are written to the outbox in the same transaction as the
change, each once. A unit of work opened on a consumer's connection joins the consumer's
transaction, so the inbox row, the change and the events it causes commit together.

The unit of work also carries the service's :class:`~shared.clock.Clock`, so every handler has
the one signature ``async def handler(cmd, uow)`` and reads the time as ``uow.clock.now()``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, Protocol, Self, TypeVar

import asyncpg

from shared import outbox
from shared.clock import Clock, SystemClock
from shared.events.base import EventData
from shared.events.envelope import Envelope

P = ParamSpec("P")
R = TypeVar("R")
DEADLOCK_ATTEMPTS = 3


class Aggregate(Protocol):
    """What a unit of work tracks: anything that records the events it causes."""

    events: list[EventData]


A = TypeVar("A", bound=Aggregate)
U = TypeVar("U", bound="UnitOfWork")


class Track(Protocol):
    """A unit of work's ``track``, handed to the repositories it builds."""

    def __call__(self, aggregate: A, /) -> A: ...


def untracked(aggregate: A) -> A:
    """What a repository used outside a unit of work (a read) does with what it loads."""
    return aggregate


class UncommittedWork(RuntimeError):
    """A unit of work joining a consumer's transaction ended without committing."""


class UnitOfWork:
    def __init__(self, pool: asyncpg.Pool | None, topic: str, clock: Clock | None = None) -> None:
        self.pool = pool
        self.topic = topic
        self.clock: Clock = clock or SystemClock()
        self.events: list[EventData] = []
        # Keyed by identity: a bulk use case may track thousands, each checked once.
        self.seen: dict[int, Aggregate] = {}
        self.correlation_id: str | None = None  # a job's id, when no event caused this work
        self.cause: Envelope | None = None
        self._conn: asyncpg.Connection | None = None
        self._borrowed: asyncpg.Connection | None = None
        self._tx: asyncpg.transaction.Transaction | None = None
        self._begins = True

    @classmethod
    def joining(
        cls, conn: asyncpg.Connection, topic: str, cause: Envelope, clock: Clock | None = None
    ) -> Self:
        """A unit of work inside a consumer's transaction, for the event ``cause``."""
        uow = cls(pool=None, topic=topic, clock=clock)
        uow._borrowed = conn
        uow.cause = cause
        return uow

    def sibling(self) -> Self:
        """Another unit of work like this one (pool, topic, clock, settings), on a connection of
        its own: for a use case that keeps two transactions in flight at once."""
        assert self._conn is None and self._borrowed is None, "open siblings outside 'async with'"
        twin = copy.copy(self)
        twin.events, twin.seen = [], {}
        return twin

    @property
    def conn(self) -> asyncpg.Connection:
        assert self._conn is not None, "use the unit of work inside 'async with'"
        return self._conn

    def in_one_statement(self) -> Self:
        """This unit of work, to be opened without a transaction of its own.

        For a use case whose whole change is one write, made with :meth:`commit_with`: that
        statement writes the change and its events atomically, so BEGIN and COMMIT, two of an
        online join's round trips, are not needed. Its reads each see the moment they run, so
        what they found must be guarded again by the write itself (a unique key, ``ON CONFLICT``).
        """
        assert self._borrowed is None, "a consumer's unit of work is inside its transaction"
        self._begins = False
        return self

    async def __aenter__(self) -> Self:
        self.events = []
        self.seen = {}
        if self._borrowed is not None:
            self._conn = self._borrowed
        else:
            assert self.pool is not None
            self._conn = await self.pool.acquire()
        if not self._begins:
            self.on_enter()
            return self
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
            self._begins = True
        if uncommitted:
            # The consumer would commit the event's inbox row: marked applied with no effect.
            raise UncommittedWork(
                f"the unit of work for event {self.cause.id if self.cause else '?'} ended without"
                " commit(); a handler with nothing to change still commits"
            )

    def track(self, aggregate: A) -> A:
        """Remember an aggregate a repository loaded or added: its events go out on commit."""
        self.seen.setdefault(id(aggregate), aggregate)
        return aggregate

    def publish(self, *events: EventData) -> None:
        """Events no tracked aggregate records (a bulk import's, a projection's)."""
        self.events.extend(events)

    def collect_new_events(self) -> list[EventData]:
        """Every event recorded since the last commit, each once, in the order recorded."""
        for aggregate in self.seen.values():
            self.events.extend(aggregate.events)
            aggregate.events.clear()
        events, self.events = self.events, []
        return events

    def _chain(self) -> dict[str, str | None]:
        """The correlation and causation ids of the events this unit of work writes."""
        cause = self.cause
        return {
            "correlation_id": cause.correlationid if cause else self.correlation_id,
            "causation_id": cause.id if cause else None,
        }

    async def commit(self) -> None:
        events = self.collect_new_events()
        if self._tx is None:
            assert not events, "in one statement, the events go with the write: commit_with()"
            return
        await outbox.record(self.conn, self.topic, events, **self._chain())
        await self._tx.commit()
        self._tx = None

    async def commit_with(self, statement: str, *args: Any) -> Any:
        """Make the last write, ``statement`` (ending in ``RETURNING`` one value), and commit.

        The write and the outbox rows of every event recorded so far go to Postgres as one
        statement; the events are written only if the write returned a row. Answers the returned
        value: None when the write changed nothing (a conflict the caller then reports, its
        events dropped with it).
        """
        changed = await outbox.record_with(
            self.conn, statement, args, self.topic, self.collect_new_events(), **self._chain()
        )
        if changed is not None and self._tx is not None:
            await self._tx.commit()
            self._tx = None
        return changed


def retry_on_deadlock(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run a use case again if Postgres chose its transaction as a deadlock's victim.

    Two transactions that lock the same rows in different orders (a consumer applying a batch of
    events, an API request for one member) can form a cycle; Postgres breaks it by aborting one.
    The aborted one rolled back completely, so running it again from the start is safe.
    """

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for _ in range(DEADLOCK_ATTEMPTS - 1):
            try:
                return await handler(*args, **kwargs)
            except asyncpg.DeadlockDetectedError:
                continue
        return await handler(*args, **kwargs)

    return run


def following(
    kind: type[U], topic: str, clock: Clock, handler: Callable[[Any, U], Awaitable[None]]
) -> Callable[[asyncpg.Connection, EventData, Envelope], Awaitable[None]]:
    """The consumer's handler for an event a service follows: ``handler(event, uow)``, its unit of
    work joining the consumer's transaction (``uow.cause`` is the event's envelope)."""

    async def apply(conn: asyncpg.Connection, event: EventData, envelope: Envelope) -> None:
        await handler(event, kind.joining(conn, topic, envelope, clock))

    apply.__name__ = getattr(handler, "__name__", "apply")
    return apply
