"""A real Prometheus (Debian's package) scrapes a real service process: the target is up and the
platform's series arrive, with the alert rules loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.database import ScratchDatabase
from tests.support.prometheus import prometheus_server
from tests.support.servers import ROOT, Servers
from tests.support.service_process import ready, service_process
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_prometheus_scrapes_a_running_service_and_loads_the_alerts(
    database: ScratchDatabase, servers: Servers, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "union_funds.log"
    with service_process("union_funds", database, servers, namespace, log) as url:
        await ready(url, log)
        target = url.removeprefix("http://")
        # deploy/prometheus/local.yml's scrape, aimed at this process, with the same alerts.
        config = yaml.safe_load((ROOT / "deploy/prometheus/local.yml").read_text())
        config["global"]["scrape_interval"] = "1s"
        config["global"]["evaluation_interval"] = "1s"
        config["rule_files"] = [str(ROOT / "deploy/prometheus/alerts.yml")]
        config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        with prometheus_server(tmp_path / "prometheus.yml", tmp_path) as prometheus:
            async with httpx.AsyncClient(base_url=prometheus) as api:

                async def get(path: str, **params: str) -> Any:
                    try:
                        answer = await api.get(path, params=params)
                    except httpx.HTTPError:
                        return None
                    return answer.json()["data"] if answer.status_code == 200 else None

                async def target_up() -> bool:
                    data = await get("/api/v1/targets")
                    active = data["activeTargets"] if data else []
                    return any(
                        t["scrapeUrl"] == f"{url}/metrics" and t["health"] == "up" for t in active
                    )

                await eventually(target_up, timeout=60, what="the service's target up")

                async def series() -> Any:
                    found = await get("/api/v1/query", query='gonghui_worker_up{worker="relay"}')
                    return found and found["result"]

                [relay] = await eventually(series, what="gonghui_worker_up in Prometheus")
                assert relay["metric"]["service"] == "union_funds"
                rules = await get("/api/v1/rules")
                loaded = {r["name"] for g in rules["groups"] for r in g["rules"]}
                assert "GonghuiOutboxStale" in loaded and "GonghuiWorkerDown" in loaded
