"""Backstop gauges for /metrics, sampled from the service's own table by the runtime's sampler.

A request is open until finance has granted all of it or the fund withdrew the rest (``CLOSED`` in
``backstop.py``); the oldest open one is what the unanswered-backstop alert watches.
"""

from __future__ import annotations

import asyncpg

from services.mutual_aid.backstop import CLOSED
from shared.metrics import BACKSTOP_OLDEST_AGE, BACKSTOP_OPEN


async def sample_backstop(pool: asyncpg.Pool, service: str) -> None:
    row = await pool.fetchrow(
        "SELECT count(*) AS open,"
        " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
        " FROM backstop_requests WHERE status <> ALL($1::text[])",
        sorted(CLOSED),
    )
    assert row is not None
    BACKSTOP_OPEN.set(row["open"])
    BACKSTOP_OLDEST_AGE.set(float(row["age"]))
