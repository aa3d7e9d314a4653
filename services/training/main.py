"""Wiring of the training service."""

from __future__ import annotations

from typing import ClassVar

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from shared.http import create_app
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service: ClassVar[str] = "training"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_TRAINING_", extra="ignore")
    http_port: int = 8003


def build(settings: ServiceSettings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    app = create_app(
        settings.service, lifespan=runtime.lifespan, readiness=[runtime.database, runtime.kafka]
    )
    app.state.runtime = runtime
    return app
