"""Wiring of the notifications service."""

from __future__ import annotations

from typing import ClassVar

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from services.notifications import handlers
from shared.http import create_app
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service: ClassVar[str] = "notifications"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_NOTIFICATIONS_", extra="ignore")
    http_port: int = 8004


def build(settings: ServiceSettings) -> FastAPI:
    runtime = ServiceRuntime(settings, follows={"membership.events": handlers.MEMBERSHIP})
    app = create_app(
        settings.service, lifespan=runtime.lifespan, readiness=[runtime.database, runtime.kafka]
    )
    app.state.runtime = runtime
    return app
