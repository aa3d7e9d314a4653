"""The demo (``deploy.demo``) against the compose stack: ``python -m deploy.containers.demo``.

The stack publishes each service's API on ``127.0.0.1:<prefix><port>`` and PostgreSQL on
``<prefix>5432`` (docker-compose.yml, ``GONGHUI_STACK_PORT_PREFIX``, default 1), so the demo's
settings are pointed there; its credentials go to ``var/stack/demo/credentials.json``, apart
from those of ``./gonghui up``'s platform.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "var" / "stack" / "demo"
POSTGRES_PORT = 5432
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/main.py"))


def published(port: int) -> int:
    """The host port the stack publishes a container port on."""
    return int(f"{os.environ.get('GONGHUI_STACK_PORT_PREFIX', '1')}{port}")


def service_port(service: str) -> int:
    """The port a service listens on in its container: its settings' default."""
    settings = importlib.import_module(f"services.{service}.main").Settings
    port: int = settings.model_fields["http_port"].default
    return port


def environment() -> dict[str, str]:
    """Each service's settings as the demo (on the host) reaches them in the stack."""
    env = {"GONGHUI_DEMO_DIR": str(DEMO_DIR)}
    for service in SERVICES:
        prefix = f"GONGHUI_{service.upper()}_"
        env[f"{prefix}HTTP_PORT"] = str(published(service_port(service)))
        env[f"{prefix}DATABASE_URL"] = (
            f"postgresql://{service}:{service}@127.0.0.1:{published(POSTGRES_PORT)}"
            "/gonghui?sslmode=disable"
        )
    return env


if __name__ == "__main__":
    os.environ.update(environment())  # before deploy.demo reads GONGHUI_DEMO_DIR
    demo = importlib.import_module("deploy.demo")
    sys.exit(asyncio.run(demo.main()))
