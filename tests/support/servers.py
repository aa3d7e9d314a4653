"""Finding the real Kafka and Postgres for a test run.

In order: environment variables pointing at running servers win; else testcontainers when a
Docker engine answers; else the project's own ``deploy/local/infra up``. In CI a server that
cannot be had fails the run: it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("membership", "mutual_aid", "training", "notifications", "union_funds")


@dataclass
class Servers:
    kafka_bootstrap: str
    # May create databases and act for the service roles (deploy/local/postgres-init.sql).
    pg_admin_dsn: str
    pg_host: str
    pg_port: int


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


def _from_environment() -> Servers | None:
    kafka = os.environ.get("GONGHUI_TEST_KAFKA_BOOTSTRAP")
    admin = os.environ.get("GONGHUI_TEST_PG_ADMIN_DSN")
    if not (kafka and admin):
        return None
    host = os.environ.get("GONGHUI_TEST_PG_HOST", "127.0.0.1")
    return Servers(kafka, admin, host, int(os.environ.get("GONGHUI_TEST_PG_PORT", "5432")))


def _from_testcontainers() -> Servers:  # pragma: no cover - needs a Docker engine
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka = KafkaContainer("apache/kafka:4.1.0").with_kraft()
    kafka.start()
    pg = PostgresContainer(
        "postgres:15", username="postgres", password="postgres", dbname="gonghui"
    )
    pg.with_volume_mapping(
        str(ROOT / "deploy/local/postgres-init.sql"), "/docker-entrypoint-initdb.d/init.sql"
    )
    pg.start()
    host, port = pg.get_container_host_ip(), int(pg.get_exposed_port(5432))
    return Servers(
        kafka.get_bootstrap_server(),
        f"postgresql://gonghui_test:gonghui_test@{host}:{port}/gonghui",
        host,
        port,
    )


def _from_local_infra() -> Servers:
    script = ROOT / "deploy/local/infra"
    done = subprocess.run([str(script), "up"], check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"`{script} up` failed (exit {done.returncode}); its output above says why, and the "
            "logs are under var/log/. Or point GONGHUI_TEST_KAFKA_BOOTSTRAP and "
            "GONGHUI_TEST_PG_ADMIN_DSN at running servers."
        )
    port = int(os.environ.get("GONGHUI_PG_PORT", "5432"))
    return Servers(
        f"127.0.0.1:{os.environ.get('GONGHUI_KAFKA_PORT', '9092')}",
        f"postgresql://gonghui_test:gonghui_test@127.0.0.1:{port}/gonghui",
        "127.0.0.1",
        port,
    )


def find_servers() -> Servers:
    found = _from_environment()
    if found:
        return found
    if _docker_answers():
        return _from_testcontainers()
    return _from_local_infra()
