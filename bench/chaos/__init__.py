"""The chaos run: ``uv run python -m bench.chaos [--events N] [--kills K] [--seed S]``.

Starts the whole platform as real processes (the four services and the WeChat simulator) on a
scratch database and topic namespace, and drives at least ``--events`` events through all four
services (:mod:`bench.chaos.load`). Meanwhile it kills service processes with SIGKILL ``--kills``
times, restarts the Kafka broker and the Postgres cluster once each, and starts again what it
killed, timing each recovery (:mod:`bench.chaos.faults`). Once the load is done it waits until
everything has caught up (roster jobs finished, outboxes drained, every consumer group committed
to the end of its topics, messages to bound members sent, approved claims paid), then the ledger
(:mod:`bench.chaos.ledger`) compares every source of truth with every effect. It prints the
figures and exits 1 on any lost or duplicated effect, duplicate WeChat message, order, balance
or seat violation.

Restarting Kafka and Postgres restarts the servers everyone on this machine shares (the local
``deploy/local/infra`` ones): other test runs see them go away for a few seconds too.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiokafka import TopicPartition

from bench.chaos.faults import Faults, fault_plan
from bench.chaos.ledger import Ledger, check
from bench.chaos.load import Load, Scale
from bench.chaos.probe import Db, KafkaProbe, consumer_topics
from deploy.demo import declared_scopes
from shared.kafka import delete_topics
from tests.support.auth import issue_credential
from tests.support.database import create_database, drop_database
from tests.support.platform import launch_platform, wait_ready
from tests.support.servers import ROOT, SERVICES, Servers, find_servers

log = logging.getLogger(__name__)


@dataclass
class ChaosConfig:
    events: int = 100_000
    kills: int = 20
    kafka_restarts: int = 1
    postgres_restarts: int = 1
    seed: int = 12
    storms: float = 0.2  # chance that a kill takes two services at once
    send_rate: float = (
        400.0  # WeChat messages a second (the service's default, 20, is an account's)
    )
    sender_lease_seconds: float | None = None  # None: the service's default
    settle_timeout: float = 900.0
    log_dir: Path = ROOT / "var" / "log" / "chaos"


@dataclass
class ChaosResult:
    config: ChaosConfig
    scale: Scale
    seconds: float
    load_seconds: float
    settle_seconds: float
    load: Load
    faults: Faults
    ledger: Ledger
    started: float = 0.0  # time.monotonic() at the start of the run

    @property
    def ok(self) -> bool:
        return self.ledger.ok and not self.load.errors


class Progress:
    """The run's event count (rows in every outbox), polled; a status line on stderr."""

    def __init__(self, db: Db, simulator: str) -> None:
        self.db = db
        self.simulator = simulator
        self.events = 0
        self.roster_rows = 0  # read by the roster jobs so far
        self.messages = 0
        self.started = time.monotonic()

    async def count(self) -> int:
        self.events = await self.db.fetchval(
            "SELECT " + " + ".join(f"(SELECT count(*) FROM {s}.outbox)" for s in SERVICES)
        )
        self.roster_rows = await self.db.fetchval(
            "SELECT coalesce(sum(rows_read), 0) FROM membership.roster_jobs"
        )
        return self.events

    async def run(self, line: Callable[[], str], every: float = 5.0) -> None:
        last = 0.0
        async with httpx.AsyncClient(timeout=5) as sim:
            while True:
                try:
                    await self.count()
                except Exception as exc:  # the database restarting: the next poll counts
                    log.debug("counting events failed: %r", exc)
                if time.monotonic() - last >= every:
                    last = time.monotonic()
                    try:
                        stats = (await sim.get(f"{self.simulator}/_sim/stats")).json()
                        self.messages = int(stats.get("messages_stored", 0))
                    except (httpx.HTTPError, ValueError):
                        pass
                    elapsed = time.monotonic() - self.started
                    print(f"[chaos] {elapsed:6.0f}s {line()}", file=sys.stderr, flush=True)
                await asyncio.sleep(1.0)  # paces the count


async def until(what: str, condition: Callable[[], Awaitable[bool | int]], deadline: float) -> None:
    """Polls ``condition()`` (a coroutine function) until it is true."""
    shown = 0.0
    while True:
        value = await condition()
        if value is True:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting for {what}: {value}")
        if time.monotonic() - shown > 10:
            shown = time.monotonic()
            print(f"[chaos] settling: waiting for {what} ({value})", file=sys.stderr, flush=True)
        await asyncio.sleep(0.5)  # polls the condition


