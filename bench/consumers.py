"""How fast each consumer group applies membership's events: ``uv run python -m bench.consumers
[--events 200000]``.

On a scratch database and a topic namespace of its own, writes N ``MemberJoined`` events (real
envelopes, keyed by member id, after the ``OrganisationEstablished`` events of the unions they join)
straight to ``membership.events``, then starts each service as its ``main.py`` wires it (relay off),
one at a time, each in a process of its own (``--follow``, which imports that service alone), and
waits until its group has committed every offset. Per group it prints events/s, CPU seconds per
1,000 events in that process and in the Postgres backends serving the scratch database, and the
time to catch up from start (which includes joining the group); the report lists the peak RSS of
each group's process and of the benchmark's own, which only produces.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date
from itertools import chain, islice
from typing import Any, TypeVar

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import namespace, servers
from bench.processes import ROOT, Watch, high_water_mb
from bench.results import Figure, Outcome
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined, OrganisationEstablished
from shared.kafka import delete_topics, ensure_topics
from shared.migrations import upgrade_async
from shared.runtime import EVENT_PARTITIONS
from shared.settings import ServiceSettings
from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.people import name
from tests.support.servers import Servers
from tests.support.service import settings_for

T = TypeVar("T")
CITY = "city"
COUNTIES = [f"county-{n}" for n in range(8)]
# The categories membership files roster members under, in roughly a roster's proportions.
CATEGORY_MIX = [[], [], ["migrant_worker"], ["migrant_worker"], ["woman"], ["new_employment_form"]]


@dataclass(frozen=True)
class Group:
    service: str
    main: str  # the module wiring it (Settings, build), imported only by the group's process


GROUPS = [
    Group("membership", "services.membership.main"),  # its own webhook fan-out
    Group("mutual_aid", "services.mutual_aid.main"),
    Group("notifications", "services.notifications.main"),
    Group("training", "services.training.main"),
]
BY_SERVICE = {group.service: group for group in GROUPS}


def organisation_events(unions: int) -> Iterator[EventData]:
    yield OrganisationEstablished(
        organisation_id=CITY, name="亳州市总工会", kind="city_federation", parent_id=None, path=[]
    )
    for county in COUNTIES:
        yield OrganisationEstablished(
            organisation_id=county,
            name=f"{county}总工会",
            kind="county_federation",
            parent_id=CITY,
            path=[CITY],
        )
    for n in range(unions):
        county = COUNTIES[n % len(COUNTIES)]
        yield OrganisationEstablished(
            organisation_id=f"union-{n}",
            name=f"第{n}基层工会",
            kind="enterprise",
            parent_id=county,
            path=[CITY, county],
        )


def joins(count: int, unions: int) -> Iterator[EventData]:
    rng = random.Random(7)
    for serial in range(count):
        n = rng.randrange(unions)
        county = COUNTIES[n % len(COUNTIES)]
        union = f"union-{n}"
        yield MemberJoined(
            member_id=f"M{serial:08d}",
            name=name(serial),
            union_id=union,
            union_path=[CITY, county, union],
            channel="roster",
            categories=rng.choice(CATEGORY_MIX),
            joined_on=date(2026, 3, 1),
            card_number=f"GH{serial:010d}",
            sex=rng.choice("MF"),
            birth_date=date(1970 + serial % 35, 1 + serial % 12, 1 + serial % 28),
        )


async def produce(bootstrap: str, topic: str, events: int, unions: int) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    sent = 0
    try:
        # Built a chunk at a time as they are sent: 200,000 events built up front, with their
        # envelopes, were over 300 MB of this process.
        for chunk in _chunks(chain(organisation_events(unions), joins(events, unions)), 5000):
            futures = []
            for event in chunk:
                envelope = Envelope.wrap(event)
                futures.append(
                    await producer.send(
                        topic,
                        value=envelope.data,
                        key=envelope.subject.encode(),
                        headers=envelope.kafka_headers(),
                    )
                )
            await asyncio.gather(*futures)
            sent += len(chunk)
            print(f"\r[bench] produced {sent:,}", end="", file=sys.stderr, flush=True)
    finally:
        await producer.stop()
    print(file=sys.stderr)
    return sent


def _chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while chunk := list(islice(items, size)):
        yield chunk


def postgres_cpu(database: str) -> float:
    """CPU seconds the Postgres backends serving ``database`` have used (ps titles name it)."""
    total = 0.0
    for p in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        if p.info["name"] == "postgres" and database in " ".join(p.info["cmdline"] or []):
            total += p.info["cpu_times"].user + p.info["cpu_times"].system
    return total


async def follow(
    group: Group, db: ScratchDatabase, ns: str, topic: str, total: int
) -> dict[str, float]:
    """In the group's own process: start the service, wait until its group has committed
    ``total`` offsets; events/s, CPU per event (this process, Postgres), its peak RSS."""
    wiring = importlib.import_module(group.main)
    found = db.servers
    settings = settings_for(wiring.Settings, db, found, ns, run_relay=False)
    await upgrade_async(settings.service, settings.database_url, settings.db_schema)
    watcher = AIOKafkaConsumer(
        bootstrap_servers=found.kafka_bootstrap, group_id=group_name(settings)
    )
    await watcher.start()
    partitions = [TopicPartition(topic, p) for p in range(EVENT_PARTITIONS)]

    async def committed() -> int:
        return sum([await watcher.committed(tp) or 0 for tp in partitions])

    app = wiring.build(settings)
    cpu, db_cpu, started = time.process_time(), postgres_cpu(db.name), time.perf_counter()
    first: float | None = None
    try:
        async with app.router.lifespan_context(app):
            while (done := await committed()) < total:
                if done and first is None:
                    first, first_done = time.perf_counter(), done
                print(f"\r[bench] {group.service}: {done:,}/{total:,}", end="", file=sys.stderr)
                await asyncio.sleep(0.5)
            finished = time.perf_counter()
            cpu, db_cpu = time.process_time() - cpu, postgres_cpu(db.name) - db_cpu
    finally:
        await watcher.stop()
    print(file=sys.stderr)
    first, first_done = (first, first_done) if first is not None else (started, 0)
    rate = (total - first_done) / max(finished - first, 1e-9)
    print(
        f"[bench] {group.service:<14} {rate:>9,.0f} events/s"
        f"  cpu {cpu / total * 1000:6.3f} s/1000 events (postgres {db_cpu / total * 1000:6.3f})"
        f"  caught up in {finished - started:7.1f} s",
        file=sys.stderr,
    )
    return {
        "events_per_second": rate,
        "cpu_us_per_event": cpu / total * 1e6,
        "postgres_us_per_event": db_cpu / total * 1e6,
        "caught_up_s": finished - started,
        # Read by the process itself as it ends: the benchmark's samples may miss the last moments.
        "peak_rss_mb": high_water_mb(os.getpid()),
    }


async def follow_apart(
    group: Group, db: ScratchDatabase, ns: str, topic: str, total: int, watch: Watch
) -> dict[str, float]:
    """:func:`follow` in a process of its own, watched as the group's; its answer is the last
    line it prints."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.consumers", "--follow", group.service, db.name,
        orjson.dumps(asdict(db.servers)).decode(), ns, topic, str(total),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    watch.add(group.service, process.pid)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{group.service}'s process exited with {process.returncode}")
    hop: dict[str, float] = orjson.loads(out.splitlines()[-1])
    watch.peak_mb[group.service] = max(watch.peak_mb.get(group.service, 0.0), hop["peak_rss_mb"])
    return hop


