"""Nothing lost when a broker dies: the real services on the local 3-broker cluster, under load.

Membership takes online joins at a steady rate and a roster of a few thousand rows, while
notifications and training keep their member directories from its events. Meanwhile one broker
is SIGKILLed (the coordinator of notifications' consumer group), brought back and waited back
into every ISR; then another (the one leading most partitions of membership's topic). Topics
have replication factor 3 and min.insync.replicas 2, so every acknowledged event is on two
brokers. At the end, every event the outbox holds is on the topic and was applied exactly once
by each consumer, every member is in each directory once, no consumer stopped, and every
service answered ``/readyz`` with 200 throughout.

Every wait is for a condition (rows, offsets, ISRs), never a sleep. Figures are printed (-s).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from services.membership.main import Settings as MembershipSettings
from services.membership.main import build as build_membership
from services.notifications.main import Settings as NotificationsSettings
from services.notifications.main import build as build_notifications
from services.training.main import Settings as TrainingSettings
from services.training.main import build as build_training
from shared.kafka import bootstrap_servers, delete_topics, ensure_topics, idempotent_producer
from shared.runtime import EVENT_PARTITIONS
from shared.settings import ServiceSettings
from tests.integration.membership.conftest import STAFF_SCOPES, Membership
from tests.support.auth import issue_credential, signed_client
from tests.support.cluster import SCRIPT, Cluster, ClusterUnavailable, local_cluster
from tests.support.database import ScratchDatabase
from tests.support.people import id_number, mobile, name
from tests.support.servers import Servers
from tests.support.service import running, settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

JOINS_PER_SECOND = 40
LOAD_SECONDS = 20  # at least; the load goes on until both brokers are back in sync
LOAD_CAP_SECONDS = 75
ROSTER_ROWS = 3_000
SERIAL = 7_000_000
CONDITION_TIMEOUT = 90
MEMBER_JOINED = "gonghui.membership.member.joined"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    try:
        started = local_cluster()
    except ClusterUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    yield started
    # Three JVMs hold over a gigabyte: give it back to the rest of the run.
    subprocess.run([str(SCRIPT), "cluster", "down"], capture_output=True, timeout=120, check=False)


async def test_a_bootstrap_list_reaches_the_cluster_past_a_dead_host(cluster: Cluster) -> None:
    """Producer, consumer and admin client take "h1:p1,h2:p2" and try each host in turn."""
    listed = f"127.0.0.1:1, {cluster.bootstrap},"  # a closed port first, a stray space and comma
    assert bootstrap_servers(listed)[0] == "127.0.0.1:1"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(listed))
    await admin.start()
    assert len((await admin.describe_cluster())["brokers"]) == 3
    await admin.close()
    producer = idempotent_producer(listed)
    await producer.start()
    await producer.stop()
    # The runtime's consumer passes the setting as it is: aiokafka splits the string itself.
    consumer = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap)
    await consumer.start()
    assert await consumer.topics()
    await consumer.stop()


@dataclasses.dataclass
class Service:
    name: str
    app: FastAPI
    client: httpx.AsyncClient  # unsigned: /readyz

    @property
    def pool(self) -> Any:
        return self.app.state.runtime.pool

    @property
    def consumer_name(self) -> str:
        s = self.app.state.runtime.settings
        return f"{s.topic_namespace}{s.service}"

    def handles(self, topic: str) -> set[str]:
        return set(self.app.state.runtime.follows.get(topic, {}))


@dataclasses.dataclass
class Readiness:
    """``/readyz`` of every service, polled every 0.2 s until stopped."""

    polls: int = 0
    failures: list[tuple[float, str, int, str]] = dataclasses.field(default_factory=list)
    stopping: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def watch(self, services: Iterable[Service]) -> None:
        began = time.monotonic()
        while not self.stopping.is_set():
            for service in services:
                answer = await service.client.get("/readyz")
                self.polls += 1
                if answer.status_code != 200:
                    at = time.monotonic() - began
                    self.failures.append((at, service.name, answer.status_code, answer.text))
            await asyncio.sleep(0.2)


@dataclasses.dataclass
class Load:
    """Online joins on a fixed schedule (open loop: a slow answer does not slow the next)."""

    staff: httpx.AsyncClient
    union_id: str
    joined: list[str] = dataclasses.field(default_factory=list)
    refused: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    sent: int = 0

    async def run(self, until: Callable[[], bool]) -> float:
        began = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        while not until():
            due = began + self.sent / JOINS_PER_SECOND
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.join(SERIAL + self.sent)))
            self.sent += 1
        await asyncio.gather(*tasks)
        return time.monotonic() - began

    async def join(self, serial: int) -> None:
        answer = await self.staff.post(
            "/members",
            json={
                "name": name(serial),
                "id_number": id_number(serial),
                "mobile": mobile(serial),
                "channel": "online",
                "union_id": self.union_id,
                "employer_name": "亳州药业有限公司",
            },
        )
        if answer.status_code == 201:
            self.joined.append(answer.json()["id"])
        else:
            self.refused.append((answer.status_code, answer.text[:300]))


async def seconds_until(check: Callable[[], Awaitable[Any]], what: str) -> float:
    """Seconds until ``check()`` is truthy; fails naming ``what`` and the last value."""
    began = time.monotonic()
    await eventually(check, CONDITION_TIMEOUT, what)
    return time.monotonic() - began


def topics_of(settings: ServiceSettings, follows: Iterable[str]) -> dict[str, int]:
    """The topics ServiceRuntime.start ensures, with their partition counts."""
    return {settings.events_topic: EVENT_PARTITIONS, settings.dead_letter_topic: 1} | {
        settings.topic(t): EVENT_PARTITIONS for t in follows
    }


async def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Events of ``topic`` the group has not committed yet (all of them: never committed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(bootstrap))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(EVENT_PARTITIONS)]
        ends = await consumer.end_offsets(parts)
        committed = await admin.list_consumer_group_offsets(group, partitions=parts)
        return sum(
            end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
            for tp, end in ends.items()
        )
    finally:
        await consumer.stop()
        await admin.close()


async def event_ids_on(bootstrap: str, topic: str, partitions: int) -> Counter[str]:
    """Every event id (ce_id header) on the topic, with how often it is there."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        seen: Counter[str] = Counter()
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    seen[dict(record.headers)["ce_id"].decode()] += 1
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return seen
    finally:
        await consumer.stop()