async def settle(
    db: Db, probe: KafkaProbe, groups: dict[str, dict[str, set[str]]], timeout: float
) -> None:
    """Waits until nothing is in flight any more, then once more to be sure nothing moved."""
    deadline = time.monotonic() + timeout
    total = " + ".join(f"(SELECT count(*) FROM {s}.outbox)" for s in SERVICES)
    unpublished = " + ".join(
        f"(SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL)" for s in SERVICES
    )
    topics = {t for g in groups.values() for t in g}

    async def rosters() -> bool | int:
        n = await db.fetchval(
            "SELECT count(*) FROM membership.roster_jobs WHERE state NOT IN ('done', 'failed')"
        )
        return True if n == 0 else int(n)

    async def drained() -> bool | int:
        n = await db.fetchval(f"SELECT {unpublished}")
        return True if n == 0 else int(n)

    async def sent() -> bool | int:
        n = await db.fetchval(
            "SELECT count(*) FROM notifications.deliveries d JOIN notifications.bindings b"
            " ON b.member_id = d.recipient"
            " WHERE d.status IN ('pending', 'sending', 'awaiting_binding')"
        )
        return True if n == 0 else int(n)

    async def paid() -> bool | int:
        n = await db.fetchval("SELECT count(*) FROM mutual_aid.claims WHERE state = 'approved'")
        return True if n == 0 else int(n)

    while True:
        before = await db.fetchval(f"SELECT {total}")
        await until("roster jobs to finish", rosters, deadline)
        await until("outboxes to drain", drained, deadline)
        ends = await probe.end_offsets(topics)
        for group, followed in groups.items():
            mine = {tp: end for tp, end in ends.items() if tp.topic in followed}

            async def caught_up(
                group: str = group, mine: dict[TopicPartition, int] = mine
            ) -> bool | int:
                lag = await probe.lag(group, mine)
                return True if lag == 0 else lag

            await until(f"{group} to catch up", caught_up, deadline)
        await until("messages to bound members to be sent", sent, deadline)
        await until("approved claims to be paid", paid, deadline)
        if await db.fetchval(f"SELECT {total}") == before and await drained() is True:
            return


