"""Supervised workers: a failing worker is started again with back-off, is reported down while it
waits, and its state reaches /readyz and /metrics."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from shared.http import create_app
from shared.supervision import Supervisor, WorkerDown


async def test_a_failing_worker_is_started_again_and_reported_down_meanwhile() -> None:
    supervisor = Supervisor("test-restart", backoff_max=0.2)
    runs = 0
    failed_once = asyncio.Event()
    running_again = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            failed_once.set()
            raise RuntimeError("commit failed: broker gone")
        running_again.set()
        await asyncio.Event().wait()  # a worker's loop runs until it is stopped

    state = supervisor.start("consumer", flaky)
    await failed_once.wait()
    await asyncio.sleep(0)
    with pytest.raises(WorkerDown, match="consumer"):
        supervisor.check()
    await running_again.wait()
    supervisor.check()  # running again
    assert state.restarts == 1 and "broker gone" in (state.last_error or "")
    labels = {"service": "test-restart", "worker": "consumer"}
    assert REGISTRY.get_sample_value("gonghui_worker_restarts_total", labels) == 1
    assert REGISTRY.get_sample_value("gonghui_worker_up", labels) == 1
    await supervisor.stop(grace_seconds=1)
    assert REGISTRY.get_sample_value("gonghui_worker_up", labels) == 0


async def test_a_worker_whose_loop_returns_is_restarted_too() -> None:
    supervisor = Supervisor("test-return", backoff_max=0.1)
    runs = 0
    second_run = asyncio.Event()

    async def returns() -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            second_run.set()
            await asyncio.Event().wait()

    state = supervisor.start("sweeper", returns)
    await second_run.wait()
    assert state.restarts == 1 and "returned" in (state.last_error or "")
    await supervisor.stop(grace_seconds=1)


async def test_stopping_asks_a_worker_to_finish_gracefully() -> None:
    supervisor = Supervisor("test-stop")
    finish = asyncio.Event()
    finished = []

    async def drains() -> None:
        await finish.wait()
        finished.append(True)

    supervisor.start("relay", drains, on_stop=finish.set)
    await asyncio.sleep(0)
    await supervisor.stop(grace_seconds=1)
    assert finished == [True]


def test_readyz_is_503_while_a_required_worker_is_down() -> None:
    supervisor = Supervisor("test-ready")

    async def workers() -> None:
        supervisor.check()

    app = create_app("test", readiness=[workers])
    supervisor.workers["relay"] = type(
        "State", (), {"name": "relay", "required": True, "running": False, "last_error": "x"}
    )()  # type: ignore[assignment]
    answer = TestClient(app).get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["code"] == "not_ready"
