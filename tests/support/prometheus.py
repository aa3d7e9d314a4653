"""Prometheus's own tools for tests: ``promtool`` and ``prometheus`` from Debian's package,
installed through ``deploy/local/prometheus install`` (the script ``./gonghui up`` uses). A test
that needs them fails, with what to do, when they cannot be installed: it never skips."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from tests.support.ports import free_port
from tests.support.servers import ROOT

INSTALL = ROOT / "deploy/local/prometheus"


def tool(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``, installing the package when missing."""
    found = shutil.which(name)
    if found:
        return found
    done = subprocess.run([str(INSTALL), "install"], capture_output=True, text=True, check=False)
    found = shutil.which(name)
    if done.returncode != 0 or not found:
        pytest.fail(
            f"{name} is missing and {INSTALL} install failed ({done.returncode}):\n"
            f"{done.stdout}{done.stderr}\n"
            "Install Debian's package yourself (sudo apt-get install -y prometheus), then rerun."
        )
    return found


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def check_expressions(exprs: Iterable[str], scratch: Path) -> subprocess.CompletedProcess[str]:
    """promtool parses each PromQL expression (as a recording rule: it has no other offline
    parser); Grafana's ``$__rate_interval`` stands for a range of one minute."""
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, expr in enumerate(exprs)
    ]
    path = scratch / "expressions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "expressions", "rules": rules}]}))
    return promtool("check", "rules", str(path))


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHERS = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
_WORD = re.compile(r"(?<![0-9.])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords, labels, durations and
    strings left out)."""
    bare = _MATCHERS.sub(" ", _GROUPING.sub(" ", _STRING.sub(" ", expr)))
    names = set()
    for word in _WORD.finditer(bare):
        function = bare[word.end() :].lstrip().startswith("(")
        if not function and word.group().lower() not in _KEYWORDS:
            names.add(word.group())
    return names


def exported_names(registry: CollectorRegistry = REGISTRY) -> set[str]:
    """Every series name the registry's metrics can export, labelled children or not yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = set()
    for family in registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Each sample of ``name`` by its labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found[tuple(sorted(s.labels.items()))] = s.value
    return found


def scraped_names(text: str) -> set[str]:
    """Every series name in a /metrics answer."""
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


@contextmanager
def prometheus_server(config: Path, scratch: Path) -> Iterator[str]:
    """A Prometheus with ``config`` on a free port, its data and log in ``scratch``: its URL."""
    port = free_port()
    with (scratch / "prometheus.log").open("wb") as out:
        server = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={scratch / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
