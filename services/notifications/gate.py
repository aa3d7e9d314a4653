"""The send gate every sender worker passes: one pace and one pause for all of them.

Pacing: a single row holds the next free send slot. A worker takes a block of ``n`` slots in one
atomic UPDATE (``next_slot := max(next_slot, now) + n / rate``) and sends message ``i`` of its block
no earlier than ``start + i / rate``; so however many workers and replicas run, together they keep
to the configured rate. A gate idle for a while starts again from "now" rather than bursting to
catch up on slots nobody used.

Pause: a quota errcode (45009/45011) or a configuration error stops every worker until a given
time; the row holds it, and each worker also remembers it locally so the rest of a block already
taken stops at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from shared.clock import Clock


@dataclass(frozen=True)
class Block:
    start: datetime
    interval: timedelta

    def slot(self, index: int) -> datetime:
        return self.start + self.interval * index


@dataclass(frozen=True)
class Pause:
    until: datetime
    errcode: int | None
    reason: str


class SendGate:
    def __init__(self, pool: asyncpg.Pool, rate_per_second: float, clock: Clock) -> None:
        if rate_per_second <= 0:
            raise ValueError("the send rate must be positive")
        self._pool = pool
        self.rate = rate_per_second
        self._clock = clock
        self._local: Pause | None = None

    async def take(self, n: int) -> Block | Pause:
        """``n`` consecutive send slots, or the pause in force."""
        now = self._clock.now()
        interval = timedelta(seconds=1 / self.rate)
        row = await self._pool.fetchrow(
            "UPDATE send_gate SET next_slot = greatest(next_slot, $1) + $2 * $3::interval"
            " WHERE id = 1 AND (paused_until IS NULL OR paused_until <= $1)"
            " RETURNING next_slot",
            now,
            n,
            interval,
        )
        if row is None:
            pause = await self.current_pause()
            if pause is not None:
                return pause
            return await self.take(n)  # the pause ended between the two statements
        return Block(row["next_slot"] - interval * n, interval)

    def paused_locally(self) -> Pause | None:
        """A pause this worker ran into since it took its block (no database round trip)."""
        local = self._local
        if local is not None and local.until <= self._clock.now():
            self._local = local = None
        return local

    async def pause(self, until: datetime, errcode: int | None, reason: str) -> None:
        self._local = Pause(until, errcode, reason)
        await self._pool.execute(
            "UPDATE send_gate SET paused_until = $1, pause_errcode = $2, pause_reason = $3"
            " WHERE id = 1 AND (paused_until IS NULL OR paused_until < $1)",
            until,
            errcode,
            reason,
        )

    async def current_pause(self) -> Pause | None:
        row = await self._pool.fetchrow(
            "SELECT paused_until, pause_errcode, pause_reason FROM send_gate WHERE id = 1"
        )
        if row is None or row["paused_until"] is None or row["paused_until"] <= self._clock.now():
            return None
        return Pause(row["paused_until"], row["pause_errcode"], row["pause_reason"] or "")
