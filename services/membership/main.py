"""Wiring of the membership service."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import ClassVar

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from services.membership.api import router
from services.membership.api_funds import router as funds_router
from services.membership.roster_import import RosterJobs
from shared.events.catalogue import published_by
from shared.http import create_app
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.webhooks import webhook_fanout_handlers, webhook_sender, webhooks_router

OFFERED = published_by("membership")


class Settings(ServiceSettings):
    service: ClassVar[str] = "membership"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_MEMBERSHIP_", extra="ignore")
    http_port: int = 8001
    # Where submitted rosters wait while their job runs (kept across restarts to resume).
    roster_dir: str = str(Path(tempfile.gettempdir()) / "gonghui-rosters")


def build(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, Settings)
    jobs = RosterJobs(Path(settings.roster_dir))

    async def roster_jobs(runtime: ServiceRuntime) -> None:
        await jobs.resume(runtime.pool, settings.events_topic)
        try:
            await asyncio.Event().wait()  # jobs run as their own tasks; this one only owns them
        finally:
            await jobs.stop()

    runtime = ServiceRuntime(
        settings,
        follows={"membership.events": webhook_fanout_handlers(OFFERED)},
        workers={"roster_jobs": roster_jobs, "webhooks": webhook_sender},
    )
    app = create_app(
        settings.service, lifespan=runtime.lifespan, readiness=[runtime.database, runtime.kafka]
    )
    app.state.runtime = runtime
    app.state.roster_jobs = jobs
    app.include_router(router)
    app.include_router(webhooks_router(OFFERED))
    app.include_router(funds_router)
    return app
