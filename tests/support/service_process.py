"""One service as a real process against the test servers, for tests of what only a process
shows (several HTTP workers, the worker role's port, a Prometheus scraping it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.database import ScratchDatabase
from tests.support.platform import service_environment
from tests.support.ports import free_port
from tests.support.servers import ROOT, Servers
from tests.support.waiting import eventually


@contextmanager
def service_process(
    service: str,
    database: ScratchDatabase,
    servers: Servers,
    namespace: str,
    log: Path,
    *args: str,
    **env: str,
) -> Iterator[str]:
    """``python -m services.<service> *args`` on a free port, its output in ``log``: its URL."""
    port = free_port()
    environment = service_environment(
        service, database.dsn(service), servers.kafka_bootstrap, namespace, port, ""
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}", *args],
            cwd=ROOT,
            env=os.environ | environment | env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def ready(url: str, log: Path) -> None:
    async def answers() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(answers, timeout=90, what=f"{url}/readyz 200 (log: {log})")
