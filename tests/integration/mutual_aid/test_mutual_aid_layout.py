"""Mutual aid split as compose and Kubernetes run it: an API process (``--role api``) and a worker
process (``--role worker``) on one database. An approval on the API reaches the payout worker in
the other process through Postgres (NOTIFY on commit), not through the API's own memory."""

from __future__ import annotations

import functools
from datetime import date

import pytest

from services.mutual_aid.main import Settings, build
from tests.integration.mutual_aid.harness import (
    CONTRIBUTION,
    OFFICE,
    YEAR,
    MutualAid,
    clock_at,
    scene,
)
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers
from tests.support.service import running, settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
# Far beyond the test's wait: a claim paid within it was paid because the worker was notified.
POLL_SECONDS = 300.0
PROMPTLY = 10.0


async def test_an_approval_on_the_api_process_is_paid_by_the_worker_process_at_once(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    clock = clock_at(date(YEAR, 7, 1))
    settings = {"payout_poll_seconds": POLL_SECONDS, "backstop_batch_minutes": 10}
    api_settings = settings_for(Settings, fund_database, servers, namespace, role="api", **settings)
    worker_settings = settings_for(
        Settings, fund_database, servers, namespace, role="worker", **settings
    )
    assert isinstance(api_settings, Settings)
    service_build = functools.partial(build, clock=clock)
    async with (
        running(service_build, worker_settings) as (worker, _),
        running(service_build, api_settings) as (api, anonymous),
    ):
        assert "payouts" not in api.state.runtime.supervisor.workers
        assert "payouts" in worker.state.runtime.supervisor.workers
        service = MutualAid(
            api, anonymous, anonymous, anonymous, clock, api_settings, fund_database, servers
        )
        service.office = await service.client(*OFFICE)
        try:
            # One member's claim of 5.01 under review; the fund holds 120.00.
            _, [claim_id] = await scene(service, 1, CONTRIBUTION)
            approved = await service.office.post(
                f"/claims/{claim_id}/approve", json={"officer": "officer-wang"}
            )
            assert approved.status_code == 200, approved.text
            assert approved.json()["state"] == "approved"

            async def paid() -> bool:
                return (await service.claim(claim_id))["state"] == "paid"

            await eventually(paid, timeout=PROMPTLY, what="the approved claim paid")
        finally:
            for client in service._clients:
                await client.aclose()
