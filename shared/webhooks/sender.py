"""The webhook sender: a runtime worker delivering due ``webhook_deliveries`` rows.

Claiming takes, per subscription, its oldest due row (``FOR UPDATE SKIP LOCKED``, so replicas
never claim the same row) and leases it by pushing ``next_attempt_at`` past the HTTP timeout;
the POST happens outside any transaction. A subscription has at most one delivery in flight
here and its own back-off (``resume_at``), so one slow or failing endpoint occupies one slot and
waits alone, while the others go on. A crash mid-delivery leaves the lease to expire: the row is
sent again (at least once; receivers dedupe on the event id).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx

from shared.auth import signing
from shared.auth.credentials import decrypt
from shared.db import connect
from shared.settings import ServiceSettings
from shared.webhooks.store import channel, url_problem

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)

_CLAIM = """
WITH picked AS (
    SELECT due.id FROM webhook_subscriptions s
    CROSS JOIN LATERAL (
        SELECT d.id FROM webhook_deliveries d
        WHERE d.subscription_id = s.id AND d.status = 'pending' AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at, d.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) due
    WHERE s.deleted_at IS NULL AND s.resume_at <= now() AND NOT (s.id = ANY($2::uuid[]))
    ORDER BY s.resume_at
    LIMIT $1
)
UPDATE webhook_deliveries w
SET attempts = w.attempts + 1, next_attempt_at = now() + make_interval(secs => $3)
FROM picked, webhook_subscriptions s
WHERE w.id = picked.id AND s.id = w.subscription_id
RETURNING w.id, w.subscription_id, w.event_id, w.event_type, w.body, w.attempts,
    s.url, s.secret_encrypted
