"""Batch handlers against the real broker and database: a run of joins is applied in one call, at
most once, with a poison event dead-lettered alone; and each service's batch handler for
``MemberJoined`` leaves exactly what applying the same events one by one leaves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from services.mutual_aid.main import follows as mutual_aid_follows
from services.notifications.handlers import follows as notifications_follows
from services.notifications.live_rules import LiveRules
from services.notifications.main import RULES
from services.training.handlers import membership_handlers as training_handlers
from shared.consumer import Batched, Handler, Run, Statement
from shared.db import connect
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import (
    MemberDetailsChanged,
    MemberJoined,
    MemberLeft,
    OrganisationEstablished,
)
from shared.kafka import idempotent_producer
from shared.migrations import upgrade_async
from tests.support.backbone import Probe, Running, joined, note, read_all
from tests.support.clock import ManualClock
from tests.support.database import ScratchDatabase
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def service(probe: Probe) -> Probe:
    """The backbone's throwaway service: its own schema, topic and dead-letter topic."""
    return probe


class Recorder:
    """A batch handler that notes each event, and the size of each run it was given."""

    def __init__(self, poison: str | None = None) -> None:
        self.poison = poison
        self.runs: list[int] = []

    async def apply(self, conn: asyncpg.Connection, events: Run) -> None:
        self.runs.append(len(events))
        for data, envelope in events:
            assert isinstance(data, MemberJoined)
            if data.member_id == self.poison:
                raise ValueError("cannot apply this member")
            await note(conn, data, envelope)


async def produce(service: Probe, envelopes: list[Envelope]) -> None:
    """Straight to the topic on one key (one partition), so the consumer's first poll has all."""
    producer = idempotent_producer(service.bootstrap)
    await producer.start()
    for envelope in envelopes:
        await producer.send_and_wait(
            service.topic, envelope.data, key=b"one-key", headers=envelope.kafka_headers()
        )
    await producer.stop()


async def applied_before(service: Probe, group: str, envelope: Envelope) -> None:
    """The event's inbox row, as a consumer that crashed before committing its offset left it."""
    await service.pool.execute(
        "INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)",
        group,
        envelope.id,
        envelope.type,
    )


async def test_a_run_with_an_event_already_in_the_inbox_applies_it_once(service: Probe) -> None:
    envelopes = [Envelope.wrap(joined(f"m{i}")) for i in range(6)]
    await produce(service, [*envelopes, envelopes[4]])  # m4 delivered twice in the batch, too
    recorder = Recorder()
    async with Running(service) as running:
        await applied_before(service, running.group, envelopes[2])
        running.consumer.handlers[MemberJoined.type] = Batched(recorder.apply)
        await running.caught_up()  # the whole batch, duplicates included, is behind us
    assert [r["member_id"] for r in await service.notes()] == ["m0", "m1", "m3", "m4", "m5"]
    assert recorder.runs == [5]  # one call for the whole run


async def test_a_poison_join_in_a_run_is_dead_lettered_and_the_others_applied(
    service: Probe,
) -> None:
    await produce(service, [Envelope.wrap(joined(m)) for m in ("m0", "m1", "cursed", "m3", "m4")])
    recorder = Recorder(poison="cursed")
    async with Running(service) as running:
        running.consumer.handlers[MemberJoined.type] = Batched(recorder.apply)
        await eventually(lambda: asyncio.sleep(0, running.consumer.dead_lettered == 1))
    assert [r["member_id"] for r in await service.notes()] == ["m0", "m1", "m3", "m4"]
    assert recorder.runs[0] == 5  # the fast path tried the run at once, then event by event
    [letter] = await read_all(service.bootstrap, service.dlq, expected=1)
    headers = dict(letter.headers)
    assert headers["dlq_reason"] == b"handler_failed"
    assert b"cannot apply this member" in headers["dlq_error"]
    assert (await service.pool.fetchval("SELECT count(*) FROM inbox")) == 5


def noted(run: Run) -> list[list[str]]:
    return [
        [envelope.id for _, envelope in run],
        [data.member_id for data, _ in run],  # type: ignore[attr-defined]
        [data.name for data, _ in run],  # type: ignore[attr-defined]
    ]