@asynccontextmanager
async def platform(
    database: ScratchDatabase, servers: Servers, namespace: str, cluster: Cluster
) -> AsyncIterator[dict[str, Service]]:
    """Membership, notifications and training in-process on the cluster, their topics made
    with replication 3 (until the runtime passes the settings to ensure_topics itself)."""
    on_cluster = dataclasses.replace(servers, kafka_bootstrap=cluster.bootstrap)
    replicated = {"topic_replication_factor": 3, "topic_min_insync_replicas": 2}
    wanted: dict[str, tuple[type[ServiceSettings], Callable[[Any], FastAPI], dict[str, Any]]] = {
        "membership": (MembershipSettings, build_membership, {}),
        "notifications": (NotificationsSettings, build_notifications, {"run_sender": False}),
        "training": (TrainingSettings, build_training, {}),
    }
    async with AsyncExitStack() as stack:
        services = {}
        for service, (settings_cls, build, extra) in wanted.items():
            settings = settings_for(
                settings_cls, database, on_cluster, namespace, **replicated, **extra
            )
            follows = build(settings).state.runtime.follows  # built only to read what it follows
            await ensure_topics(
                cluster.bootstrap,
                topics_of(settings, follows),
                replication_factor=settings.topic_replication_factor,
                min_insync_replicas=settings.topic_min_insync_replicas,
            )
            app, client = await stack.enter_async_context(running(build, settings))
            services[service] = Service(service, app, client)
        yield services


