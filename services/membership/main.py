"""Wiring of the membership service.

Roster jobs are started by the process that does the service's background work (``role`` "all"
or "worker", see :mod:`shared.serve`), each in a child process of its own: the API records a job
and announces it on a NOTIFY channel, and that process picks it up (also at start, and every
``roster_poll_seconds`` in case a notification was lost). Several such processes may run: a
Postgres lock per job lets exactly one of them run it.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

import asyncpg
from fastapi import FastAPI

from services.membership.api import router
from services.membership.api_rosters import ROSTER_JOBS_CHANNEL
from services.membership.api_rosters import router as rosters_router
from services.membership.roster_files import CSV_UPLOAD_LIMIT, JSON_BATCH_LIMIT
from services.membership.roster_import import RosterJobs
from services.membership.settings import Settings
from services.membership.unit_of_work import MembershipUnitOfWork
from shared.clock import Clock, SystemClock
from shared.db import connect
from shared.events.catalogue import published_by
from shared.http import create_app
from shared.routes import units_of_work, wire
from shared.runtime import ServiceRuntime, Worker
from shared.settings import ServiceSettings
from shared.webhooks import webhook_fanout_handlers, webhook_sender, webhooks_router

OFFERED = published_by("membership")
log = logging.getLogger(__name__)


def _roster_jobs(settings: Settings, clock: Clock) -> Worker:
    async def run(runtime: ServiceRuntime) -> None:
        jobs = RosterJobs(settings, units_of_work(runtime, MembershipUnitOfWork, clock), clock)
        wake = asyncio.Event()
        listener = await connect(settings.database_url, settings.db_schema)
        await listener.add_listener(
            f"{settings.db_schema}{ROSTER_JOBS_CHANNEL}", lambda *_: wake.set()
        )
        try:
            while True:
                wake.clear()
                try:
                    await jobs.resume(runtime.pool)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("roster jobs not picked up (%r); retrying", exc)
                with suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), settings.roster_poll_seconds)
        finally:
            await jobs.stop()
            await listener.close()

    return run


def build(settings: ServiceSettings, *, clock: Clock | None = None) -> FastAPI:
    assert isinstance(settings, Settings)
    clock = clock or SystemClock(settings.timezone)
    runtime = ServiceRuntime(
        settings,
        follows={"membership.events": webhook_fanout_handlers(OFFERED)},
        workers={"roster_jobs": _roster_jobs(settings, clock), "webhooks": webhook_sender},
    )
    app = create_app(
        settings.service,
        lifespan=runtime.lifespan,
        readiness=runtime.readiness,
        # Rosters are the one large thing sent here: a city-wide CSV of 657,000 members is about
        # 40 MB, a JSON batch of 100,000 rows about 14 MB (the sums are in roster_files). The
        # upload streams to disk; everything else keeps the 1 MiB default.
        body_limits={
            r"/organisations/[^/]+/rosters$": CSV_UPLOAD_LIMIT,
            r"/organisations/[^/]+/rosters/batch$": JSON_BATCH_LIMIT,
        },
    )
    wire(app, runtime, MembershipUnitOfWork, clock)
    app.include_router(router)
    app.include_router(rosters_router)
    app.include_router(webhooks_router(OFFERED))
    return app
