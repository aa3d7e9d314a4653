"""The compose stack for real (docs/containers.md): build the images with podman, bring
docker-compose.yml up (the demo runs against it), then redeploy membership with a rebuilt image
(`up -d --no-deps`) while joins keep arriving: no join is lost, no other container restarts, the
redeployed service is ready again and Prometheus scrapes it again. Everything is torn down,
firewall rules and IPv4 forwarding included, even when it fails. GONGHUI_SKIP_STACK=1 skips
it; a machine where podman cannot be installed fails it.

The slowest test of the suite: a cold image build is ~5 min, the stack's start ~1-2 min.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from deploy.containers import demo as stack_demo
from deploy.containers import targets as prometheus_targets
from shared.auth.client import SignedAuth
from tests.integration.membership.test_membership_members import joining
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = ROOT / "deploy" / "containers"
PROJECT = "gonghui-stack"
REDEPLOYED = ("membership-api", "membership-worker")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
UNION = "bozhou-pharma"  # made by the demo
MIN_JOINS_AFTER_READY = 50


def _run(*command: str, timeout: float, env: dict[str, str] | None = None) -> float:
    """Runs a project script, its output in the test's log; seconds it took. Fails with its tail."""
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
    assert done.returncode == 0, (
        f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    )
    return time.monotonic() - started


def _firewall() -> str:
    rules = [
        subprocess.run(["iptables", "-t", t, "-S"], capture_output=True, text=True).stdout
        for t in ("nat", "filter")
    ]
    return "".join(rules)