async def test_nothing_is_lost_or_applied_twice_when_brokers_die_under_load(
    cluster: Cluster,
    database: ScratchDatabase,
    servers: Servers,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    began = time.monotonic()
    await cluster.healthy()
    events_topic = f"{namespace}membership.events"
    try:
        async with platform(database, servers, namespace, cluster) as services:
            membership = services["membership"]
            consumers = [services["notifications"], services["training"]]
            app_id, secret = await issue_credential(
                database.dsn("membership"), "membership", scopes=STAFF_SCOPES
            )
            async with await signed_client(membership.app, app_id, secret) as staff:
                ids = await Membership(membership.app, staff, namespace, database).union_tree()
                figures = await _under_load(cluster, services, staff, ids, events_topic)
                figures |= await _everything_applied_once(
                    cluster, membership, consumers, events_topic
                )
                await _consumers_still_follow(staff, ids["factory"], consumers, figures)
        figures["test seconds"] = round(time.monotonic() - began, 1)
        print("\ncluster test:\n  " + "\n  ".join(f"{k}: {v}" for k, v in figures.items()))
        # What the services logged meanwhile (retries, restarts): for the reader, not asserted.
        logged = Counter(
            f"{r.levelname} {r.name}: {r.getMessage()[:120]}"
            for r in caplog.records
            if r.name.startswith(("shared", "services", "aiokafka"))
        )
        print("  services logged:", *(f"\n    {n} x {m}" for m, n in logged.most_common(12)))
    finally:
        await delete_topics(cluster.bootstrap, namespace)


async def _under_load(
    cluster: Cluster,
    services: dict[str, Service],
    staff: httpx.AsyncClient,
    ids: dict[str, str],
    events_topic: str,
) -> dict[str, Any]:
    membership = services["membership"]
    consumers = [services["notifications"], services["training"]]
    readiness = Readiness()
    watcher = asyncio.create_task(readiness.watch(services.values()))
    load = Load(staff, ids["factory"])
    chaos_done = asyncio.Event()
    load_began = time.monotonic()

    def load_over() -> bool:
        elapsed = time.monotonic() - load_began
        return elapsed > LOAD_CAP_SECONDS or (chaos_done.is_set() and elapsed > LOAD_SECONDS)

    async def published() -> int:
        return await membership.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
        )

    async def progress() -> list[int]:
        """Events published by membership's relay, then applied by each consumer."""
        counts = [await published()]
        for consumer in consumers:
            counts.append(
                await consumer.pool.fetchval(
                    "SELECT count(*) FROM inbox WHERE consumer = $1", consumer.consumer_name
                )
            )
        return counts

    async def kill_and_restart(victim: int, why: str) -> dict[str, float]:
        before = await progress()
        killed_at = time.monotonic()
        await cluster.kill(victim)
        fenced = await cluster.fenced(victim)

        async def moved_on() -> bool:
            return all(
                now >= then + 200 for now, then in zip(await progress(), before, strict=True)
            )

        # Down for a while, with work going on: the relay publishes and every consumer applies
        # 200 more events without it.
        await seconds_until(moved_on, f"relay and consumers going on while broker {victim} is down")
        down = time.monotonic() - killed_at
        listening = await cluster.start(victim)
        in_sync = await cluster.in_sync(victim)
        return {
            f"broker {victim} killed ({why}); fenced after s": round(fenced, 1),
            f"broker {victim} down for s": round(down, 1),
            f"broker {victim} listening after restart in s": round(listening, 1),
            f"broker {victim} back in every ISR after s more": round(in_sync, 1),
        }

    async def chaos() -> dict[str, float]:
        try:
            # Once the load runs and events flow.
            await seconds_until(lambda: _more_than(published, 300), "the first events published")
            group = f"{services['notifications'].consumer_name}"
            first = await cluster.coordinator(group)
            figures = await kill_and_restart(first, "coordinator of notifications' group")
            second = await cluster.leader_of_most(events_topic)
            if second == first:
                second = first % 3 + 1
            figures |= await kill_and_restart(second, "leader of most partitions")
            return figures
        finally:
            chaos_done.set()

    roster = await staff.post(
        f"/organisations/{ids['depot']}/rosters/batch",
        json={
            "batch_id": f"cluster-{uuid.uuid4().hex[:8]}",
            "rows": [
                {"id_number": id_number(SERIAL + 500_000 + i), "name": name(i), "mobile": mobile(i)}
                for i in range(ROSTER_ROWS)
            ],
        },
    )
    assert roster.status_code == 202, roster.text
    chaos_task = asyncio.create_task(chaos())
    try:
        load_seconds = await load.run(load_over)
        figures = await chaos_task
    finally:
        readiness.stopping.set()
        await asyncio.gather(watcher, return_exceptions=True)
        if not chaos_task.done():
            chaos_task.cancel()

    assert not load.refused, f"{len(load.refused)} joins refused, e.g. {load.refused[:3]}"
    job_id = roster.json()["id"]
    await seconds_until(lambda: _roster_done(staff, job_id), f"roster job {job_id} done")
    assert readiness.polls > 0
    assert not readiness.failures, f"/readyz not 200 at: {readiness.failures[:5]}"
    return {
        "online joins": len(load.joined),
        "in s": round(load_seconds, 1),
        "roster rows": ROSTER_ROWS,
        **figures,
        "/readyz polls all 200": readiness.polls,
    }