def group_name(settings: ServiceSettings) -> str:
    return f"{settings.topic_namespace}{settings.service}"  # as shared.runtime names it


FULL: dict[str, Any] = {"events": 200_000, "unions": 400}
QUICK: dict[str, Any] = {"events": 5_000, "unions": 40}


async def run(events: int, unions: int, only: list[str] | None = None) -> Outcome:
    outcome = Outcome("consumers")
    found = servers()
    db = await create_database(found)
    ns = namespace()
    topic = f"{ns}membership.events"
    try:
        async with Watch(database=db.name) as watch:
            await ensure_topics(found.kafka_bootstrap, {topic: EVENT_PARTITIONS})
            started = time.perf_counter()
            total = await produce(found.kafka_bootstrap, topic, events, unions)
            print(f"[bench] {total:,} events produced in {time.perf_counter() - started:.1f} s")
            for group in GROUPS:
                if not only or group.service in only:
                    hop = await follow_apart(group, db, ns, topic, total, watch)
                    outcome.add(
                        Figure(
                            f"{group.service} group: CPU per MemberJoined (its process)",
                            hop["cpu_us_per_event"],
                            "µs",
                            note=f"{hop['events_per_second']:,.0f} events/s alone; Postgres"
                            f" {hop['postgres_us_per_event']:.0f} µs per event",
                        )
                    )
        outcome.peak_rss_mb = dict(watch.peak_mb)
    finally:
        await delete_topics(found.kafka_bootstrap, ns)
        await drop_database(db)
    outcome.notes.append(
        "consumers: each group runs alone in a process of its own, one after the other"
    )
    return outcome


if __name__ == "__main__":
    if sys.argv[1:2] == ["--follow"]:  # the group's process follow_apart starts
        service, database, found, ns, topic, total = sys.argv[2:]
        db = ScratchDatabase(database, Servers(**orjson.loads(found)))
        hop = asyncio.run(follow(BY_SERVICE[service], db, ns, topic, int(total)))
        print(orjson.dumps(hop).decode())
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--unions", type=int, default=400)
    parser.add_argument("--only", nargs="*", default=[], help="services to run (default: all)")
    args = parser.parse_args()
    asyncio.run(run(args.events, args.unions, args.only))
