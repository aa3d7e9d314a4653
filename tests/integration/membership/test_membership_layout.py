"""Membership split as shared.serve runs it for load (HTTP API processes plus one worker
process), in-process and as real processes against the real servers; and joins racing on one ID
number."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.membership.main import Settings, build
from services.membership.roster_import import RosterJob, create_job
from services.membership.unit_of_work import MembershipUnitOfWork
from shared.auth.client import SignedAuth
from shared.clock import SystemClock
from shared.routes import units_of_work
from shared.serve import WORKER_NICENESS
from tests.integration.membership.conftest import STAFF_SCOPES, Membership
from tests.integration.membership.test_membership_members import joining
from tests.integration.membership.test_membership_roster import csv_bytes, finished, submit_csv
from tests.support.auth import issue_credential, signed_client
from tests.support.database import ScratchDatabase
from tests.support.people import id_number, mobile, name
from tests.support.platform import service_environment
from tests.support.ports import free_port
from tests.support.servers import ROOT, Servers
from tests.support.service import running, settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
SERIAL = 970_000


async def test_the_api_role_answers_and_the_worker_role_relays_and_runs_roster_jobs(
    database: ScratchDatabase, servers: Servers, namespace: str
) -> None:
    api_settings = settings_for(Settings, database, servers, namespace, role="api")
    worker_settings = settings_for(Settings, database, servers, namespace, role="worker")
    # Two worker replicas: both hear of the roster job, exactly one runs it.
    async with (
        running(build, worker_settings) as (worker, _),
        running(build, worker_settings),
        running(build, api_settings) as (api, _),
    ):
        api_runtime, worker_runtime = api.state.runtime, worker.state.runtime
        # What each process runs is what its supervisor started, not what the service offers.
        assert (api_runtime.relay, api_runtime.consumer) == (None, None)
        assert not {"roster_jobs", "webhooks"} & set(api_runtime.supervisor.workers)
        assert worker_runtime.relay is not None and worker_runtime.consumer is not None
        assert {"roster_jobs", "webhooks"} <= set(worker_runtime.supervisor.workers)
        app_id, secret = await issue_credential(
            database.dsn("membership"), "membership", scopes=STAFF_SCOPES
        )
        async with await signed_client(api, app_id, secret) as staff:
            m = Membership(api, staff, namespace, database)
            ids = await m.union_tree()
            answer = await staff.post("/members", json=joining(ids["factory"], SERIAL))
            assert answer.status_code == 201, answer.text
            member_id = answer.json()["id"]

            async def published() -> bool:
                return bool(
                    await api_runtime.pool.fetchval(
                        "SELECT published_at IS NOT NULL FROM outbox WHERE key = $1", member_id
                    )
                )

            await eventually(published)
            rows = [["id_number", "name", "mobile"]]
            rows += [[id_number(SERIAL + i), name(i), mobile(i)] for i in range(1, 3)]
            submitted = await submit_csv(m, ids["depot"], csv_bytes(rows, "utf-8"), "layout-1")
            assert submitted.status_code == 202, submitted.text
            job = await finished(staff, submitted.json())
    assert (job["state"], job["joined"]) == ("done", 2), job


async def test_joins_racing_on_one_id_number_admit_one_and_name_it_to_the_others(
    membership: Membership,
) -> None:
    ids = await membership.union_tree()
    body = joining(ids["factory"], SERIAL + 10)
    racers = (membership.staff.post("/members", json=body) for _ in range(6))
    answers = await asyncio.gather(*racers)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409, 409, 409], [a.text for a in answers]
    [winner] = [a.json()["id"] for a in answers if a.status_code == 201]
    refusals = [a.json() for a in answers if a.status_code == 409]
    assert {r["existing_member_id"] for r in refusals} == {winner}
    refused = [{"field": "id_number", "code": "already_a_member", "message": "already a member"}]
    assert all(r["errors"] == refused for r in refusals)
    assert (
        await membership.app.state.runtime.pool.fetchval(
            "SELECT count(*) FROM members WHERE id_number = $1", body["id_number"]
        )
        == 1
    )


async def test_python_m_runs_api_worker_processes_and_a_worker_process(
    database: ScratchDatabase, servers: Servers, namespace: str
) -> None:
    port = free_port()
    env = os.environ | service_environment(
        "membership", database.dsn("membership"), servers.kafka_bootstrap, namespace, port, ""
    )
    command = [sys.executable, "-m", "services.membership", "--role"]
    # The worker process answers /healthz, /readyz and /metrics on a port of its own.
    worker_env = env | {"GONGHUI_MEMBERSHIP_HTTP_PORT": str(free_port())}
    processes = [
        await asyncio.create_subprocess_exec(*command, role, *extra, cwd=ROOT, env=environ)
        for role, extra, environ in (("api", ["--workers", "2"], env), ("worker", [], worker_env))
    ]
    try:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=5) as probe:

            async def ready() -> bool:
                assert all(p.returncode is None for p in processes), "a process exited"
                try:
                    return (await probe.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=60)
        app_id, secret = await issue_credential(
            database.dsn("membership"), "membership", scopes=STAFF_SCOPES
        )
        async with httpx.AsyncClient(
            base_url=url, auth=SignedAuth(app_id, secret), timeout=10
        ) as staff:
            # union_tree needs only the client: the app runs in the processes above.
            tree = Membership(None, staff, namespace, database)  # type: ignore[arg-type]
            ids = await tree.union_tree()
            answers = [
                await staff.post("/members", json=joining(ids["factory"], SERIAL + 20 + i))
                for i in range(4)  # the answers come from both HTTP workers, in any order
            ]
        assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
        # Event work yields the CPU to answers on a shared host.
        api, worker = (os.getpriority(os.PRIO_PROCESS, p.pid) for p in processes)
        assert worker == min(api + WORKER_NICENESS, 19)
        admin = await asyncpg.connect(database.dsn("membership"))
        try:

            async def all_published() -> bool:
                return not await admin.fetchval(
                    "SELECT count(*) FROM membership.outbox WHERE published_at IS NULL"
                    " AND key = ANY($1)",
                    [a.json()["id"] for a in answers],
                )

            await eventually(all_published)
        finally:
            await admin.close()
    finally:
        for process in processes:
            process.terminate()
        # Each stops within its grace: uvicorn finishes the lifespan (the worker's relay and
        # consumers drain), then a single-process server re-raises the SIGTERM it caught, so its
        # exit status says how it was asked to stop.
        for process in processes:
            assert await asyncio.wait_for(process.wait(), 30) in (0, -signal.SIGTERM)


async def spooled_job(membership: Membership, union: str, batch: str, rows: list[list[str]]) -> str:
    """A roster job recorded as the API records it, but announced to nobody."""
    runtime = membership.app.state.runtime
    async with runtime.pool.acquire() as conn:
        job_id, _ = await create_job(conn, union, batch, "csv", False)
    spooled = Path(runtime.settings.roster_dir) / f"{job_id}.csv"  # where resume finds it too
    spooled.parent.mkdir(parents=True, exist_ok=True)
    spooled.write_bytes(csv_bytes(rows, "utf-8"))
    return job_id


def in_this_process(membership: Membership, job_id: str) -> RosterJob:
    """The job run here, not in a job process of its own (a test can patch it here)."""
    runtime = membership.app.state.runtime
    s = runtime.settings
    return RosterJob(
        runtime.pool,
        units_of_work(runtime, MembershipUnitOfWork, SystemClock()),
        SystemClock(),
        job_id,
        Path(s.roster_dir) / f"{job_id}.csv",
        dsn=s.database_url,
        schema=s.db_schema,
    )


async def test_a_roster_job_that_two_processes_pick_up_runs_once(membership: Membership) -> None:
    ids = await membership.union_tree()
    runtime = membership.app.state.runtime
    rows = [["id_number", "name", "mobile"]]
    rows += [[id_number(SERIAL + 40 + i), name(i), mobile(i)] for i in range(3)]
    job_id = await spooled_job(membership, ids["depot"], "picked-up-twice", rows)

    # Both processes heard of the job at the same moment (a NOTIFY, a poll): both start it.
    jobs = [in_this_process(membership, job_id) for _ in "ab"]
    await asyncio.gather(*(job.run() for job in jobs))

    job = await runtime.pool.fetchrow("SELECT * FROM roster_jobs WHERE id = $1", job_id)
    assert (job["state"], job["rows_read"], job["joined"], job["failure"]) == ("done", 3, 3, None)


async def test_someone_joining_online_while_a_chunk_is_written_does_not_fail_the_roster(
    membership: Membership, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await membership.union_tree()
    serials = [SERIAL + 50 + i for i in range(3)]
    rows = [["id_number", "name", "mobile"]]
    rows += [[id_number(s), name(i), mobile(i)] for i, s in enumerate(serials)]
    write_once = RosterJob._write_once
    raced: list[int] = []

    async def online_join_first(job: RosterJob, chunk: Any) -> None:
        if not raced:  # between comparing the chunk and writing it, one of them joins online
            answer = await membership.staff.post("/members", json=joining(ids["depot"], serials[1]))
            raced.append(answer.status_code)
        await write_once(job, chunk)

    monkeypatch.setattr(RosterJob, "_write_once", online_join_first)
    job_id = await spooled_job(membership, ids["depot"], "raced-1", rows)
    await in_this_process(membership, job_id).run()  # the patched job
    job = (await membership.staff.get(f"/rosters/{job_id}")).json()

    assert raced == [201]
    assert (job["state"], job["joined"], job["rows_read"]) == ("done", 2, 3), job
    holders = await membership.app.state.runtime.pool.fetchval(
        "SELECT count(*) FROM members WHERE id_number = $1", id_number(serials[1])
    )
    assert holders == 1