async def run(config: ChaosConfig, servers: Servers | None = None) -> ChaosResult:
    found = servers or find_servers()
    rng = random.Random(config.seed)
    scale = Scale.for_events(config.events)
    namespace = f"chaos{uuid.uuid4().hex[:6]}."
    database = await create_database(found)
    settings = {"GONGHUI_NOTIFICATIONS_SEND_RATE_PER_SECOND": str(config.send_rate)}
    if config.sender_lease_seconds is not None:
        settings["GONGHUI_NOTIFICATIONS_SENDER_LEASE_SECONDS"] = str(config.sender_lease_seconds)
    log_dir = config.log_dir / namespace.rstrip(".")
    print(f"[chaos] logs in {log_dir}; database {database.name}", file=sys.stderr)
    platform = launch_platform(
        {s: database.dsn(s) for s in SERVICES},
        found.kafka_bootstrap,
        namespace,
        log_dir,
        settings=settings,
    )
    db = Db(database.admin_dsn)
    probe = KafkaProbe(found.kafka_bootstrap)
    started = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    load: Load | None = None
    faults: Faults | None = None
    try:
        await wait_ready(platform, timeout=180)
        credentials = {
            s: await issue_credential(database.dsn(s), s, scopes=declared_scopes(s))
            for s in SERVICES
        }
        groups = consumer_topics(namespace)
        load = Load(platform, db, credentials, scale, config.seed)
        faults = Faults(platform, probe, groups, namespace)
        await load.setup()
        progress = Progress(db, platform.urls["wechat_simulator"])
        plan = fault_plan(
            config.kills, config.kafka_restarts, config.postgres_restarts, rng, config.storms
        )
        the_load, the_faults = load, faults

        def line() -> str:
            kills = sum(the_faults.kills.values())
            return (
                f"events {progress.events:,}/{config.events:,} | work {done():.0%} |"
                f" {the_load.stage} |"
                f" joins {the_load.done['online joins']:,} roster rows"
                f" {the_load.done['roster rows']:,} claims {len(the_load.ack.claims):,}"
                f" enrolments {len(the_load.ack.enrolments):,} bindings"
                f" {len(the_load.ack.bindings):,} | WeChat {progress.messages:,} |"
                f" faults {the_faults.injected}/{len(plan)} (kills {kills})"
            )

        tasks.append(asyncio.create_task(progress.run(line)))

        planned = load.planned_units

        def done() -> float:
            """The share of the flows' work done: what places the faults among the flows."""
            return the_load.units(progress.roster_rows) / planned

        async def gate() -> None:
            """The load may run up to the share of the fault after the next one."""
            while True:
                following = the_faults.injected + 1
                if following >= len(plan) or done() < plan[following].at:
                    return
                await asyncio.sleep(0.2)  # paces the load to the fault schedule

        load.gate = gate
        load_done = asyncio.Event()
        schedule = asyncio.create_task(faults.run(plan, done, load_done, rng))
        tasks.append(schedule)
        await load.run()
        load_done.set()
        await load.top_up(lambda: schedule.done() and progress.events >= config.events)
        await schedule
        await load.bindings_done()
        load_seconds = time.monotonic() - started
        print("[chaos] load done; waiting for everything to catch up", file=sys.stderr)
        settling = time.monotonic()
        await settle(db, probe, groups, config.settle_timeout)
        await asyncio.wait_for(faults.settled(), config.settle_timeout)
        settle_seconds = time.monotonic() - settling
        print("[chaos] caught up; checking the ledger", file=sys.stderr)
        ledger = await check(
            db,
            found.kafka_bootstrap,
            namespace,
            groups,
            platform.urls["wechat_simulator"],
            load.ack,
        )
        return ChaosResult(
            config,
            scale,
            time.monotonic() - started,
            load_seconds,
            settle_seconds,
            load,
            faults,
            ledger,
            started,
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if load is not None:
            await load.close()
        if faults is not None:
            await faults.close()
        platform.stop()
        await probe.close()
        await db.close()
        await drop_database(database)
        await delete_topics(found.kafka_bootstrap, namespace)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def _spread(values: list[float]) -> str:
    if not values:
        return "        -        -        -"
    ordered = sorted(values)
    median = (
        ordered[len(ordered) // 2]
        if len(ordered) % 2
        else sum(ordered[len(ordered) // 2 - 1 : len(ordered) // 2 + 1]) / 2
    )
    return f"{ordered[0]:8.1f} {median:8.1f} {ordered[-1]:8.1f}"


def report(result: ChaosResult) -> str:
    c, load, faults, ledger = result.config, result.load, result.faults, result.ledger
    total = sum(ledger.events_by_type.values())
    out = [
        f"== chaos run (seed {c.seed}): {total:,} events in {result.seconds:.0f} s"
        f" (load {result.load_seconds:.0f} s, catching up {result.settle_seconds:.0f} s) ==",
        "",
        "events by type (every service's outbox):",
    ]
    by_service: Counter[str] = Counter()
    for event_type, n in sorted(ledger.events_by_type.items()):
        out.append(f"  {event_type:<52} {n:>9,}")
        by_service[event_type.split(".")[1]] += n
    out.append("  " + ", ".join(f"{s} {n:,}" for s, n in sorted(by_service.items())))
    out += ["", "calls acknowledged (retried / answer lost in a fault):"]
    for kind, n in sorted(load.done.items()):
        out.append(f"  {kind:<22} {n:>9,}   ({load.retries[kind]:,} / {load.in_doubt[kind]:,})")
    if load.topup:
        out.append(f"  of the online joins, {load.topup:,} topped the run up while faults remained")
    out.append(f"  WeChat messages received: {ledger.figures.get('WeChat messages received', 0):,}")
    kills = sum(faults.kills.values())
    storms = sum("+" in r.label for r in faults.recoveries) // 2
    out += [
        "",
        f"faults: {kills} SIGKILLs ({storms} of two services at once), "
        + ", ".join(f"{s} {faults.kills[s]}" for s in SERVICES),
        "restarts: " + ", ".join(f"{k} {n}" for k, n in sorted(faults.restarts.items())),
    ]
    if faults.unplanned_exits:
        out.append(f"processes that exited by themselves: {faults.unplanned_exits}")
    out += [
        "",
        "recovery (s, from the fault)      n   ready: min   median      max"
        "   caught up: min   median      max",
    ]
    kinds = sorted({r.kind for r in faults.recoveries})
    for kind in [*kinds, "all service kills"]:
        mine = [
            r
            for r in faults.recoveries
            if r.kind == kind or (kind == "all service kills" and r.kind.startswith("kill"))
        ]
        ready = [r.ready_s for r in mine if r.ready_s is not None]
        caught = [r.caught_up_s for r in mine if r.caught_up_s is not None]
        out.append(f"  {kind:<30} {len(mine):>3}   {_spread(ready)}           {_spread(caught)}")
    out.append("  each fault (s into the run): ready / caught up [server down]")
    for r in faults.recoveries:
        down = f" [down {r.down_s:.1f}]" if r.down_s is not None else ""
        out.append(
            f"    {r.started - result.started:6.0f}  {r.kind:<22}"
            f" {_seconds(r.ready_s)} / {_seconds(r.caught_up_s)}{down}"
        )
    out += [
        "",
        "outbox backlog at the end: " + ", ".join(f"{s} {n}" for s, n in ledger.backlog.items()),
        "dead-letter topics: "
        + ", ".join(f"{s}.dlq {len(v)}" for s, v in ledger.dead_letters.items()),
    ]
    for service, letters in ledger.dead_letters.items():
        for letter in letters[:5]:
            out.append(f"  {service}.dlq: {letter}")
    out += ["", "figures:"]
    for name, value in ledger.figures.items():
        out.append(f"  {name:<56} {value:>12,}")
    for pair in ledger.unordered[:3]:
        out.append(f"    e.g. {pair}")
    out += ["", "ledger:"]
    for f in ledger.findings:
        mark = "ok " if f.count == 0 else "BAD"
        out.append(f"  {mark} {f.category:<16} {f.check}: {f.count:,}")
        for example in f.examples if f.count else []:
            out.append(f"        e.g. {example[:300]}")
    if load.errors:
        out.append(f"  BAD load errors: {len(load.errors)}")
        out += [f"        e.g. {e[:300]}" for e in load.errors[:3]]
    v = ledger.violations
    out += [
        "",
        "violations: " + ", ".join(f"{k} {n}" for k, n in v.items()),
        "RESULT: " + ("PASS" if result.ok else "FAIL"),
    ]
    return "\n".join(out)
