"""docker-compose.yml and the images of deploy/images describe the platform deploy/local/infra
runs: the same servers, settings, topics and init SQL; every service split in its two roles,
named as deploy/k8s names them; Prometheus scraping each of them (nothing is started here;
tests/e2e/test_stack.py runs the stack for real)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.containers import demo as stack_demo

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("membership", "mutual_aid", "training", "notifications", "union_funds")
COMPOSE = ROOT / "docker-compose.yml"
IMAGES = ROOT / "deploy" / "images"
PROMETHEUS = ROOT / "deploy" / "prometheus"
LOCAL = ROOT / "deploy" / "local"
ROLES = ("api", "worker")
# What ./gonghui up and deploy/local/infra listen on: the stack must never take these.
# And deploy/local/prometheus (9190), and Prometheus' own default.
LOCAL_PORTS = {8001, 8002, 8003, 8004, 8005, 8090, 9092, 9093, 5432, 9190, 9090}


def container(name: str, role: str) -> str:
    """The compose service of one role of a service: the name of its Kubernetes Deployment."""
    return f"{name.replace('_', '-')}-{role}"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in compose["services"], f"docker-compose.yml has no service {name!r}"
    service: dict[str, Any] = compose["services"][name]
    return service


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _substituted(text: str) -> str:
    """Compose's ${VAR:-default} with the defaults (the variables are unset in this test)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def _published(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host port, container port) pairs of the short "[ip:]host:container" syntax."""
    pairs = set()
    for port in service.get("ports", []):
        parts = _substituted(str(port)).split(":")
        pairs.add((int(parts[-2]), int(parts[-1])))
    return pairs


def _dockerfile(name: str) -> str:
    return (IMAGES / f"{name}.Dockerfile").read_text(encoding="utf-8")


def _copied(dockerfile: str) -> list[str]:
    """Sources of COPY lines (continuations joined), leaving out copies between stages."""
    joined = dockerfile.replace("\\\n", " ")
    sources = []
    for line in joined.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += words[1:-1]
    return sources


@pytest.mark.parametrize("image", ["app", "kafka", "postgres", "prometheus"])
def test_every_image_copies_what_exists_runs_as_no_root_and_checks_its_health(image: str) -> None:
    dockerfile = _dockerfile(image)
    for source in _copied(dockerfile):
        if source.startswith((".cache/", "certs/")):  # fetched by infra; the host's CAs
            continue
        assert (ROOT / source).exists(), f"{image}.Dockerfile copies missing {source}"
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and "root" not in users, image
    assert "HEALTHCHECK" in dockerfile, image
    assert re.search(r"^ARG BASE=", dockerfile, re.MULTILINE), "the base is an ARG"


def test_the_app_image_installs_the_lock() -> None:
    assert "uv sync --frozen --no-dev" in _dockerfile("app")


def test_kafka_and_postgres_images_use_the_files_deploy_local_infra_uses() -> None:
    kafka = _copied(_dockerfile("kafka"))
    for used in ("deploy/local/topics.txt", "deploy/local/kafka/server.properties.template"):
        assert used in kafka
    assert ".cache/kafka/libs" in kafka  # the jars infra fetched with Maven
    assert "deploy/local/postgres-init.sql" in _copied(_dockerfile("postgres"))


def test_the_stack_publishes_no_port_the_local_platform_uses(compose: dict[str, Any]) -> None:
    published = {
        host for service in compose["services"].values() for host, _ in _published(service)
    }
    assert published
    assert not published & LOCAL_PORTS
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), "loopback only"


def test_init_sql_creates_every_service_schema() -> None:
    sql = (LOCAL / "postgres-init.sql").read_text(encoding="utf-8")
    for service in SERVICES:
        assert f"'{service}'" in sql, service
    assert "gonghui_test" in sql
    assert "CREATE SCHEMA IF NOT EXISTS" in sql


