"""Faults and recovery: SIGKILL of service processes (restarted like a process supervisor
restarts them), a restart of the Kafka broker and one of the Postgres cluster, each timed until
the platform answers again and has caught up.

Recovery of a fault is measured from the moment it struck: ``ready`` when every affected process
answers ``/readyz`` with 200 again, ``caught up`` when moreover each affected consumer group has
committed every partition it follows up to the end offsets read at the moment it was ready (what
had been produced by then: under continuing load, "lag zero" only means something against a
fixed point). A service kill affects that service; a Kafka or Postgres restart affects them all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.chaos.probe import KafkaProbe
from tests.support.platform import Platform
from tests.support.servers import ROOT, SERVICES

log = logging.getLogger(__name__)
INFRA = ROOT / "deploy" / "local" / "infra"
KAFKA_PID = ROOT / "var" / "run" / "kafka.pid"
KAFKA_CONFIG = ROOT / "var" / "kafka" / "server.properties"


@dataclass(frozen=True)
class Fault:
    kind: str  # "kill", "kafka" or "postgres"
    at: float  # fires once this share of the load's work is done
    targets: tuple[str, ...] = ()  # the services a kill kills (two at once: a storm)

    @property
    def label(self) -> str:
        if self.kind == "kill":
            return "kill " + "+".join(self.targets)
        return f"{self.kind} restart"


def fault_plan(
    kills: int, kafka: int, postgres: int, rng: random.Random, storms: float = 0.2
) -> list[Fault]:
    """``kills`` processes killed (every service in turn, in a shuffled order; with probability
    ``storms`` two at once), ``kafka`` and ``postgres`` restarts, spread over the run."""
    order: list[str] = []
    while len(order) < kills:
        turn = list(SERVICES)
        rng.shuffle(turn)
        order += turn
    order = order[:kills]
    steps: list[tuple[str, ...]] = []
    while order:
        if len(order) >= 2 and order[0] != order[1] and rng.random() < storms:
            steps.append((order.pop(0), order.pop(0)))
        else:
            steps.append((order.pop(0),))
    faults = [Fault("kill", 0.0, targets) for targets in steps]
    for kind, count, where in (("kafka", kafka, 0.4), ("postgres", postgres, 0.7)):
        for i in range(count):
            faults.insert(
                min(len(faults), round(len(faults) * (where + i * 0.1))), Fault(kind, 0.0)
            )
    first, last = 0.04, 0.92
    step = (last - first) / max(1, len(faults) - 1)
    return [
        Fault(f.kind, min(last, first + i * step + rng.uniform(0, step / 2)), f.targets)
        for i, f in enumerate(faults)
    ]


@dataclass
class Recovery:
    label: str
    kind: str  # "kill <service>" per service killed, "kafka restart", "postgres restart"
    started: float
    down_s: float | None = None  # a server restart: how long it did not answer
    ready_s: float | None = None
    caught_up_s: float | None = None


@dataclass
class Faults:
    platform: Platform
    probe: KafkaProbe
    groups: dict[str, dict[str, set[str]]]  # consumer group -> topics -> types
    namespace: str
    restart_delay: float = 0.5  # what a supervisor waits before starting a dead process again
    kills: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    unplanned_exits: list[str] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    injected: int = 0
    _monitors: set[asyncio.Task[None]] = field(default_factory=set)
    _restarting: set[str] = field(default_factory=set)
    _http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=2))

    # ------------------------------------------------------------------------ the schedule

    async def run(
        self,
        plan: list[Fault],
        done: Callable[[], float],
        load_done: asyncio.Event,
        rng: random.Random,
    ) -> None:
        """Injects each fault once ``done()``, the share of the load's work done, reaches its
        ``at`` (or, once the load's flows are done, every few seconds), each after the processes
        hit by the one before answer again."""
        watchdog = asyncio.create_task(self._watchdog())
        try:
            for fault in plan:
                while done() < fault.at:
                    if load_done.is_set():
                        break
                    await asyncio.sleep(0.2)  # polls the event count the run keeps
                await self.ready(SERVICES)
                if load_done.is_set():
                    await asyncio.sleep(rng.uniform(2, 5))  # paces the faults left at the end
                await self.inject(fault)
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)

    async def inject(self, fault: Fault) -> None:
        self.injected += 1
        log.info("fault %d: %s", self.injected, fault.label)
        if fault.kind == "kill":
            await self.kill(fault.targets)
        elif fault.kind == "kafka":
            await self.restart_kafka()
        else:
            await self.restart_postgres()

    async def settled(self) -> None:
        """Waits for the recovery of every fault to have been measured."""
        await asyncio.gather(*self._monitors)

    async def close(self) -> None:
        for task in self._monitors:
            task.cancel()
        await asyncio.gather(*self._monitors, return_exceptions=True)
        await self._http.aclose()

    # ------------------------------------------------------------------------ faults

    async def kill(self, services: tuple[str, ...]) -> None:
        started = time.monotonic()
        self._restarting.update(services)
        try:
            for service in services:
                self.platform.kill(service)
                self.kills[service] += 1
            await asyncio.sleep(self.restart_delay)
            for service in services:
                self.platform.start(service)
                self.restarts[service] += 1
        finally:
            self._restarting.difference_update(services)
        for service in services:
            self._measure(
                Recovery(f"kill {'+'.join(services)}", f"kill {service}", started), [service]
            )

    async def restart_kafka(self) -> None:
        started = time.monotonic()
        pid = _kafka_pid()
        os.kill(pid, signal.SIGTERM)
        while _alive(pid):  # a clean shutdown takes a few seconds
            if time.monotonic() - started > 60:
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.1)
        await _again(str(INFRA), "up")  # starts the broker again; returns once it answers
        self.restarts["kafka"] += 1
        recovery = Recovery("kafka restart", "kafka restart", started)
        recovery.down_s = time.monotonic() - started
        self._measure(recovery, SERVICES)

    async def restart_postgres(self) -> None:
        started = time.monotonic()
        version, cluster = await _pg_cluster()
        try:
            await _run(*_as_root("pg_ctlcluster", version, cluster, "restart", "-m", "fast"))
        except RuntimeError:
            log.exception("restarting Postgres failed: starting it")
            await _again(*_as_root("pg_ctlcluster", version, cluster, "start"))
        self.restarts["postgres"] += 1
        recovery = Recovery("postgres restart", "postgres restart", started)
        recovery.down_s = time.monotonic() - started
        self._measure(recovery, SERVICES)

    # ------------------------------------------------------------------------ recovery

    def _measure(self, recovery: Recovery, services: tuple[str, ...] | list[str]) -> None:
        self.recoveries.append(recovery)
        task = asyncio.create_task(self._recover(recovery, list(services)))
        self._monitors.add(task)

    async def _recover(self, recovery: Recovery, services: list[str]) -> None:
        await self.ready(services)
        recovery.ready_s = time.monotonic() - recovery.started
        groups = [f"{self.namespace}{s}" for s in services]
        topics = {t for g in groups for t in self.groups.get(g, {})}
        ends = await self.probe.end_offsets(topics)
        for group in groups:
            mine = {tp: end for tp, end in ends.items() if tp.topic in self.groups[group]}
            while True:
                if await self.probe.lag(group, mine) == 0:
                    break
                await asyncio.sleep(0.2)  # polls the group's committed offsets
        recovery.caught_up_s = time.monotonic() - recovery.started

    async def ready(self, services: tuple[str, ...] | list[str], patience: float = 600) -> None:
        """Waits until each service answers /readyz with 200."""
        deadline = time.monotonic() + patience
        for service in services:
            url = f"{self.platform.urls[service]}/readyz"
            while True:
                try:
                    if (await self._http.get(url)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{service} not ready after {patience:.0f} s")
                await asyncio.sleep(0.1)  # polls readiness

    async def _watchdog(self) -> None:
        """A process that exits by itself is started again too (a supervisor would), and noted:
        the services must wait for their servers rather than exit."""
        while True:
            for service in SERVICES:
                proc = self.platform.processes[service]
                if service not in self._restarting and proc.poll() is not None:
                    self.unplanned_exits.append(f"{service} exited by itself ({proc.returncode})")
                    log.warning(
                        "%s exited by itself with %s: restarting it", service, proc.returncode
                    )
                    self.platform.start(service)
                    self.restarts[service] += 1
            await asyncio.sleep(0.5)


def _kafka_pid() -> int:
    pid = int(KAFKA_PID.read_text().strip())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    if str(KAFKA_CONFIG).encode() not in cmdline:
        raise RuntimeError(f"pid {pid} in {KAFKA_PID} is not this repository's Kafka")
    return pid


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _as_root(*command: str) -> list[str]:
    if os.geteuid() == 0 or not shutil.which("sudo"):
        return list(command)
    return ["sudo", *command]


async def _pg_cluster() -> tuple[str, str]:
    """The Debian cluster deploy/local/infra runs: GONGHUI_PG_CLUSTER, else the newest main."""
    wanted = os.environ.get("GONGHUI_PG_CLUSTER")
    if wanted:
        version, _, name = wanted.partition("/")
        return version, name
    listing = await _run("pg_lsclusters", "-h")
    clusters = [line.split()[:2] for line in listing.splitlines() if line.strip()]
    main = [c for c in clusters if c[1] == "main"] or clusters
    if not main:
        raise RuntimeError("pg_lsclusters lists no PostgreSQL cluster")
    version, name = max(main, key=lambda c: [int(p) for p in c[0].split(".") if p.isdigit()])
    return version, name


async def _again(*command: str, attempts: int = 3) -> str:
    """A server must come back whatever happens: what starts it is tried again on failure."""
    for attempt in range(1, attempts + 1):
        try:
            return await _run(*command)
        except RuntimeError:
            if attempt == attempts:
                raise
            log.exception("%s failed; trying again", " ".join(command))
            await asyncio.sleep(2)  # paces the attempts
    raise AssertionError("unreachable")


async def _run(*command: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {text[-2000:]}")
    return text
