"""The processes a benchmark started, watched: peak RSS of each (children included, e.g. uvicorn's
workers) and CPU seconds per process group, with the Postgres processes serving the scratch
database and the Kafka broker alongside, for "CPU per event, all processes".

A process's CPU is remembered as last seen, so one that exits still counts; its peak RSS is the
kernel's high-water mark (VmHWM) read while it lives, which catches peaks between samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from types import TracebackType

import psutil

ROOT = Path(__file__).resolve().parents[1]
MB = 1e6
# Postgres's own processes, shared by every database of the cluster (WAL, checkpoints, vacuum).
POSTGRES_SERVER = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
    "-D ",  # the postmaster
)
POSTGRES_BACKENDS = "postgres backends"
POSTGRES_SHARED = "postgres server (shared)"
KAFKA = "kafka broker (shared)"


def high_water_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    except (OSError, ValueError):
        pass
    return 0.0


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _kafka_pid() -> int | None:
    try:
        return int((ROOT / "var/run/kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None


class Watch:
    """``async with Watch({"membership": pid, ...}, database="gonghui_test_x") as watch:``; add
    processes started later with :meth:`add`; read :meth:`cpu` and :attr:`peak_mb`."""

    def __init__(
        self,
        roots: dict[str, int] | None = None,
        database: str | None = None,
        interval: float = 0.25,
        include_self: bool = True,
    ) -> None:
        self.roots: dict[str, psutil.Process] = {}
        self.database = database
        self.interval = interval
        self.peak_mb: dict[str, float] = {}
        self._cpu_seen: dict[int, tuple[str, float]] = {}  # pid -> (group, CPU seconds)
        self._task: asyncio.Task[None] | None = None
        if include_self:
            self.add("load generator (bench)", os.getpid())
        for name, pid in (roots or {}).items():
            self.add(name, pid)

    def add(self, name: str, pid: int) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            self.roots[name] = psutil.Process(pid)

    def _tree(self) -> list[tuple[str, str, psutil.Process]]:
        """(group, process label, process) of every watched process alive now."""
        found = []
        for name, root in self.roots.items():
            try:
                # The benchmark's own children are the platform's processes, watched as theirs.
                children = [] if root.pid == os.getpid() else root.children(recursive=True)
            except psutil.Error:
                children = []
            found.append((name, name, root))
            found += [(name, f"{name} child {c.pid}", c) for c in children]
        return found

    def sample(self) -> None:
        for group, label, process in self._tree():
            try:
                rss = process.memory_info().rss / MB
                cpu = _cpu(process)
            except psutil.Error:
                continue
            peak = max(rss, high_water_mb(process.pid), self.peak_mb.get(label, 0.0))
            self.peak_mb[label] = round(peak, 1)
            self._cpu_seen[process.pid] = (group, cpu)

    def _sample_servers(self) -> None:
        kafka = _kafka_pid()
        for p in psutil.process_iter(["name", "cmdline"]):
            try:
                if p.pid == kafka:
                    self._cpu_seen[p.pid] = (KAFKA, _cpu(p))
                    continue
                if p.info["name"] != "postgres":
                    continue
                title = " ".join(p.info["cmdline"] or [])
                if self.database and self.database in title:
                    self._cpu_seen[p.pid] = (POSTGRES_BACKENDS, _cpu(p))
                elif any(part in title for part in POSTGRES_SERVER):
                    self._cpu_seen[p.pid] = (POSTGRES_SHARED, _cpu(p))
            except psutil.Error:
                continue

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far per group (each watched root, Postgres, Kafka)."""
        self.sample()
        self._sample_servers()
        totals: dict[str, float] = {}
        for group, seconds in self._cpu_seen.values():
            totals[group] = totals.get(group, 0.0) + seconds
        return totals

    async def _run(self) -> None:
        tick = 0
        while True:
            self.sample()
            if tick % 4 == 0:  # backends come and go: seen often enough to keep their CPU
                self._sample_servers()
            tick += 1
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> Watch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task:
            self._task.cancel()
        self.sample()


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per group between two :meth:`Watch.cpu` readings."""
    return {group: after[group] - before.get(group, 0.0) for group in after}


class Meter:
    """CPU per group between laps, and the same less what the processes spend idle (relays
    polling, heartbeats...), which at low rates would otherwise dominate a per-request figure."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.idle: dict[str, float] = {}  # CPU seconds a second, per group
        self._mark()

    def _mark(self) -> None:
        self.last, self.at = self.watch.cpu(), time.perf_counter()

    async def measure_idle(self, seconds: float) -> None:
        """The idle rate, over a window of ``seconds`` with no load (a measurement, not a wait)."""
        self._mark()
        await asyncio.sleep(seconds)
        used, window = spent(self.last, self.watch.cpu()), time.perf_counter() - self.at
        self.idle = {group: cpu / window for group, cpu in used.items()}
        self._mark()

    def lap(self) -> tuple[dict[str, float], dict[str, float]]:
        """(CPU seconds per group since the last lap, the same above the idle rate)."""
        now, at = self.watch.cpu(), time.perf_counter()
        used, window = spent(self.last, now), at - self.at
        self.last, self.at = now, at
        above = {g: cpu - self.idle.get(g, 0.0) * window for g, cpu in used.items()}
        return used, above