def _containers() -> dict[str, tuple[str, str, int]]:
    """Compose service -> (container id, started at, restarts) of the project's containers."""
    ids = subprocess.run(
        ["podman", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not ids:
        return {}
    inspected = json.loads(
        subprocess.run(
            ["podman", "inspect", *ids], capture_output=True, text=True, check=True
        ).stdout
    )
    return {
        c["Config"]["Labels"]["com.docker.compose.service"]: (
            c["Id"],
            c["State"]["StartedAt"],
            c.get("RestartCount", 0),
        )
        for c in inspected
    }


def _revision(service: str) -> str:
    cid = _containers()[service][0]
    out = subprocess.run(
        [
            "podman",
            "inspect",
            "--format",
            '{{index .Config.Labels "org.opencontainers.image.revision"}}',
            cid,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@dataclass
class Joins:
    """Joins sent one after another, each retried until the API answers it (a refused
    connection while the container is replaced is retried, as a department's system would)."""

    sent: int = 0
    attempts: int = 0
    refused: int = 0
    accepted: dict[str, str] = field(default_factory=dict)  # id number -> member id
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, client: httpx.AsyncClient, first_serial: int) -> None:
        serial = first_serial
        while not self.stop.is_set():
            body = joining(UNION, serial)
            self.sent += 1
            while True:
                self.attempts += 1
                try:
                    answer = await client.post("/members", json=body)
                except httpx.TransportError:
                    self.refused += 1
                    await asyncio.sleep(0.1)  # pacing a retry, not waiting for a condition
                    continue
                if answer.status_code in (201, 409):  # 409: an earlier attempt got through
                    data = answer.json()
                    self.accepted[str(body["id_number"])] = (
                        data.get("id") or data["existing_member_id"]
                    )
                    break
                if answer.status_code >= 500 or answer.status_code == 503:
                    self.refused += 1
                    await asyncio.sleep(0.1)
                    continue
                raise AssertionError(f"join refused: {answer.status_code} {answer.text}")
            serial += 1


def test_the_stack_runs_the_demo_and_redeploys_one_service_without_losing_a_join() -> None:
    if os.environ.get("GONGHUI_SKIP_STACK") == "1":
        pytest.skip("GONGHUI_SKIP_STACK=1")
    if os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], check=False).returncode:
        pytest.fail("podman runs rootful here: run the suite as root or with passwordless sudo")
    # Installs podman and docker-compose when missing; fails, naming what to do, when it cannot.
    _run(str(CONTAINERS / "host-setup"), timeout=600)
    subprocess.run([str(CONTAINERS / "stack"), "down"], cwd=ROOT, capture_output=True, check=False)
    firewall_before = _firewall()
    forwarding_before = IP_FORWARD.read_text()
    figures: list[str] = []
    try:
        build = _run(str(CONTAINERS / "images"), timeout=1800)
        figures.append(f"images built in {build:.1f} s (cold when the machine had no layer cache)")
        up = _run(str(CONTAINERS / "stack"), "up", timeout=900)
        figures.append(f"stack up (health, then the demo) in {up:.1f} s")
        asyncio.run(_redeploy_while_joining(figures))
    finally:
        down = subprocess.run(
            [str(CONTAINERS / "stack"), "down"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        print(down.stdout, down.stderr, sep="\n", file=sys.stderr)
        print("\n".join(["stack test figures:", *figures]), file=sys.stderr)
    assert down.returncode == 0, down.stderr
    assert _containers() == {}, "containers of the stack remain"
    assert _firewall() == firewall_before, "firewall rules podman added remain"
    assert IP_FORWARD.read_text() == forwarding_before, "net.ipv4.ip_forward was not put back"


async def _redeploy_while_joining(figures: list[str]) -> None:
    saved = json.loads((stack_demo.DEMO_DIR / "credentials.json").read_text())["membership"]
    scraped = {t["labels"]["instance"] for t in prometheus_targets.targets()}
    assert {f"{c}:8001" for c in REDEPLOYED} <= scraped, f"Prometheus scrapes only {scraped}"
    before = _containers()
    revision = f"redeploy-{uuid.uuid4().hex[:8]}"
    joins = Joins()
    async with httpx.AsyncClient(
        base_url=saved["base_url"], auth=SignedAuth(saved["app_id"], saved["secret"]), timeout=30
    ) as client:
        sender = asyncio.create_task(joins.send(client, 5_000_000 + uuid.uuid4().int % 1_000_000))
        try:
            warm = await asyncio.to_thread(
                _run,
                str(CONTAINERS / "images"),
                "membership",
                timeout=900,
                env={"GONGHUI_IMAGE_REVISION": revision},
            )
            figures.append(f"membership image rebuilt (warm cache) in {warm:.1f} s")
            sent_before = joins.sent
            redeploy = await asyncio.to_thread(
                _run,
                str(CONTAINERS / "stack"),
                "compose",
                "up",
                "-d",
                "--no-deps",
                *REDEPLOYED,
                timeout=600,
            )
            replaced_at = datetime.now(UTC)

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            t = time.monotonic()
            await eventually(ready, timeout=300, what="membership ready after the redeploy")
            ready_after = redeploy + time.monotonic() - t
            figures.append(
                f"redeploy: compose up --no-deps {redeploy:.1f} s,"
                f" membership ready {ready_after:.1f} s after it began"
            )
            accepted_at_ready = len(joins.accepted)

            async def more_accepted() -> bool:
                return len(joins.accepted) >= accepted_at_ready + MIN_JOINS_AFTER_READY

            await eventually(more_accepted, timeout=120, what="joins accepted after the redeploy")
        finally:
            joins.stop.set()
            await asyncio.wait_for(sender, 60)
        figures.append(
            f"joins: {joins.sent} sent ({joins.sent - sent_before} from the redeploy on), "
            f"{len(joins.accepted)} accepted, {joins.attempts} attempts, {joins.refused} refused"
            " while the container was replaced"
        )

        async def found() -> int:
            return sum(
                [
                    (await client.get(f"/members/{m}")).status_code == 200
                    for m in joins.accepted.values()
                ]
            )

        present = await found()
    after = _containers()
    figures.append(f"joins found in membership: {present} of {len(joins.accepted)}")
    assert len(joins.accepted) == joins.sent
    assert present == len(joins.accepted), "a join was lost"
    await _all_published(list(joins.accepted.values()))
    for service, (cid, started, restarts) in before.items():
        if service in REDEPLOYED or service == "kafka-topics":
            continue
        assert after[service] == (cid, started, restarts), f"{service} was restarted"
    for service in REDEPLOYED:
        assert after[service][0] != before[service][0], f"{service} was not redeployed"
        assert _revision(service) == revision

    async def scraped_again() -> bool:
        """Every target up, the new containers (same names) scraped since they replaced the old."""
        found = await asyncio.to_thread(prometheus_targets.targets)
        since = {
            t["labels"]["instance"]
            for t in found
            if datetime.fromisoformat(t["lastScrape"][:19]).replace(tzinfo=UTC) > replaced_at
        }
        return prometheus_targets.all_up(found) and {f"{c}:8001" for c in REDEPLOYED} <= since

    t = time.monotonic()
    await eventually(scraped_again, timeout=120, what="the redeployed containers scraped again")
    waited = time.monotonic() - t
    figures.append(f"Prometheus: every target up, the redeployed ones rescraped, {waited:.1f} s on")
    print("\n".join(figures), file=sys.stderr)


async def _all_published(member_ids: list[str]) -> None:
    """The redeployed worker relayed every join's event (none left in the outbox)."""
    env = stack_demo.environment()
    conn = await asyncpg.connect(env["GONGHUI_MEMBERSHIP_DATABASE_URL"])
    try:

        async def none_left() -> bool:
            left = await conn.fetchval(
                "SELECT count(*) FROM membership.outbox"
                " WHERE published_at IS NULL AND key = ANY($1)",
                member_ids,
            )
            return left == 0

        await eventually(none_left, timeout=120, what="every join's event published")
    finally:
        await conn.close()
