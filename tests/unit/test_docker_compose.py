"""docker-compose.yml describes the same servers as deploy/local/infra (no server is started)."""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("membership", "mutual_aid", "training", "notifications", "union_funds")
COMPOSE = ROOT / "docker-compose.yml"
LOCAL = ROOT / "deploy" / "local"

# Template keys that legitimately differ: the compose file adds an INTERNAL listener for
# containers, uses its own data path, and the template holds port/dir placeholders.
DIFFERENT_IN_COMPOSE = {
    "controller.quorum.voters",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "log.dirs",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in compose["services"], f"docker-compose.yml has no service {name!r}"
    return compose["services"][name]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _published(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host port, container port) pairs of the short "[ip:]host:container" syntax."""
    pairs = set()
    for port in service.get("ports", []):
        parts = str(port).split(":")
        pairs.add((int(parts[-2]), int(parts[-1])))
    return pairs


def _host_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path for bind mounts given as "./host:/container[:mode]"."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container, *_ = str(volume).split(":")
        if host.startswith(("./", "/")):
            mounts[container] = host
    return mounts


def _template_properties() -> dict[str, str]:
    text = (LOCAL / "kafka" / "server.properties.template").read_text(encoding="utf-8")
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_kafka_runs_kraft_combined_mode(compose: dict[str, Any]) -> None:
    kafka = _service(compose, "kafka")
    env = _env(kafka)
    assert kafka["image"].startswith("apache/kafka:4.")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(env["KAFKA_NODE_ID"] + "@")
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_single_node_replication_is_one(compose: dict[str, Any]) -> None:
    env = _env(_service(compose, "kafka"))
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
    ):
        assert env[key] == "1", key


def test_kafka_settings_match_the_local_template(compose: dict[str, Any]) -> None:
    env = _env(_service(compose, "kafka"))
    for key, value in _template_properties().items():
        if key in DIFFERENT_IN_COMPOSE:
            continue
        env_key = "KAFKA_" + key.replace(".", "_").upper()
        assert env.get(env_key) == value, f"{env_key} should be {value!r} as in the template"


def test_kafka_version_matches_the_maven_pom(compose: dict[str, Any]) -> None:
    pom = ET.parse(LOCAL / "kafka" / "pom.xml")
    version = pom.find("m:properties/m:kafka.version", {"m": "http://maven.apache.org/POM/4.0.0"})
    assert version is not None
    assert _service(compose, "kafka")["image"] == f"apache/kafka:{version.text}"


def test_ports_are_9092_and_5432(compose: dict[str, Any]) -> None:
    assert (9092, 9092) in _published(_service(compose, "kafka"))
    assert (5432, 5432) in _published(_service(compose, "postgres"))


def test_postgres_mounts_the_init_sql_that_exists(compose: dict[str, Any]) -> None:
    postgres = _service(compose, "postgres")
    assert str(postgres["image"]).startswith("postgres:15")
    mounts = _host_mounts(postgres).items()
    init = {c: h for c, h in mounts if c.startswith("/docker-entrypoint-initdb.d/")}
    assert init, "postgres must mount an init script into /docker-entrypoint-initdb.d/"
    for container_path, host_path in init.items():
        assert container_path.endswith(".sql")
        assert (ROOT / host_path).resolve() == (LOCAL / "postgres-init.sql").resolve()
        assert (ROOT / host_path).is_file(), host_path


def test_init_sql_creates_every_service_schema() -> None:
    sql = (LOCAL / "postgres-init.sql").read_text(encoding="utf-8")
    for service in SERVICES:
        assert f"'{service}'" in sql, service
    assert "gonghui_test" in sql
    assert "CREATE SCHEMA IF NOT EXISTS" in sql


def test_topics_service_reads_the_same_topic_list(compose: dict[str, Any]) -> None:
    mounts = _host_mounts(_service(compose, "kafka-topics"))
    assert any(
        (ROOT / host).resolve() == (LOCAL / "topics.txt").resolve() and (ROOT / host).is_file()
        for host in mounts.values()
    )


def test_every_service_of_the_tree_is_in_the_compose_file(compose: dict[str, Any]) -> None:
    built = {p.parent.name for p in (ROOT / "services").glob("*/main.py")}
    assert built == set(SERVICES)
    assert built <= set(compose["services"])


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_deployable_on_its_own(compose: dict[str, Any], name: str) -> None:
    service = _service(compose, name)
    settings = importlib.import_module(f"services.{name}.main").Settings
    prefix = settings.model_config["env_prefix"]
    env = _env(service)
    assert service["command"] == ["python", "-m", f"services.{name}"]
    unknown = {k for k in env if k.removeprefix(prefix).lower() not in settings.model_fields}
    assert not unknown, f"{name}: settings it does not read: {unknown}"
    # Its own role (which can touch only its own schema) over the compose network.
    assert env[f"{prefix}DATABASE_URL"].startswith(f"postgresql://{name}:{name}@postgres:5432/")
    assert env[f"{prefix}KAFKA_BOOTSTRAP"] == "kafka:29092"
    port = int(env[f"{prefix}HTTP_PORT"])
    assert port == settings.model_fields["http_port"].default
    assert (port, port) in _published(service)
    assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
    waits_for = service["depends_on"]
    assert waits_for["postgres"]["condition"] == "service_healthy"
    assert waits_for["kafka-topics"]["condition"] == "service_completed_successfully"


def test_the_image_copies_what_exists_and_installs_the_lock() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert "uv sync --frozen --no-dev" in dockerfile
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_the_simulator_calls_back_to_notifications(compose: dict[str, Any]) -> None:
    simulator = " ".join(_service(compose, "wechat-simulator")["command"])
    assert "--callback-url http://notifications:8004/wechat/callback" in simulator
    env = _env(_service(compose, "notifications"))
    assert "http://wechat-simulator:8090" in env["GONGHUI_NOTIFICATIONS_WECHAT_BASE_URL"]


def test_every_long_running_container_is_started_again_when_it_dies(
    compose: dict[str, Any],
) -> None:
    one_shot = {"kafka-topics"}
    for name, service in compose["services"].items():
        if name not in one_shot:
            assert service.get("restart") == "unless-stopped", name
