"""A service started while Postgres or Kafka is down does not exit: it answers /healthz, is not
ready (/readyz and its API answer 503 not_ready), keeps connecting, and becomes ready with its
workers running once the server answers."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from services.training import main as training
from tests.support.database import ScratchDatabase
from tests.support.proxy import Forwarder
from tests.support.servers import Servers
from tests.support.service import running, settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.netloc.rsplit('@', 1)[0]}@127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.parametrize("down", ["postgres", "kafka"])
async def test_a_service_started_while_a_server_is_down_waits_and_then_serves(
    down: str, database: ScratchDatabase, servers: Servers, namespace: str
) -> None:
    settings = settings_for(training.Settings, database, servers, namespace)
    if down == "postgres":
        pg = urlsplit(settings.database_url)
        gate = Forwarder(pg.hostname or "127.0.0.1", pg.port or 5432)
        settings.database_url = through(settings.database_url, gate.port)
    else:
        host, port = servers.kafka_bootstrap.split(",")[0].rsplit(":", 1)
        gate = Forwarder(host, int(port))
        settings.kafka_bootstrap = f"127.0.0.1:{gate.port}"
    settings.restart_backoff_max_seconds = 0.5
    async with running(training.build, settings) as (app, client):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert f"waiting for {'Postgres' if down == 'postgres' else 'Kafka'}" in ready.text
        if down == "postgres":  # without Kafka the API still serves: its events wait in the outbox
            answer = await client.get("/courses")
            assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
            assert answer.json()["errors"][0]["code"] == "not_ready"
        await gate.open()
        try:

            async def ready_now() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready_now, timeout=30)
            runtime = app.state.runtime
            assert runtime.supervisor.workers  # its background work started
        finally:
            await gate.close()
