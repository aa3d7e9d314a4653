"""The Grafana dashboard reads only metrics the services export, and each of its queries is
PromQL that Prometheus parses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared import metrics, supervision
from tests.support.prometheus import check_expressions, exported_names, metric_names
from tests.support.servers import ROOT

# The agreed contract (docs/observability.md): every one is exported, and on the dashboard.
CONTRACT = {
    "gonghui_http_request_duration_seconds_bucket",
    "gonghui_events_published_total",
    "gonghui_events_applied_total",
    "gonghui_dead_letters_total",
    "gonghui_consumer_lag",
    "gonghui_outbox_backlog",
    "gonghui_outbox_oldest_age_seconds",
    "gonghui_worker_up",
    "gonghui_wechat_errcode_total",
    "gonghui_wechat_token_refreshes_total",
    "gonghui_backstop_requests_open",
    "gonghui_backstop_oldest_open_age_seconds",
}


def expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/gonghui.json").read_text())
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels += [panel, *panel.get("panels", [])]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_the_dashboard_reads_every_contracted_metric_and_nothing_unexported() -> None:
    assert metrics and supervision  # imported: their metrics are in the registry
    used = set().union(*(metric_names(e) for e in expressions()))
    assert exported_names() >= CONTRACT
    assert used >= CONTRACT
    assert used - exported_names() == {"up"}  # Prometheus's own, per target


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    done = check_expressions(expressions(), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_name_reader_finds_metrics_and_skips_functions_labels_and_strings() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, service) (rate(a_bucket{status=~"5.."}[5m])))'
        " / on (service) group_left b_total and c offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}