# Notes the run's fresh events in one statement; a member named "cursed" fails it (a division
# by zero its six letters make at run time: a constant 1 / 0 would fail every statement).
NOTED = Statement(
    "INSERT INTO notes (member_id, name)"
    " SELECT m, CASE WHEN n = 'cursed' THEN (1 / (length(n) - 6))::text ELSE n END"
    " FROM unnest($1::text[], $2::text[], $3::text[]) AS x(e, m, n)"
    " WHERE e IN (SELECT event_id FROM fresh)",
    noted,
)


async def never(conn: asyncpg.Connection, events: Run) -> None:
    raise AssertionError("a run declared as one statement was applied otherwise")


async def test_a_batch_that_is_one_statement_applies_each_event_once(service: Probe) -> None:
    envelopes = [Envelope.wrap(joined(f"m{i}", name=f"n{i}")) for i in range(6)]
    await produce(service, envelopes)
    async with Running(service) as running:
        await applied_before(service, running.group, envelopes[2])
        # The careful path would call ``never`` and dead-letter: the statement did it all.
        running.consumer.handlers[MemberJoined.type] = Batched(never, NOTED)
        await running.caught_up()
        await produce(service, [Envelope.wrap(joined("alone"))])  # a batch of one, the same way
        await eventually(lambda: asyncio.sleep(0, running.consumer.applied == 6))
        assert running.consumer.dead_lettered == 0
    assert [r["member_id"] for r in await service.notes()] == [
        *(f"m{i}" for i in (0, 1, 3, 4, 5)),
        "alone",
    ]
    assert (await service.pool.fetchval("SELECT count(*) FROM inbox")) == 7


async def test_a_statement_with_a_rest_gives_the_rest_only_the_fresh_events(
    service: Probe,
) -> None:
    envelopes = [Envelope.wrap(joined(f"m{i}", name=f"n{i}")) for i in range(4)]
    await produce(service, envelopes)
    rest = Recorder()  # notes each event again: the statement's note, then the rest's
    async with Running(service) as running:
        await applied_before(service, running.group, envelopes[1])
        running.consumer.handlers[MemberJoined.type] = Batched(never, NOTED, rest.apply)
        await running.caught_up()
        await produce(service, [Envelope.wrap(joined("alone"))])
        await eventually(lambda: asyncio.sleep(0, running.consumer.applied == 4))
        assert running.consumer.dead_lettered == 0
    noted = [r["member_id"] for r in await service.notes()]
    assert noted == ["m0", "m2", "m3", "m0", "m2", "m3", "alone", "alone"]
    assert rest.runs == [3, 1]


async def test_a_poison_event_in_a_one_statement_run_is_dead_lettered_alone(
    service: Probe,
) -> None:
    await produce(service, [Envelope.wrap(joined(m, name=m)) for m in ("m0", "cursed", "m2")])
    async with Running(service) as running:
        running.consumer.handlers[MemberJoined.type] = Batched.of(NOTED)
        await eventually(lambda: asyncio.sleep(0, running.consumer.dead_lettered == 1))
    assert [r["member_id"] for r in await service.notes()] == ["m0", "m2"]
    [letter] = await read_all(service.bootstrap, service.dlq, expected=1)
    assert dict(letter.headers)["dlq_reason"] == b"handler_failed"
    assert (await service.pool.fetchval("SELECT count(*) FROM inbox")) == 3


# ---------------------------------------------------------------- each service's batch handler

FIXED_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# Rows as each service keeps them for the members of a test; timestamps of the write left out.
TABLES = {
    "mutual_aid": [
        "SELECT member_id, union_id, periods FROM members WHERE member_id = ANY($1)"
        " ORDER BY member_id"
    ],
    "training": [
        "SELECT member_id, name, status, union_id, union_path, categories, is_cadre"
        " FROM members WHERE member_id = ANY($1) ORDER BY member_id"
    ],
    "notifications": [
        "SELECT member_id, name, union_id, union_path, categories, card_number, status"
        " FROM members WHERE member_id = ANY($1) ORDER BY member_id",
        "SELECT event_id, event_type, rule, category, recipient, template_id, client_msg_id,"
        " status, reason, message, next_attempt_at, trace_headers"
        " FROM deliveries WHERE recipient = ANY($1) ORDER BY id",
    ],
}


def handlers_of(service: str) -> dict[str, Handler]:
    topic = f"t{uuid.uuid4().hex[:6]}.{service}.events"
    if service == "mutual_aid":
        return mutual_aid_follows(topic, ManualClock(FIXED_NOW))
    if service == "training":
        return training_handlers(topic, ManualClock(FIXED_NOW))
    rules = LiveRules(RULES)
    return notifications_follows(rules, ManualClock(FIXED_NOW), timedelta(minutes=10), topic)[
        "membership.events"
    ]


