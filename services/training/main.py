"""Wiring of the training service."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from services.training import (
    api,
    api_attendance,
    api_enrolment,
    api_public,
    api_reports,
    handlers,
    viewing_export,
)
from services.training.unit_of_work import TrainingUnitOfWork
from shared.clock import FEDERATION_ZONE, Clock, SystemClock
from shared.events.catalogue import published_by
from shared.http import create_app
from shared.routes import units_of_work
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.webhooks import webhook_fanout_handlers, webhook_sender, webhooks_router

log = logging.getLogger(__name__)
MIB = 1024 * 1024
VIEWING_BATCH_LIMIT = 24 * MIB
DEVELOPMENT_CHECK_IN_SECRET = "gonghui-training-development-check-in-secret"
_MIN_SECRET_BYTES = 32


OFFERED = published_by("training")


class Settings(ServiceSettings):
    service: ClassVar[str] = "training"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_TRAINING_", extra="ignore")
    http_port: int = 8003
    # Keys the per-session check-in codes: whoever holds it can make any session's code.
    check_in_secret: str = DEVELOPMENT_CHECK_IN_SECRET
    # How often overdue offers are expired, due no-show rules applied and reminders sent.
    sweep_seconds: float = 60.0
    # Time staff have after a first session to record attendance before no-shows lose their seat.
    no_show_grace_hours: float = 12.0
    # How long before each session its confirmed members get a reminder on WeChat.
    remind_hours_before: float = 24.0
    # The federation's time zone: completion dates, report years.
    timezone: str = FEDERATION_ZONE

    @model_validator(mode="after")
    def _training_secrets(self) -> Settings:
        if self.environment == "production" and self.check_in_secret == DEVELOPMENT_CHECK_IN_SECRET:
            raise ValueError("check_in_secret is the development secret in production")
        if len(self.check_in_secret.encode()) < _MIN_SECRET_BYTES:
            raise ValueError(f"check_in_secret must be at least {_MIN_SECRET_BYTES} bytes")
        try:  # an unknown zone fails at start-up, not at the first request
            ZoneInfo(self.timezone)
        except ZoneInfoNotFoundError:
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


def build(settings: ServiceSettings, *, clock: Clock | None = None) -> FastAPI:
    assert isinstance(settings, Settings)
    clock = clock or SystemClock(settings.timezone)
    secret = settings.check_in_secret.encode()
    grace = timedelta(hours=settings.no_show_grace_hours)
    remind_ahead = timedelta(hours=settings.remind_hours_before)

    def unit_of_work() -> TrainingUnitOfWork:
        uow = new_uow()
        uow.check_in_secret = secret  # the one setting a use case needs besides the clock
        return uow

    async def sweeper(runtime: ServiceRuntime) -> None:
        while True:
            try:
                await handlers.sweep(unit_of_work, grace, remind_ahead)
            except Exception:  # the next round retries; one bad class must not stop the sweep
                log.exception("training sweep failed")
            await asyncio.sleep(settings.sweep_seconds)

    runtime = ServiceRuntime(
        settings,
        follows={
            "membership.events": handlers.membership_handlers(settings.events_topic, clock),
            "training.events": webhook_fanout_handlers(OFFERED),
        },
        workers={"sweeper": sweeper, "webhooks": webhook_sender},
    )
    new_uow = units_of_work(runtime, TrainingUnitOfWork, clock)
    app = create_app(
        settings.service,
        lifespan=runtime.lifespan,
        readiness=runtime.readiness,
        # A lecture's viewers in one batch (300,000 lines of about 80 bytes); the rest 1 MiB.
        body_limits={r"/classes/[^/]+/viewing-reports/batches$": VIEWING_BATCH_LIMIT},
    )
    app.openapi = viewing_export.documenting(app.openapi)  # type: ignore[method-assign]
    app.state.runtime = runtime
    app.state.unit_of_work = unit_of_work
    for routes in (api, api_enrolment, api_attendance, api_reports, api_public):
        app.include_router(routes.router)
    app.include_router(webhooks_router(OFFERED))
    return app
