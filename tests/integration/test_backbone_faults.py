"""The backbone's loss and stall windows, each closed: a dead letter is kept even when the
consumer dies while sending it, the relay reconnects within seconds when its connection is
killed, a poison run is dead-lettered without holding other events' locks, and a unit of work
that joins a consumer's transaction cannot end without committing."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError

from shared.consumer import ConsumerRunner
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined
from shared.kafka import idempotent_producer
from shared.outbox import Relay
from shared.uow import UncommittedWork, UnitOfWork
from tests.support.backbone import Probe, Running, joined, note, read_all, relay_once
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def publish(probe: Probe, *events: EventData) -> None:
    async with UnitOfWork(probe.pool, probe.topic) as uow:
        uow.publish(*events)
        await uow.commit()


async def refuse(conn: asyncpg.Connection, data: EventData, envelope: Envelope) -> None:
    raise ValueError(f"cannot apply {envelope.subject}")


async def test_a_consumer_dying_while_it_dead_letters_loses_nothing(probe: Probe) -> None:
    await publish(probe, joined("cursed"))
    await relay_once(probe)

    class Killed(Exception):
        pass

    class DiesWhileDeadLettering(ConsumerRunner):
        async def _dead_letter(self, conn, letter, envelope=None):  # type: ignore[no-untyped-def]
            # The process is killed before Kafka acknowledged the dead letter.
            raise Killed

    producer = idempotent_producer(probe.bootstrap)
    await producer.start()
    dying = DiesWhileDeadLettering(
        name="faults",
        pool=probe.pool,
        bootstrap=probe.bootstrap,
        topics=[probe.topic],
        handlers={MemberJoined.type: refuse},
        producer=producer,
        dead_letter_topic=probe.dlq,
        backoff_seconds=0.01,
    )
    with pytest.raises(Killed):
        await dying.run()
    await producer.stop()
    # Nothing says the event was handled: the next consumer meets it again.
    assert await probe.pool.fetchval("SELECT count(*) FROM inbox") == 0
    async with Running(probe, group="faults", handler=refuse) as running:
        await running.caught_up()
    letters = await read_all(probe.bootstrap, probe.dlq, expected=1)
    assert [dict(m.headers)["dlq_reason"] for m in letters] == [b"handler_failed"]
    assert await probe.pool.fetchval("SELECT outcome FROM inbox") == "dead_lettered"


async def test_the_dead_letter_is_acknowledged_before_the_inbox_row_commits(probe: Probe) -> None:
    await publish(probe, joined("cursed"), joined("fine"))
    seen_when_sent: list[int] = []

    async with Running(probe, handler=refuse) as running:
        send = running.producer.send_and_wait

        async def watched(topic, *args, **kwargs):  # type: ignore[no-untyped-def]
            if topic == probe.dlq:
                seen_when_sent.append(await probe.pool.fetchval("SELECT count(*) FROM inbox"))
                # The first attempt finds the broker gone: the consumer must keep trying.
                if len(seen_when_sent) == 1:
                    raise KafkaConnectionError("broker unreachable")
            return await send(topic, *args, **kwargs)

        running.producer.send_and_wait = watched  # type: ignore[method-assign]
        await running.caught_up()
    assert seen_when_sent[:2] == [0, 0]  # no inbox row before the dead letter's ack
    assert len(await read_all(probe.bootstrap, probe.dlq, expected=2)) == 2


async def test_a_poison_run_is_dead_lettered_without_holding_the_batch_locks(probe: Probe) -> None:
    await probe.pool.execute("INSERT INTO notes (member_id, name) VALUES ('counter', '0')")
    poison = [joined(f"poison-{i}") for i in range(10)]
    await publish(probe, joined("first"), *poison)
    attempts: dict[str, int] = {}
    locked_by_consumer: list[bool] = []

    async def count_then_refuse(conn: asyncpg.Connection, data: EventData, env: Envelope) -> None:
        assert isinstance(data, MemberJoined)
        if data.member_id == "first":
            await conn.execute("UPDATE notes SET name = 'touched' WHERE member_id = 'counter'")
            await note(conn, data, env)
            return
        attempts[data.member_id] = attempts.get(data.member_id, 0) + 1
        if attempts[data.member_id] == 2:
            # While this event waits for a retry, the row 'first' changed must be free.
            other = await asyncpg.connect(probe.dsn)
            try:
                await other.execute("SET lock_timeout = '200ms'")
                async with other.transaction():
                    await other.execute(
                        f"SELECT 1 FROM {probe.schema}.notes WHERE member_id = 'counter' FOR UPDATE"
                    )
                locked_by_consumer.append(False)
            except asyncpg.LockNotAvailableError:
                locked_by_consumer.append(True)
            finally:
                await other.close()
        raise ValueError("poison")

    # A budget of 0.3 s of retry waits for the whole batch: after it, one attempt each.
    options = {"max_attempts": 5, "backoff_seconds": 0.1, "retry_budget_seconds": 0.3}
    async with Running(probe, handler=count_then_refuse, **options) as running:
        await running.caught_up()
    assert locked_by_consumer and not any(locked_by_consumer)
    # Each partition's batch (3 here): one fast-path try, then retries worth 0.1 + 0.2 s at most,
    # then one attempt per event. Without the budget: 5 attempts each.
    assert sum(attempts.values()) <= len(poison) + 3 * (1 + 2)
    assert len(await read_all(probe.bootstrap, probe.dlq, expected=len(poison))) == len(poison)
    assert [r["member_id"] for r in await probe.notes()] == ["counter", "first"]


async def test_a_joined_unit_of_work_that_never_commits_is_an_error(probe: Probe) -> None:
    cause = Envelope.wrap(joined("m1"))
    async with probe.pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork.joining(conn, probe.topic, cause)
        with pytest.raises(UncommittedWork):
            async with uow:
                await uow.conn.execute("INSERT INTO notes (member_id) VALUES ('lost')")
        # A joined unit of work that commits is fine, even with nothing to publish.
        async with uow:
            await uow.commit()


async def test_the_relay_reconnects_within_seconds_when_its_connection_is_killed(
    probe: Probe,
) -> None:
    async with Running(probe) as running:
        await publish(probe, joined("before"))
        await eventually(lambda: probe.pool.fetchval("SELECT count(*) = 1 FROM notes"))
        admin = await asyncpg.connect(probe.dsn)
        try:
            # The leader holds the schema's advisory lock: that is the relay's connection.
            key = running.relay._lock_key & 0xFFFFFFFFFFFFFFFF  # type: ignore[union-attr]
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
                " AND classid = $1::bigint::oid AND objid = $2::bigint::oid",
                key >> 32,
                key & 0xFFFFFFFF,
            )
        finally:
            await admin.close()
        assert killed == 1
        await publish(probe, joined("after"))
        # poll_seconds is 0.2: a relay left on its dead connection would wait for the 300 s prune.
        await eventually(lambda: probe.pool.fetchval("SELECT count(*) = 2 FROM notes"), timeout=10)
    await asyncio.sleep(0)


async def test_two_relays_contend_for_the_lead_and_the_stand_by_takes_over(probe: Probe) -> None:
    members = [f"m{i}" for i in range(5)]
    producer = idempotent_producer(probe.bootstrap)
    await producer.start()
    first = Relay(probe.dsn, probe.schema, producer, poll_seconds=0.1)
    second = Relay(probe.dsn, probe.schema, producer, poll_seconds=0.1)
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    try:
        async with Running(probe, relay=Relay(probe.dsn, probe.schema, producer)) as running:
            running.relay.stop()  # only the two contenders publish  # type: ignore[union-attr]
            for seq in range(100):
                await publish(probe, joined(members[seq % 5], name=str(seq)))
            await eventually(lambda: probe.pool.fetchval("SELECT count(*) = 100 FROM notes"))
            leader, stand_by = (first, second) if first.published else (second, first)
            assert stand_by.published == 0  # one leader at a time
            leader.stop()
            for seq in range(100, 200):
                await publish(probe, joined(members[seq % 5], name=str(seq)))
            await running.caught_up()
        assert stand_by.published == 100
    finally:
        first.stop()
        second.stop()
        await asyncio.gather(*tasks)
        await producer.stop()
    seen: dict[str, list[int]] = {}
    for r in await probe.notes():
        seen.setdefault(r["member_id"], []).append(int(r["name"]))
    for sequence in seen.values():  # each applied once, in each member's order
        assert sequence == sorted(set(sequence)) and len(sequence) == 40


async def test_a_rebalance_in_the_middle_of_a_batch_applies_each_event_once(probe: Probe) -> None:
    await publish(probe, *(joined(f"m{i}", name=str(i)) for i in range(300)))
    slow_started = asyncio.Event()

    async def slow(conn: asyncpg.Connection, data: EventData, envelope: Envelope) -> None:
        slow_started.set()
        await asyncio.sleep(0.005)  # a batch long enough for a second member to join meanwhile
        await note(conn, data, envelope)

    async with Running(probe, handler=slow, batch_size=100) as first:
        await slow_started.wait()
        second = ConsumerRunner(
            name=first.group,
            pool=probe.pool,
            bootstrap=probe.bootstrap,
            topics=[probe.topic],
            handlers={MemberJoined.type: slow},
            producer=first.producer,
            dead_letter_topic=probe.dlq,
            batch_size=100,
        )
        joining = asyncio.create_task(second.run())
        await second.started.wait()
        await first.caught_up(timeout=60)
        assert second.consumer.assignment()  # the group was rebalanced onto both members
        second.stop()
        await joining
    names = [r["member_id"] for r in await probe.notes()]
    assert len(names) == 300 and len(set(names)) == 300