@pytest.fixture
async def schemas(database: ScratchDatabase) -> AsyncIterator[None]:
    for service in TABLES:
        await upgrade_async(service, database.dsn(service), service)
    yield


def events(tag: str) -> tuple[list[EventData], list[EventData]]:
    """(what came before, a run of joins): a rejoin after leaving, members in
    different unions and categories, and a member whose union is not known yet."""
    union = f"{tag}-union"
    before: list[EventData] = [
        OrganisationEstablished(
            organisation_id=union,
            name="谯城区卷烟厂工会",
            kind="enterprise",
            parent_id="city",
            path=["city"],
        ),
        joined(f"{tag}-back"),
        MemberLeft(member_id=f"{tag}-back", left_on=date(2026, 2, 1), reason="retired"),
    ]
    run: list[EventData] = []
    for i, categories in enumerate([[], ["migrant_worker"], ["woman", "cadre"]]):
        run.append(
            joined(f"{tag}-{i}").model_copy(
                update={"union_id": union, "union_path": ["city", union], "categories": categories}
            )
        )
    run.append(joined(f"{tag}-back").model_copy(update={"joined_on": date(2026, 3, 1)}))
    run.append(joined(f"{tag}-elsewhere").model_copy(update={"union_id": f"{tag}-unknown"}))
    return before, run


async def effect(
    conn: asyncpg.Connection, service: str, run: Run, before: Run, at_once: bool
) -> list[list[dict[str, object]]]:
    handlers = handlers_of(service)
    members = [data.member_id for data, _ in run]  # type: ignore[attr-defined]
    tx = conn.transaction()
    await tx.start()
    try:
        for data, envelope in before:
            if (handler := handlers.get(data.type)) is not None:
                await handler(conn, data, envelope)
        batched = handlers[run[0][0].type]
        assert isinstance(batched, Batched)
        if at_once:
            await batched.apply(conn, run)
        else:
            # Mutual aid's and training's handler of leaving is the one that applied every member
            # event before; notifications' is gone, so its batch handler takes one at a time.
            one = handlers[MemberLeft.type] if service != "notifications" else batched
            for data, envelope in run:
                await one(conn, data, envelope)
        return [[dict(r) for r in await conn.fetch(sql, members)] for sql in TABLES[service]]
    finally:
        await tx.rollback()


@pytest.mark.parametrize("service", sorted(TABLES))
async def test_a_run_of_joins_at_once_leaves_what_one_by_one_leaves(
    database: ScratchDatabase, schemas: None, service: str
) -> None:
    earlier, joins = events(f"b{uuid.uuid4().hex[:8]}")
    before, run = [(e, Envelope.wrap(e)) for e in earlier], [(e, Envelope.wrap(e)) for e in joins]
    conn = await connect(database.dsn(service), service)
    try:
        one_by_one = await effect(conn, service, run, before, at_once=False)
        at_once = await effect(conn, service, run, before, at_once=True)
    finally:
        await conn.close()
    assert at_once == one_by_one
    assert len(one_by_one[0]) == len(joins)  # every member is there: the check compares something


async def test_a_run_of_changes_to_training_members_at_once_leaves_what_one_by_one_leaves(
    database: ScratchDatabase, schemas: None
) -> None:
    earlier, joins = events(f"b{uuid.uuid4().hex[:8]}")
    changes: list[EventData] = [
        MemberDetailsChanged(
            member_id=j.member_id,  # type: ignore[attr-defined]
            name=f"李{i}",
            categories=["cadre"] if i % 2 else [],
            changed_fields=["name", "categories"],
        )
        for i, j in enumerate(joins)
    ]
    changes.append(  # never seen joining: training keeps nothing
        MemberDetailsChanged(member_id="nobody", name="王五", categories=[], changed_fields=[])
    )
    before = [(e, Envelope.wrap(e)) for e in [*earlier, *joins]]
    run = [(e, Envelope.wrap(e)) for e in changes]
    conn = await connect(database.dsn("training"), "training")
    try:
        one_by_one = await effect(conn, "training", run, before, at_once=False)
        at_once = await effect(conn, "training", run, before, at_once=True)
    finally:
        await conn.close()
    assert at_once == one_by_one
    assert {r["name"] for r in one_by_one[0]} == {f"李{i}" for i in range(len(joins))}
