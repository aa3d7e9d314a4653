"""What the compose stack's Prometheus scrapes, and whether each target is up:
``python -m deploy.containers.targets [--wait SECONDS]``.

It asks ``/api/v1/targets`` of the Prometheus the stack publishes on ``127.0.0.1:<prefix>9090``
(docker-compose.yml) and prints each target's job, address, health and last error. Exit 0 when
every target is up; with ``--wait`` it asks again until they are or the time is out (the first
scrape of a target comes up to one scrape interval after Prometheus starts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from typing import Any

from deploy.containers.demo import published

PROMETHEUS_PORT = 9090


def url() -> str:
    return f"http://127.0.0.1:{published(PROMETHEUS_PORT)}"


def targets() -> list[dict[str, Any]]:
    """The active targets as Prometheus reports them (empty when it does not answer)."""
    try:
        with urllib.request.urlopen(f"{url()}/api/v1/targets?state=active", timeout=5) as answer:
            found: list[dict[str, Any]] = json.load(answer)["data"]["activeTargets"]
            return found
    except OSError:
        return []


def report(found: list[dict[str, Any]]) -> str:
    up = sum(t["health"] == "up" for t in found)
    lines = [f"prometheus {url()}: {len(found)} targets, {up} up"]
    for t in sorted(found, key=lambda t: (t["labels"]["job"], t["labels"]["instance"])):
        job, instance = t["labels"]["job"], t["labels"]["instance"]
        error = f"  {t['lastError']}" if t.get("lastError") else ""
        lines.append(f"  {job:<16} {instance:<26} {t['health']}{error}")
    return "\n".join(lines)


def all_up(found: list[dict[str, Any]]) -> bool:
    return bool(found) and all(t["health"] == "up" for t in found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for every target up")
    deadline = time.monotonic() + parser.parse_args().wait
    found = targets()
    while not all_up(found) and time.monotonic() < deadline:
        time.sleep(1)  # a script's poll: Prometheus scrapes on its own interval
        found = targets()
    print(report(found) if found else f"prometheus {url()}: no answer")
    return 0 if all_up(found) else 1


if __name__ == "__main__":
    sys.exit(main())
