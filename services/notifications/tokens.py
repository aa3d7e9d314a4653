"""The access token in Postgres: one holder for every worker, refreshed by one of them at a time.

``refresh`` is compare-and-swap under the token row's lock: a worker that found token T wanting
locks the row, and fetches only if the row still holds T; if another worker already replaced it,
the newer token is returned without a fetch. So a burst of 42001s across every worker and replica,
all naming the same stale token, costs WeChat a single token call. Inside one process an
asyncio lock queues the refreshers first, so they wait in memory rather than each holding a
database connection on the row lock.

``get`` is on every send's path, so the row is read at most once per ``cache_seconds``; a token
cached a little too long is harmless: WeChat answers 40001/42001 and ``refresh`` finds the newer
token already stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg

from services.notifications.wechat import Token
from shared.clock import Clock
from shared.metrics import WECHAT_TOKEN_REFRESHES


class PostgresTokenStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        appid: str,
        *,
        cache_seconds: float = 5.0,
        clock: Clock,
    ) -> None:
        self._pool = pool
        self._appid = appid
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cached: Token | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        # How many tokens this process fetched: the tests' evidence of one refresh per burst.
        self.fetches = 0

    async def get(self) -> Token | None:
        if time.monotonic() - self._read_at < self._cache_seconds:
            return self._cached
        row = await self._pool.fetchrow(
            "SELECT access_token, expires_at FROM wechat_tokens WHERE appid = $1", self._appid
        )
        self._remember(_token(row))
        return self._cached

    async def refresh(self, fetch: Callable[[], Awaitable[Token]], stale: str | None) -> Token:
        async with self._lock:
            cached = self._cached
            if cached is not None and cached.value != stale:
                return cached  # another task of this process refreshed while we queued
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO wechat_tokens (appid) VALUES ($1) ON CONFLICT DO NOTHING",
                    self._appid,
                )
                row = await conn.fetchrow(
                    "SELECT access_token, expires_at FROM wechat_tokens WHERE appid = $1"
                    " FOR UPDATE",
                    self._appid,
                )
                current = _token(row)
                if current is not None and current.value != stale:
                    self._remember(current)  # another worker refreshed: use theirs
                    return current
                # The row stays locked while WeChat answers: the other workers wait for this
                # token instead of fetching their own (which would invalidate this one).
                token = await fetch()
                self.fetches += 1
                WECHAT_TOKEN_REFRESHES.inc()
                await conn.execute(
                    "UPDATE wechat_tokens SET access_token = $2, expires_at = $3,"
                    " refreshed_at = $4, refreshes = refreshes + 1 WHERE appid = $1",
                    self._appid,
                    token.value,
                    token.expires_at,
                    self._clock.now(),
                )
            self._remember(token)
            return token

    def _remember(self, token: Token | None) -> None:
        self._cached = token
        self._read_at = time.monotonic()


def _token(row: asyncpg.Record | None) -> Token | None:
    if row is None or row["access_token"] is None:
        return None
    return Token(row["access_token"], row["expires_at"])
