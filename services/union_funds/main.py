"""Wiring of the union funds service (工会经费): the tax bureau's remittances, city finance's
subsidies, and the view of unions it keeps from membership's organisation events."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from services.union_funds import api
from services.union_funds.handlers import membership_handlers
from shared.events.catalogue import published_by
from shared.http import create_app
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.webhooks import webhook_fanout_handlers, webhook_sender, webhooks_router

OFFERED = published_by("union_funds")


class Settings(ServiceSettings):
    service: ClassVar[str] = "union_funds"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_UNION_FUNDS_", extra="ignore")
    http_port: int = 8005
    # The federation's calendar: "today" for periods that have begun, payment dates, and which
    # unions stand (a union dissolved on a day no longer stands on it).
    timezone: str = "Asia/Shanghai"

    @model_validator(mode="after")
    def _known_zone(self) -> Settings:
        try:  # an unknown zone fails at start-up, not at the first request
            ZoneInfo(self.timezone)
        except ZoneInfoNotFoundError:
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


def build(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, Settings)
    zone = ZoneInfo(settings.timezone)

    def today() -> date:
        return datetime.now(zone).date()

    runtime = ServiceRuntime(
        settings,
        follows={
            "membership.events": membership_handlers(settings.events_topic),
            # The tax bureau and finance may subscribe to what this service publishes.
            "union_funds.events": webhook_fanout_handlers(OFFERED),
        },
        workers={"webhooks": webhook_sender},
    )
    app = create_app(settings.service, lifespan=runtime.lifespan, readiness=runtime.readiness)
    app.state.runtime = runtime
    app.state.today = today  # tests may put another calendar here
    app.include_router(api.router)
    app.include_router(webhooks_router(OFFERED))
    return app