def test_every_service_of_the_tree_is_in_the_compose_file_in_both_roles(
    compose: dict[str, Any],
) -> None:
    built = {p.parent.name for p in (ROOT / "services").glob("*/main.py")}
    assert built == set(SERVICES)
    assert {container(s, role) for s in built for role in ROLES} <= set(compose["services"])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_role_is_deployable_on_its_own(
    compose: dict[str, Any], name: str, role: str
) -> None:
    service = _service(compose, container(name, role))
    settings = importlib.import_module(f"services.{name}.main").Settings
    prefix = settings.model_config["env_prefix"]
    env = _env(service)
    assert service["image"] == f"localhost/gonghui/{name}:latest"
    assert service["command"] == ["python", "-m", f"services.{name}", "--role", role]
    unknown = {k for k in env if k.removeprefix(prefix).lower() not in settings.model_fields}
    assert not unknown, f"{name}: settings it does not read: {unknown}"
    # Its own role (which can touch only its own schema) over the compose network.
    assert env[f"{prefix}DATABASE_URL"].startswith(f"postgresql://{name}:{name}@postgres:5432/")
    assert env[f"{prefix}KAFKA_BOOTSTRAP"] == "kafka:9092"
    port = int(env[f"{prefix}HTTP_PORT"])
    assert port == settings.model_fields["http_port"].default  # what the health check asks
    if role == "api":
        assert {container for _, container in _published(service)} == {port}
    else:
        assert not service.get("ports"), "a worker answers only probes and metrics"
    waits_for = service["depends_on"]
    assert waits_for["postgres"]["condition"] == "service_healthy"
    assert waits_for["kafka-topics"]["condition"] == "service_completed_successfully"


def test_the_demo_reaches_the_ports_the_stack_publishes(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GONGHUI_STACK_PORT_PREFIX", raising=False)
    env = stack_demo.environment()
    for name in SERVICES:
        prefix = f"GONGHUI_{name.upper()}_"
        host = int(env[f"{prefix}HTTP_PORT"])
        assert host in {h for h, _ in _published(_service(compose, container(name, "api")))}
        assert (
            f"127.0.0.1:{next(iter(_published(_service(compose, 'postgres'))))[0]}/"
            in (env[f"{prefix}DATABASE_URL"])
        )


def test_the_simulator_calls_back_to_notifications(compose: dict[str, Any]) -> None:
    simulator = " ".join(_service(compose, "wechat-simulator")["command"])
    assert "--callback-url http://notifications-api:8004/wechat/callback" in simulator
    env = _env(_service(compose, "notifications-api"))
    assert "http://wechat-simulator:8090" in env["GONGHUI_NOTIFICATIONS_WECHAT_BASE_URL"]


def test_every_long_running_container_is_started_again_when_it_dies(
    compose: dict[str, Any],
) -> None:
    one_shot = {"kafka-topics"}
    for name, service in compose["services"].items():
        if name not in one_shot:
            assert service.get("restart") == "unless-stopped", name


def test_prometheus_scrapes_every_api_and_worker_container_by_its_compose_name(
    compose: dict[str, Any],
) -> None:
    config = yaml.safe_load((PROMETHEUS / "compose.yml").read_text(encoding="utf-8"))
    targets = {
        target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    expected = set()
    for name in SERVICES:
        settings = importlib.import_module(f"services.{name}.main").Settings
        port = settings.model_fields["http_port"].default
        for role in ROLES:
            _service(compose, container(name, role))
            expected.add(f"{container(name, role)}:{port}")
    assert targets == expected


def test_prometheus_runs_with_the_stack_config_and_the_alert_rules(
    compose: dict[str, Any],
) -> None:
    prometheus = _service(compose, "prometheus")
    mounts = {m.split(":")[1]: m.split(":")[0] for m in prometheus["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/compose.yml"
    rules = yaml.safe_load((PROMETHEUS / "compose.yml").read_text(encoding="utf-8"))["rule_files"]
    for rule_file in rules:  # relative to the configuration's directory
        assert mounts[f"/etc/prometheus/{rule_file}"] == f"./deploy/prometheus/{rule_file}"
        assert (PROMETHEUS / rule_file).exists()
    assert {container for _, container in _published(prometheus)} == {9090}
