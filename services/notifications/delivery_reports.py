"""WeChat's delivery reports (TEMPLATESENDJOBFINISH pushed to the callback), written in groups.

A broadcast makes WeChat push one report per message, hundreds a second. Each push is answered
only once its report is committed (WeChat does not push again after a success), but the pushes
waiting at the same moment share one transaction: the first starts a short collection window,
the others join it, and one INSERT plus one UPDATE write them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from services.notifications.queue import lock_msgids
from shared.clock import Clock

DELIVERED = "success"


@dataclass(frozen=True)
class Report:
    msgid: int
    openid: str
    status: str


class ReportWriter:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        clock: Clock,
        *,
        window_seconds: float = 0.01,
        max_batch: int = 1000,
    ) -> None:
        self._pool = pool  # the runtime's pool exists only once the app has started
        self._clock = clock
        self._window = window_seconds
        self._max_batch = max_batch
        self._waiting: list[tuple[Report, asyncio.Future[None]]] = []
        self._flush: asyncio.Task[None] | None = None

    async def write(self, report: Report) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((report, future))
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._after_window())
        await future

    async def _after_window(self) -> None:
        await asyncio.sleep(self._window)
        while self._waiting:
            batch, self._waiting = (
                self._waiting[: self._max_batch],
                self._waiting[self._max_batch :],
            )
            try:
                await self._store([r for r, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _store(self, reports: list[Report]) -> None:
        now = self._clock.now()
        latest = {r.msgid: r for r in reports}  # WeChat may push one report twice
        msgids = list(latest)
        openids = [r.openid for r in latest.values()]
        statuses = [r.status for r in latest.values()]
        async with self._pool().acquire() as conn, conn.transaction():
            await lock_msgids(conn, msgids)  # see there: the sender may be recording them now
            await conn.execute(
                "INSERT INTO delivery_reports (msgid, openid, status, received_at)"
                " SELECT *, $4::timestamptz FROM unnest($1::bigint[], $2::text[], $3::text[])"
                " ON CONFLICT (msgid) DO UPDATE SET status = excluded.status",
                msgids,
                openids,
                statuses,
                now,
            )
            # A delivery still 'sending' has no msgid yet: the sender applies the report when
            # it records the msgid.
            await conn.execute(
                "UPDATE deliveries d SET report_status = u.status, reported_at = $3,"
                " status = CASE WHEN u.status = $4 THEN 'delivered' ELSE 'failed' END,"
                " updated_at = $3"
                " FROM unnest($1::bigint[], $2::text[]) AS u(msgid, status)"
                " WHERE d.msgid = u.msgid AND d.status IN ('sent', 'delivered', 'failed')",
                msgids,
                statuses,
                now,
                DELIVERED,
            )
