"""Running a service in-process against the real servers, for integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from shared.settings import ServiceSettings
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers


def settings_for(
    settings_cls: type[ServiceSettings],
    database: ScratchDatabase,
    servers: Servers,
    namespace: str,
    **overrides: Any,
) -> ServiceSettings:
    """The service's settings pointed at the test database and this test's topic namespace."""
    service = settings_cls.service
    return settings_cls(
        database_url=database.dsn(service),
        kafka_bootstrap=servers.kafka_bootstrap,
        topic_namespace=namespace,
        relay_poll_seconds=0.2,
        **overrides,
    )


@asynccontextmanager
async def running(
    build: Callable[[ServiceSettings], FastAPI], settings: ServiceSettings
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Start the app's lifespan (migrations, relay, consumers) and give a client to its API."""
    app = build(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield app, client