async def _everything_applied_once(
    cluster: Cluster, membership: Service, consumers: list[Service], events_topic: str
) -> dict[str, Any]:
    """Every event of the outbox is on the topic, and applied once by each consumer."""
    short = "membership.events"
    await seconds_until(
        lambda: membership.pool.fetchval(
            "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"
        ),
        "membership's outbox all published",
    )
    outbox = await membership.pool.fetch(
        "SELECT event_id::text AS id, type, key FROM outbox WHERE topic = $1", events_topic
    )
    on_topic = await event_ids_on(cluster.bootstrap, events_topic, EVENT_PARTITIONS)
    missing = {r["id"] for r in outbox} - on_topic.keys()
    assert not missing, (
        f"{len(missing)} published events are not on the topic: {sorted(missing)[:5]}"
    )
    figures: dict[str, Any] = {
        "events in membership's outbox": len(outbox),
        "records on the topic": sum(on_topic.values()),
        "events on the topic more than once": sum(1 for n in on_topic.values() if n > 1),
    }
    joined = {r["key"] for r in outbox if r["type"] == MEMBER_JOINED}
    for consumer in consumers:
        expected = {r["id"] for r in outbox if r["type"] in consumer.handles(short)}

        async def applied(c: Service = consumer, want: set[str] = expected) -> bool:
            got = await c.pool.fetchval(
                "SELECT count(*) FROM inbox WHERE consumer = $1 AND event_id = ANY($2::text[])",
                c.consumer_name,
                list(want),
            )
            return got == len(want)

        await seconds_until(applied, f"{consumer.name} applying {len(expected)} events")
        rows = await consumer.pool.fetch(
            "SELECT event_id, outcome FROM inbox"
            " WHERE consumer = $1 AND event_id = ANY($2::text[])",
            consumer.consumer_name,
            list(expected),
        )
        assert Counter(r["outcome"] for r in rows) == {"applied": len(expected)}
        assert {r["event_id"] for r in rows} == expected
        figures[f"{consumer.name} applied, once each"] = len(rows)
        members = await consumer.pool.fetchval(
            "SELECT count(*) FROM members WHERE member_id = ANY($1::text[])", list(joined)
        )
        assert members == len(joined), f"{consumer.name} knows {members} of {len(joined)} members"
        await seconds_until(
            functools.partial(_lag_is_zero, cluster, consumer.consumer_name, events_topic),
            f"{consumer.name}'s committed offsets reaching the end of {events_topic}",
        )
        dlq = consumer.app.state.runtime.settings.dead_letter_topic
        dead = await event_ids_on(cluster.bootstrap, dlq, 1)
        assert not dead, f"{consumer.name} dead-lettered {sum(dead.values())} events"
    return figures


async def _consumers_still_follow(
    staff: httpx.AsyncClient, union_id: str, consumers: list[Service], figures: dict[str, Any]
) -> None:
    """A join after it all reaches every consumer: none of them stopped."""
    answer = await staff.post(
        "/members",
        json={
            "name": "王芳",
            "id_number": id_number(SERIAL + 999_999),
            "mobile": mobile(SERIAL + 999_999),
            "channel": "online",
            "union_id": union_id,
            "employer_name": "亳州药业有限公司",
        },
    )
    assert answer.status_code == 201, answer.text
    member_id = answer.json()["id"]
    for consumer in consumers:
        took = await seconds_until(
            functools.partial(
                consumer.pool.fetchval,
                "SELECT count(*) = 1 FROM members WHERE member_id = $1",
                member_id,
            ),
            f"{consumer.name} applying a join made after the kills",
        )
        figures[f"{consumer.name} applied a last join after s"] = round(took, 1)


async def _more_than(count: Callable[[], Awaitable[int]], floor: int) -> int | None:
    value = await count()
    return value if value >= floor else None


async def _roster_done(staff: httpx.AsyncClient, job_id: str) -> bool:
    job = (await staff.get(f"/rosters/{job_id}")).json()
    assert job["state"] != "failed", job
    if job["state"] != "done":
        return False
    assert (job["joined"], job["rejected"]) == (ROSTER_ROWS, 0), job
    return True


async def _lag_is_zero(cluster: Cluster, group: str, topic: str) -> bool:
    return await group_lag(cluster.bootstrap, group, topic) == 0
