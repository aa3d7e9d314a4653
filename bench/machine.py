"""What the figures were measured on: CPU, cores, memory, kernel, and the versions that matter."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("fastapi", "uvicorn", "asyncpg", "aiokafka", "pydantic", "orjson", "uvloop")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _kafka_version() -> str:
    """The broker's jar in the local infra's cache (deploy/local/infra), else its default."""
    for jar in sorted((ROOT / ".cache/kafka/libs").glob("kafka_2.*-*.jar")):
        return jar.stem.split("-", 1)[1]
    return os.environ.get("GONGHUI_KAFKA_VERSION", "4.1.0 (assumed)")


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


async def describe(pg_admin_dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(pg_admin_dsn)
    try:
        postgres = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    libraries = []
    for name in LIBRARIES:
        try:
            libraries.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            libraries.append(f"{name} absent")
    return {
        "CPU": _cpu_model(),
        "cores": f"{psutil.cpu_count()} logical, {psutil.cpu_count(logical=False)} physical",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": sys.version.split()[0],
        "Postgres": str(postgres),
        "Kafka": _kafka_version(),
        "libraries": ", ".join(libraries),
        "commit": _commit(),
        "load average at start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