"""


class WebhookSender:
    """Call it with the runtime (it is a ``Worker``); the knobs are for tests and tuning."""

    def __init__(
        self,
        *,
        poll_seconds: float = 1.0,
        backoff_seconds: float = 5.0,
        max_backoff_seconds: float = 3600.0,
        max_attempts: int = 15,
        timeout_seconds: float = 10.0,
        concurrency: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.poll_seconds = poll_seconds
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_attempts = max_attempts
        self.timeout_seconds = timeout_seconds
        self.concurrency = concurrency
        self.transport = transport
        self.delivered = 0
        self.failed_attempts = 0

    async def __call__(self, runtime: ServiceRuntime) -> None:
        await self.run(runtime.pool, runtime.settings)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row: doubling, capped, with
        ±20 % jitter so endpoints that failed together are not retried in lockstep."""
        base = min(self.backoff_seconds * 2 ** max(failures - 1, 0), self.max_backoff_seconds)
        return base * random.uniform(0.8, 1.2)

    async def run(self, pool: asyncpg.Pool, settings: ServiceSettings) -> None:
        wake = asyncio.Event()
        listener = await self._listen(settings, wake)
        in_flight: dict[str, asyncio.Task[None]] = {}
        # The lease outlives the request's timeout, so no other replica takes a row mid-flight.
        lease = self.timeout_seconds * 2 + 5
        async with httpx.AsyncClient(
            timeout=self.timeout_seconds, transport=self.transport, follow_redirects=False
        ) as http:
            try:
                while True:
                    wake.clear()
                    free = self.concurrency - len(in_flight)
                    rows: list[asyncpg.Record] = []
                    if free > 0:
                        try:
                            rows = await pool.fetch(_CLAIM, free, list(in_flight), lease)
                        except _DB_ERRORS as exc:
                            log.warning("webhook sender could not claim deliveries: %r", exc)
                    for row in rows:
                        job = self._deliver(pool, settings, http, row)
                        in_flight[str(row["subscription_id"])] = asyncio.create_task(job)
                    if len(rows) == free and free > 0:
                        continue  # more may be due: claim again before sleeping
                    await self._wait(wake, in_flight)
                    for sub, task in list(in_flight.items()):
                        if task.done():
                            del in_flight[sub]
                            if not task.cancelled() and task.exception() is not None:
                                log.error("webhook delivery crashed: %r", task.exception())
            finally:
                for task in in_flight.values():
                    task.cancel()
                await asyncio.gather(*in_flight.values(), return_exceptions=True)
                if listener is not None:
                    await listener.close()

    async def _listen(
        self, settings: ServiceSettings, wake: asyncio.Event
    ) -> asyncpg.Connection | None:
        # NOTIFY from the fan-out wakes the sender at once; polling covers a lost listener.
        try:
            conn = await connect(settings.database_url, settings.db_schema)
            await conn.add_listener(channel(settings.db_schema), lambda *_: wake.set())
            return conn
        except _DB_ERRORS as exc:
            log.warning("webhook sender polls only: LISTEN failed (%r)", exc)
            return None

    async def _wait(self, wake: asyncio.Event, in_flight: dict[str, asyncio.Task[None]]) -> None:
        waker = asyncio.create_task(wake.wait())
        try:
            await asyncio.wait(
                [waker, *in_flight.values()],
                timeout=self.poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waker.cancel()

    async def _deliver(
        self,
        pool: asyncpg.Pool,
        settings: ServiceSettings,
        http: httpx.AsyncClient,
        row: asyncpg.Record,
    ) -> None:
        started = time.monotonic()
        status: int | None = None
        error = url_problem(row["url"], settings.environment)
        permanent = error is not None
        if error is None:
            try:
                response = await http.post(
                    row["url"], content=row["body"], headers=self.headers(settings, row)
                )
                status = response.status_code
                if not response.is_success:
                    error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = int((time.monotonic() - started) * 1000)
        try:
            await self._record(pool, row, status, error, permanent, duration_ms)
        except _DB_ERRORS as exc:  # the lease expires and the row is sent again
            log.warning("webhook delivery %s outcome not recorded: %r", row["id"], exc)

    def headers(self, settings: ServiceSettings, row: asyncpg.Record) -> dict[str, str]:
        path, _, query = httpx.URL(row["url"]).raw_path.partition(b"?")
        secret = decrypt(settings.credentials_key, row["secret_encrypted"])
        signed = signing.sign(
            settings.service,
            secret,
            method="POST",
            path=path,
            query=query,
            body=row["body"],
        )
        return signed | {
            "Content-Type": "application/cloudevents+json",
            "X-Gonghui-Event-Id": row["event_id"],
            "X-Gonghui-Event-Type": row["event_type"],
            "X-Gonghui-Delivery-Id": str(row["id"]),
        }

    async def _record(
        self,
        pool: asyncpg.Pool,
        row: asyncpg.Record,
        status: int | None,
        error: str | None,
        permanent: bool,
        duration_ms: int,
    ) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO webhook_attempts (delivery_id, status, error, duration_ms)"
                " VALUES ($1, $2, $3, $4)",
                row["id"],
                status,
                error,
                duration_ms,
            )
            if error is None:
                await self._succeeded(conn, row, status)
            else:
                await self._failed(conn, row, status, error, permanent)

    async def _succeeded(self, conn: asyncpg.Connection, row: Any, status: int | None) -> None:
        await conn.execute(
            "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(),"
            " last_status = $2, last_error = NULL WHERE id = $1",
            row["id"],
            status,
        )
        await conn.execute(
            "UPDATE webhook_subscriptions SET consecutive_failures = 0, resume_at = now()"
            " WHERE id = $1",
            row["subscription_id"],
        )
        self.delivered += 1

    async def _failed(
        self, conn: asyncpg.Connection, row: Any, status: int | None, error: str, permanent: bool
    ) -> None:
        gave_up = permanent or row["attempts"] >= self.max_attempts
        await conn.execute(
            "UPDATE webhook_deliveries SET status = $2, last_status = $3, last_error = $4,"
            " next_attempt_at = now() + make_interval(secs => $5) WHERE id = $1",
            row["id"],
            "failed" if gave_up else "pending",
            status,
            error,
            self.backoff(row["attempts"]),
        )
        failures = await conn.fetchval(
            "UPDATE webhook_subscriptions SET consecutive_failures = consecutive_failures + 1"
            " WHERE id = $1 RETURNING consecutive_failures",
            row["subscription_id"],
        )
        await conn.execute(
            "UPDATE webhook_subscriptions SET resume_at = now() + make_interval(secs => $2)"
            " WHERE id = $1",
            row["subscription_id"],
            self.backoff(failures or 1),
        )
        self.failed_attempts += 1
        if gave_up:
            log.warning(
                "webhook delivery %s gave up after %s attempts: %s",
                row["id"],
                row["attempts"],
                error,
            )


def make_webhook_sender(**knobs: Any) -> WebhookSender:
    """A sender with other knobs than the defaults, e.g. a shorter back-off in tests."""
    return WebhookSender(**knobs)


webhook_sender = WebhookSender()
