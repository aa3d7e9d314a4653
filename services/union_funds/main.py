"""Wiring of the union funds service (工会经费): the tax bureau's remittances, city finance's
subsidies, and the view of unions it keeps from membership's organisation events."""

from __future__ import annotations

from typing import ClassVar

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from services.union_funds import api
from services.union_funds.handlers import membership_handlers
from services.union_funds.unit_of_work import UnionFundsUnitOfWork
from shared.clock import Clock, SystemClock
from shared.events.catalogue import published_by
from shared.http import create_app
from shared.routes import wire
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.webhooks import webhook_fanout_handlers, webhook_sender, webhooks_router

OFFERED = published_by("union_funds")


class Settings(ServiceSettings):
    service: ClassVar[str] = "union_funds"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_UNION_FUNDS_", extra="ignore")
    http_port: int = 8005


def build(settings: ServiceSettings, *, clock: Clock | None = None) -> FastAPI:
    assert isinstance(settings, Settings)
    clock = clock or SystemClock(settings.timezone)
    runtime = ServiceRuntime(
        settings,
        follows={
            "membership.events": membership_handlers(settings.events_topic, clock),
            # The tax bureau and finance may subscribe to what this service publishes.
            "union_funds.events": webhook_fanout_handlers(OFFERED),
        },
        workers={"webhooks": webhook_sender},
    )
    app = create_app(settings.service, lifespan=runtime.lifespan, readiness=runtime.readiness)
    wire(app, runtime, UnionFundsUnitOfWork, clock)
    app.include_router(api.router)
    app.include_router(webhooks_router(OFFERED))
    return app
