"""The local 3-broker Kafka cluster, for tests of what survives the loss of a broker.

``deploy/local/infra cluster up`` starts it once (later calls find it running, and restart a
broker a failed test left killed); it runs next to the single node the rest of the suite uses,
on its own ports. :class:`Cluster` gives its bootstrap list and SIGKILLs and restarts broker N,
each step returning once the cluster shows the condition (fenced, listening, back in the ISR of
every partition it replicates), never after a fixed sleep.

    cluster = local_cluster()                  # in a session-scoped fixture
    victim = await cluster.coordinator(group)  # or cluster.leader_of_most(topic)
    await cluster.kill(victim)
    failover = await cluster.fenced(victim)    # seconds until the others took its partitions
    await cluster.start(victim)                # returns once it listens
    recovered = await cluster.in_sync(victim)  # seconds until it is back in every ISR
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.kafka import bootstrap_servers
from tests.support.servers import ROOT

SCRIPT = ROOT / "deploy/local/infra"
NODES = (1, 2, 3)
T = TypeVar("T")


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be had on this machine (no Java, or `cluster up` failed)."""


def local_cluster() -> Cluster:
    """Start the cluster (idempotent) and describe it; raises :class:`ClusterUnavailable`."""
    if not shutil.which("java"):
        raise ClusterUnavailable("java is not installed (deploy/local/infra runs Kafka with it)")
    done = subprocess.run(
        [str(SCRIPT), "cluster", "up"], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise ClusterUnavailable(
            f"`{SCRIPT} cluster up` failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
        )
    listed = subprocess.run(
        [str(SCRIPT), "cluster", "bootstrap"], capture_output=True, text=True, check=True
    )
    return Cluster(bootstrap=listed.stdout.strip())


@dataclass
class Cluster:
    bootstrap: str  # "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"

    def port(self, node: int) -> int:
        return int(bootstrap_servers(self.bootstrap)[node - 1].rpartition(":")[2])

    # ----- the script: SIGKILL and start

    async def kill(self, node: int) -> None:
        """SIGKILL broker ``node`` (its JVM, broker and controller at once): a crash."""
        await _script("cluster", "kill", str(node))

    async def start(self, node: int) -> float:
        """Start broker ``node`` again; seconds until it listens (it catches up after that)."""
        began = time.monotonic()
        await _script("cluster", "start", str(node))
        return time.monotonic() - began

    def pid(self, node: int) -> int | None:
        path = ROOT / f"var/run/kafka-cluster-{node}.pid"
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            return None
        return pid if os.path.exists(f"/proc/{pid}") else None

    # ----- what the cluster says (metadata from any live broker)

    async def brokers(self) -> set[int]:
        """The brokers the cluster counts as alive (a killed one until it is fenced)."""
        described = await self._ask(lambda admin: admin.describe_cluster())
        return {b["node_id"] for b in described["brokers"]}

    async def partitions(self, topics: list[str] | None = None) -> list[dict[str, Any]]:
        """Every partition of ``topics`` (None: all) with its topic, leader, replicas and isr."""
        described = await self._ask(lambda admin: admin.describe_topics(topics))
        return [
            {"topic": t["topic"], **p}
            for t in described
            if t["error_code"] == 0
            for p in t["partitions"]
        ]

    async def leader_of_most(self, topic: str) -> int:
        """The broker leading most partitions of ``topic``: killing it moves the most leaders."""
        leaders = Counter(p["leader"] for p in await self.partitions([topic]))
        return leaders.most_common(1)[0][0]

    async def coordinator(self, group: str) -> int:
        """The broker coordinating consumer group ``group`` (its offsets' partition leader)."""
        return await self._ask(lambda admin: admin.find_coordinator(group))

    # ----- conditions

    async def fenced(self, node: int, timeout: float = 60) -> float:
        """Seconds until the cluster stops counting ``node`` alive and no partition is led by it
        any more (after a SIGKILL: its session timed out, leaders moved, the ISRs shrank)."""

        async def gone() -> bool:
            if node in await self.brokers():
                return False
            # A partition with no other replica keeps it in its ISR: it cannot move anywhere.
            return all(
                p["leader"] != node and (node not in p["isr"] or len(p["replicas"]) == 1)
                for p in await self.partitions()
            )

        return await _until(gone, timeout, f"broker {node} still counted alive")

    async def in_sync(self, node: int, timeout: float = 120) -> float:
        """Seconds until ``node`` is back in the ISR of every partition it replicates (all
        topics, internal ones included): from then on, losing another broker loses nothing."""

        async def caught_up() -> bool:
            if node not in await self.brokers():
                return False
            mine = [p for p in await self.partitions() if node in p["replicas"]]
            return bool(mine) and all(node in p["isr"] for p in mine)

        return await _until(caught_up, timeout, f"broker {node} not back in every ISR")

    async def healthy(self, timeout: float = 120) -> float:
        """Seconds until all brokers are alive and every partition's ISR is complete."""

        async def complete() -> bool:
            if await self.brokers() != set(NODES):
                return False
            return all(set(p["isr"]) == set(p["replicas"]) for p in await self.partitions())

        return await _until(complete, timeout, "the cluster not fully in sync")

    async def _ask(self, question: Callable[[AIOKafkaAdminClient], Awaitable[T]]) -> T:
        # A new client each time: its metadata must not remember a broker just killed.
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers(self.bootstrap), request_timeout_ms=5_000
        )
        try:
            await admin.start()
            return await question(admin)
        finally:
            await admin.close()


async def _script(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"`infra {' '.join(args)}` failed (exit {process.returncode}):\n{output.decode()}"
        )


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll ``check`` (a broker not answering counts as "not yet") until true; seconds taken."""
    began = time.monotonic()
    last: object = None
    while True:
        try:
            if await check():
                return time.monotonic() - began
            last = None
        except (KafkaError, OSError) as exc:  # OSError: TimeoutError too
            last = exc
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what} after {timeout:.0f} s (last error: {last!r})")
        await asyncio.sleep(0.2)
