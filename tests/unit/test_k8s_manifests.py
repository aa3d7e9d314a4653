"""deploy/k8s renders, every document is valid for Kubernetes, and each service is deployed as the
issue asks: API and worker Deployments with probes and measured resources, a migrate Job, a
Service, settings in a ConfigMap and secrets by reference only, HPAs (CPU; consumer lag up to the
partition count), PodDisruptionBudgets and a NetworkPolicy reaching only Kafka and PostgreSQL.

No cluster is needed: deploy.k8s.render renders each overlay, and the documents are checked
against the strict Kubernetes schemas bundled in kubernetes-validate (Strimzi's KafkaTopic, a
CRD, against deploy/k8s/schemas)."""

from __future__ import annotations

import importlib
import json
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from deploy.k8s.render import K8S, OVERLAYS, ROOT, render

KUBERNETES_VERSION = "1.32"
SERVICES = ("membership", "mutual_aid", "training", "notifications", "union_funds")
CRD_SCHEMAS = {("kafka.strimzi.io/v1beta2", "KafkaTopic"): "kafkatopic-kafka-v1beta2.json"}

Doc = dict[str, Any]


@cache
def documents(overlay: str) -> tuple[Doc, ...]:
    return tuple(render(overlay))


def named(overlay: str, kind: str, name: str) -> Doc:
    found = [d for d in documents(overlay) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def dns(service: str) -> str:
    return service.replace("_", "-")


def topics() -> dict[str, int]:
    """deploy/local/topics.txt: topic -> partitions."""
    found = {}
    for line in (ROOT / "deploy/local/topics.txt").read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            found[words[0]] = int(words[1])
    return found


@cache
def followed(service: str) -> list[str]:
    """The topics the service's consumer group follows, as its worker process builds it."""
    main = importlib.import_module(f"services.{service}.main")
    app = main.build(main.Settings(role="worker"))
    return list(app.state.runtime.follows)


def crd_schema(doc: Doc) -> Any:
    name = CRD_SCHEMAS[doc["apiVersion"], doc["kind"]]
    return json.loads((K8S / "schemas" / name).read_text(encoding="utf-8"))


def pod_labels(overlay: str, workload: str) -> dict[str, str]:
    labels: dict[str, str] = named(overlay, "Deployment", workload)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def container(workload: Doc) -> Doc:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_document_is_valid_against_the_pinned_schemas(overlay: str) -> None:
    failures = []
    for doc in documents(overlay):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        crd = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        try:
            if crd:
                jsonschema.validate(doc, crd_schema(doc))
            else:  # raises SchemaNotFoundError for a kind it does not know: no silent skip
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            failures.append(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(f"{where}: {exc.message}")
    assert not failures, "\n".join(failures)


def test_a_misspelt_field_fails_validation() -> None:
    """The strict schemas reject what a cluster would silently drop (the check can fail)."""
    deployment = json.loads(json.dumps(named("prod", "Deployment", "membership-api")))
    container(deployment)["livenessprobe"] = container(deployment).pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    topic = json.loads(json.dumps(named("prod", "KafkaTopic", "membership.events")))
    topic["spec"]["partition"] = topic["spec"].pop("partitions")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(topic, crd_schema(topic))


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_role_runs_with_probes_resources_and_its_settings(overlay: str, service: str) -> None:
    main = importlib.import_module(f"services.{service}.main")
    port = main.Settings.model_fields["http_port"].default
    for role in ("api", "worker"):
        deployment = named(overlay, "Deployment", f"{dns(service)}-{role}")
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        c = container(deployment)
        assert c["command"][:4] == ["python", "-m", f"services.{service}", "--role"]
        assert c["command"][4] == role
        assert [p["containerPort"] for p in c["ports"]] == [port]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= set(c["resources"]["requests"])
        assert "memory" in c["resources"]["limits"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert matches(deployment["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    job = named(overlay, "Job", f"{dns(service)}-migrate")
    assert container(job)["command"] == ["python", "-m", f"services.{service}", "--role", "migrate"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_shipped(overlay: str) -> None:
    assert not [d for d in documents(overlay) if d["kind"] == "Secret"]
    for doc in documents(overlay):
        if doc["kind"] in ("Deployment", "Job"):
            for env in container(doc).get("env", []):
                assert "valueFrom" in env, f"{doc['metadata']['name']}: {env['name']} has a value"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_selectors_reach_their_pods(overlay: str, service: str) -> None:
    pods = {role: pod_labels(overlay, f"{dns(service)}-{role}") for role in ("api", "worker")}
    svc = named(overlay, "Service", dns(service))
    assert matches(svc["spec"]["selector"], pods["api"])
    assert not matches(svc["spec"]["selector"], pods["worker"])
    for role, labels in pods.items():
        pdb = named(overlay, "PodDisruptionBudget", f"{dns(service)}-{role}")
        assert matches(pdb["spec"]["selector"]["matchLabels"], labels)
        hpa = named(overlay, "HorizontalPodAutoscaler", f"{dns(service)}-{role}")
        assert hpa["spec"]["scaleTargetRef"]["name"] == f"{dns(service)}-{role}"
        policy = named(overlay, "NetworkPolicy", dns(service))
        assert matches(policy["spec"]["podSelector"]["matchLabels"], labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_autoscaling_api_on_cpu_and_workers_on_lag_up_to_the_partitions(
    overlay: str, service: str
) -> None:
    api = named(overlay, "HorizontalPodAutoscaler", f"{dns(service)}-api")
    assert [m["resource"]["name"] for m in api["spec"]["metrics"]] == ["cpu"]
    worker = named(overlay, "HorizontalPodAutoscaler", f"{dns(service)}-worker")
    (metric,) = worker["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "gonghui_consumer_lag"
    assert metric["external"]["metric"]["selector"]["matchLabels"] == {"group": service}
    partitions = topics()
    ceiling = max(partitions[topic] for topic in followed(service))
    assert 1 <= worker["spec"]["minReplicas"] <= worker["spec"]["maxReplicas"] <= ceiling


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_a_service_reaches_only_kafka_and_postgres(overlay: str, service: str) -> None:
    policy = named(overlay, "NetworkPolicy", dns(service))
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    kafka, postgres = policy["spec"]["egress"]
    assert kafka["to"][0]["podSelector"]["matchLabels"]["strimzi.io/kind"] == "Kafka"
    assert [p["port"] for p in kafka["ports"]] == [9092]
    assert [p["port"] for p in postgres["ports"]] == [5432]
    assert postgres["to"][0]["ipBlock"]["cidr"].endswith("/32")


def test_only_production_talks_to_wechat_and_only_development_runs_the_simulator() -> None:
    assert named("dev", "Deployment", "wechat-simulator")
    assert not [d for d in documents("prod") if "simulator" in d["metadata"]["name"]]
    egress = named("prod", "NetworkPolicy", "notifications-wechat")["spec"]["egress"]
    assert [p["port"] for rule in egress for p in rule["ports"]] == [443]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_are_those_of_the_local_setup(overlay: str) -> None:
    declared = {
        d["spec"]["topicName"]: d["spec"]["partitions"]
        for d in documents(overlay)
        if d["kind"] == "KafkaTopic"
    }
    assert declared == topics()
