"""Every setting a deployment must give a service is given by the Kubernetes manifests (both
overlays) and by docker-compose.yml, and neither names a setting the service does not have.

"Must give": a setting without a default, where the service runs (its database, Kafka, the
address it listens on), and its secrets and credentials, whose defaults are development values."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from deploy.k8s.render import OVERLAYS, ROOT, render

SERVICES = ("membership", "mutual_aid", "training", "notifications", "union_funds")
# Where the service runs: the defaults are a developer's loopback.
WHERE = {"database_url", "kafka_bootstrap", "http_host"}
# Secrets and the credentials of the WeChat account: development values or empty by default.
SECRET_ENDINGS = ("_key", "_secret", "_token", "_appid")
# Only the manifests must say which environment they are (production refuses development
# secrets); compose is development, the default.
MANIFESTS_ONLY = {"environment"}


def settings_class(service: str) -> type[BaseSettings]:
    cls: type[BaseSettings] = importlib.import_module(f"services.{service}.main").Settings
    return cls


def prefix(service: str) -> str:
    return f"GONGHUI_{service.upper()}_"


def required(service: str) -> set[str]:
    fields = settings_class(service).model_fields
    return {
        name
        for name, field in fields.items()
        if field.is_required() or name in WHERE or name.endswith(SECRET_ENDINGS)
    }


def named_settings(service: str, names: set[str]) -> tuple[set[str], set[str]]:
    """(settings of ``service`` named by these variables, variables naming none of them)."""
    fields = settings_class(service).model_fields
    found, unknown = set(), set()
    for name in names:
        if not name.startswith("GONGHUI_"):
            continue  # not a setting (e.g. PROMETHEUS_MULTIPROC_DIR)
        setting = name.removeprefix(prefix(service)).lower()
        if name.startswith(prefix(service)) and setting in fields:
            found.add(setting)
        else:
            unknown.add(name)
    return found, unknown


@cache
def manifest_variables(overlay: str) -> dict[str, dict[str, set[str]]]:
    """service -> workload (Deployment or Job) -> the environment variables its container gets."""
    docs = render(overlay)
    config_maps = {
        d["metadata"]["name"]: set(d.get("data", {})) for d in docs if d["kind"] == "ConfigMap"
    }
    found: dict[str, dict[str, set[str]]] = {s: {} for s in SERVICES}
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for c in doc["spec"]["template"]["spec"]["containers"]:
            names = {env["name"] for env in c.get("env", [])}
            for source in c.get("envFrom", []):
                names |= config_maps[source["configMapRef"]["name"]]
            module = next((w for w in c.get("command", []) if w.startswith("services.")), None)
            if module:
                found[module.removeprefix("services.")][doc["metadata"]["name"]] = names
    return found


def compose_variables() -> dict[str, dict[str, set[str]]]:
    """service -> compose service (its api and worker containers) -> the variables it sets."""
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    found: dict[str, dict[str, set[str]]] = {s: {} for s in SERVICES}
    for name, container in compose["services"].items():
        module = next((w for w in container.get("command", []) if w.startswith("services.")), None)
        if module:
            env = container.get("environment", {})
            if isinstance(env, list):
                env = dict(item.split("=", 1) for item in env)
            found[module.removeprefix("services.")][name] = set(env)
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_the_manifests_give_every_required_setting(overlay: str, service: str) -> None:
    workloads = manifest_variables(overlay)[service]
    assert set(workloads) == {
        f"{service.replace('_', '-')}-{w}" for w in ("api", "worker", "migrate")
    }
    for workload, names in workloads.items():
        given, unknown = named_settings(service, names)
        assert not unknown, f"{overlay} {workload}: no such setting: {sorted(unknown)}"
        missing = (required(service) | MANIFESTS_ONLY) - given
        assert not missing, f"{overlay} {workload} does not set {sorted(missing)}"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_names_only_settings_that_exist(service: str) -> None:
    containers = compose_variables()[service]
    assert set(containers) == {f"{service.replace('_', '-')}-{w}" for w in ("api", "worker")}
    for container, names in containers.items():
        _, unknown = named_settings(service, names)
        assert not unknown, f"docker-compose.yml {container}: no such setting: {sorted(unknown)}"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_gives_every_required_setting(service: str) -> None:
    containers = compose_variables()[service]
    assert containers, f"docker-compose.yml runs no container of {service}"
    for container, names in containers.items():
        given, _ = named_settings(service, names)
        missing = required(service) - given
        assert not missing, (
            f"docker-compose.yml service {container} does not set"
            f" {', '.join(prefix(service) + m.upper() for m in sorted(missing))}"
        )


def test_a_misspelt_variable_is_caught() -> None:
    """The check can fail: a typo names no setting."""
    _, unknown = named_settings("training", {"GONGHUI_TRAINING_CHECKIN_SECRET"})
    assert unknown == {"GONGHUI_TRAINING_CHECKIN_SECRET"}
    given, unknown = named_settings("training", {"GONGHUI_MEMBERSHIP_DATABASE_URL"})
    assert (given, unknown) == (set(), {"GONGHUI_MEMBERSHIP_DATABASE_URL"})
