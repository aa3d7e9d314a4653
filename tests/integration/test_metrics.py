"""/metrics of real service processes: several HTTP processes report as one, and a worker process
serves /healthz, /readyz and /metrics on its own port (and no API)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.database import ScratchDatabase
from tests.support.prometheus import samples
from tests.support.servers import Servers
from tests.support.service_process import ready, service_process
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
SERVICE = "union_funds"  # any service: the least busy one


async def test_several_http_processes_report_every_request_whichever_answers(
    database: ScratchDatabase, servers: Servers, namespace: str, tmp_path: Path
) -> None:
    values = tmp_path / "multiprocess"
    values.mkdir()  # prometheus_client wants it to exist before it is imported
    log = tmp_path / "api.log"
    with service_process(
        SERVICE,
        database,
        servers,
        namespace,
        log,
        "--role",
        "api",
        "--workers",
        "2",
        PROMETHEUS_MULTIPROC_DIR=str(values),
    ) as url:
        await ready(url, log)
        route = (("method", "GET"), ("route", "/healthz"), ("service", SERVICE), ("status", "200"))
        count = "gonghui_http_request_duration_seconds_count"
        # A new connection each time: the kernel hands connections to either process.
        for _ in range(40):
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{url}/healthz")).status_code == 200
        writers = {p.name.rsplit("_", 1)[1] for p in values.glob("histogram_*.db")}
        assert len(writers) == 2, f"both processes should have answered: {writers}"
        for _ in range(6):  # each scrape may reach either process: all give the total
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"{url}/metrics")).text
            assert samples(text, count)[route] == 40


async def test_a_worker_process_serves_health_readiness_and_metrics_but_no_api(
    database: ScratchDatabase, servers: Servers, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    with service_process(SERVICE, database, servers, namespace, log, "--role", "worker") as url:
        await ready(url, log)
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).json()["status"] == "alive"
            assert (await client.get("/remittances")).status_code == 404

            async def relay_and_backlog() -> str | None:
                text = (await client.get("/metrics")).text
                up = samples(text, "gonghui_worker_up")
                backlog = samples(text, "gonghui_outbox_backlog")
                relay = (("service", SERVICE), ("worker", "relay"))
                if up.get(relay) == 1 and (("service", SERVICE),) in backlog:
                    return text
                return None

            await eventually(relay_and_backlog, what="relay up and the outbox backlog sampled")
