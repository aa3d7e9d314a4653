"""``python -m services.<name> [--role all|api|worker|migrate] [--workers N]``: run one service.

Configured from its environment (``GONGHUI_<SERVICE>_ROLE`` and ``_HTTP_WORKERS`` are what the
flags set). ``all`` (the default) is one process doing everything. A busy service runs its HTTP API
as ``--role api --workers N`` (N uvicorn processes sharing the port, each with its own pool) and
its relay, consumers and background workers as one ``--role worker`` process, so event work never
holds up an answer (on a shared host the worker also runs at a lower CPU priority). Every process
first applies the migrations under an advisory lock, in a ``--role migrate`` child (so it never
loads Alembic itself), so processes starting together do not race to create the schema. ``migrate``
applies them and exits: a deployment runs it as a job before the rollout, so a failing migration
stops the rollout instead of crash-looping the new pods.

Every serving process answers HTTP on ``http_port``: a ``worker`` serves only ``/healthz``,
``/readyz`` and ``/metrics`` there (run it on a port of its own when it shares a host with the
API). With ``--workers N`` the N HTTP processes share one multiprocess metrics directory
(``PROMETHEUS_MULTIPROC_DIR``, a fresh temporary one unless set), so ``/metrics`` from any of
them reports all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from shared.consumer import settle_heap
from shared.db import connect, lock_key
from shared.http import create_app
from shared.masking import setup_logging
from shared.metrics import MULTIPROCESS_DIR, prepare_multiprocess
from shared.migrations import upgrade_async
from shared.runtime import FIRST_RETRY_SECONDS, UNREACHABLE
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)
# Names the service module (services.<name>.main) to the app factory of each HTTP worker.
SERVICE_MODULE = "GONGHUI_SERVE_MODULE"
WORKER_NICENESS = 10  # added to a worker process's niceness (0: as the API; 19: the lowest)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Run a Gonghui service.")
    p.add_argument(
        "--role", choices=("all", "api", "worker", "migrate"), help="what this process runs"
    )
    p.add_argument("--workers", type=int, help="HTTP worker processes (--role all or api)")
    return p


def serve(
    build: Callable[[ServiceSettings], FastAPI],
    settings: ServiceSettings,
    argv: list[str] | None = None,
) -> None:
    setup_logging()
    args = _parser().parse_args(argv)
    if args.role == "migrate":  # not a setting: a process that serves nothing, then exits
        asyncio.run(_migrate(settings))
        return
    prefix = str(settings.model_config.get("env_prefix", ""))
    # Flags become environment, so the HTTP worker processes read the same settings; the
    # settings are read again with them (they came from the environment in the first place).
    for name, value in (("ROLE", args.role), ("HTTP_WORKERS", args.workers)):
        if value is not None:
            os.environ[f"{prefix}{name}"] = str(value)
    settings = type(settings)()
    _migrate_apart(build)
    if settings.role == "worker":
        # On a host it shares with the API (one machine, or pods without CPU limits), event work
        # yields the CPU to answers: a catch-up burst then delays events, not a caller.
        os.nice(WORKER_NICENESS)
        _run(operations(build(settings), settings.service), settings)
        return
    single = settings.http_workers == 1
    if not single:  # each worker process builds its own app (and pool) from the environment
        os.environ[SERVICE_MODULE] = build.__module__
        prefix = f"gonghui-{settings.service}-metrics-"
        prepare_multiprocess(os.environ.get(MULTIPROCESS_DIR) or tempfile.mkdtemp(prefix=prefix))
    _run(
        _settled(build(settings)) if single else f"{__name__}:app", settings, settings.http_workers
    )


def _run(app: FastAPI | str, settings: ServiceSettings, workers: int = 1) -> None:
    """Serve ``app``, or with several workers the factory it names, until SIGTERM or SIGINT."""
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep our masking log handler
        access_log=False,
    )


def app() -> FastAPI:
    """The app of each HTTP worker process: ``build(Settings())`` of ``$GONGHUI_SERVE_MODULE``."""
    setup_logging()
    module = importlib.import_module(os.environ[SERVICE_MODULE])
    built: FastAPI = module.build(module.Settings())
    return _settled(built)


def _settled(built: FastAPI) -> FastAPI:
    # An HTTP process's full collections walked every module, route and validator it loaded
    # (tens of milliseconds each), and one could land on any request: frozen, they never do.
    settle_heap()
    return built


def _migrate_apart(build: Callable[[ServiceSettings], FastAPI]) -> None:
    """The migrations in a process of their own (``--role migrate``): Alembic and SQLAlchemy,
    about 30 MB, then never load in this one, which finds its schema at head."""
    package = build.__module__.rpartition(".")[0]  # services.<name>, whose __main__ serves
    done = subprocess.run([sys.executable, "-m", package, "--role", "migrate"], check=False)
    if done.returncode != 0:
        raise SystemExit(f"{package}: migrations failed (exit {done.returncode}); see above why")


async def _migrate(settings: ServiceSettings) -> None:
    lock = lock_key(f"migrate {settings.db_schema}")
    delay = FIRST_RETRY_SECONDS
    while True:  # Postgres may be starting too (a host reboot, a restore): wait for it
        try:
            conn = await connect(settings.database_url, settings.db_schema)
            break
        except UNREACHABLE as exc:
            log.warning(
                "%s: Postgres does not answer (%r); retrying in %.1f s (start it, or fix the"
                " database_url setting)",
                settings.service,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.restart_backoff_max_seconds)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", lock)
        await upgrade_async(settings.service, settings.database_url, settings.db_schema)
    finally:
        await conn.close()  # releases the lock


def operations(service_app: FastAPI, service: str) -> FastAPI:
    """What a ``worker`` process serves: the service's lifespan (relay, consumers, workers) with
    only ``/healthz``, ``/readyz`` (the service's own checks) and ``/metrics``; no API."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with service_app.router.lifespan_context(service_app):
            yield

    return create_app(service, lifespan=lifespan, readiness=service_app.state.readiness)
