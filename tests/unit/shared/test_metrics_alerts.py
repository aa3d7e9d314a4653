"""The alert rules and the Prometheus configurations, checked by promtool: the configurations and
rules are valid, and each alert's unit tests (deploy/prometheus/alerts.test.yml) pass, with at
least one case where it fires and one where it stays quiet."""

from __future__ import annotations

from collections import defaultdict

import pytest
import yaml

from shared import metrics, supervision
from tests.support.prometheus import exported_names, metric_names, promtool
from tests.support.servers import ROOT

PROMETHEUS = ROOT / "deploy/prometheus"


def alert_rules() -> list[dict[str, str]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.mark.parametrize("config", ["local.yml", "compose.yml"])
def test_the_prometheus_configurations_are_valid(config: str) -> None:
    done = promtool("check", "config", str(PROMETHEUS / config))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_pass_their_unit_tests() -> None:
    done = promtool("test", "rules", "alerts.test.yml", cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    cases: dict[str, set[bool]] = defaultdict(set)
    for test in yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]:
        for case in test["alert_rule_test"]:
            cases[case["alertname"]].add(bool(case.get("exp_alerts")))
    assert {rule["alert"]: cases[rule["alert"]] for rule in alert_rules()} == {
        rule["alert"]: {True, False} for rule in alert_rules()
    }


def test_the_alerts_read_only_metrics_the_services_export() -> None:
    assert metrics and supervision  # imported: their metrics are in the registry
    used = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert used - exported_names() == {"up"}  # Prometheus's own, per target
