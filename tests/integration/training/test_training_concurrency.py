"""Seats hold under concurrency: 1,000 simultaneous enrolment requests through the signed API for
50 seats give exactly 50 seats, never 51, against the real database."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.integration.training.conftest import Training, eventually

pytestmark = pytest.mark.integration
MEMBERS, SEATS = 1000, 50


async def test_1000_at_once_for_50_seats_give_50_confirmed_and_950_waitlisted_in_order(
    training: Training,
) -> None:
    members = await training.members(MEMBERS)
    class_id = (await training.klass(capacity=SEATS))["class_id"]

    answers = await asyncio.gather(*(training.enrol(class_id, m) for m in members))

    assert Counter(a.status_code for a in answers) == {201: MEMBERS}
    said = Counter(a.json()["status"] for a in answers)
    assert said == {"confirmed": SEATS, "waitlisted": MEMBERS - SEATS}
    stored = await training.statuses(class_id)
    assert Counter(stored.values()) == {"confirmed": SEATS, "waitlisted": MEMBERS - SEATS}
    assert all(stored[a.json()["member_id"]] == a.json()["status"] for a in answers)
    # The waitlist is one queue in enrolment order: positions 1..950, each given once, and the
    # confirmed members are exactly the first 50 to be served.
    positions = sorted(
        a.json()["waitlist_position"] for a in answers if a.json()["status"] == "waitlisted"
    )
    assert positions == list(range(1, MEMBERS - SEATS + 1))
    rows = await training.pool.fetch(
        "SELECT status, sequence FROM enrolments WHERE class_id = $1 ORDER BY sequence", class_id
    )
    # Places come from one sequence for every class: distinct, in the order members were served.
    assert len({r["sequence"] for r in rows}) == MEMBERS
    assert {r["status"] for r in rows[:SEATS]} == {"confirmed"}
    seen = Counter(kind for kind, _ in await training.events(class_id))
    assert seen == {"class.scheduled": 1, "enrolment.confirmed": SEATS, "enrolment.waitlisted": 950}
    summary = (await training.staff.get(f"/classes/{class_id}")).json()
    assert (summary["seats_held"], summary["seats_free"], summary["waitlisted"]) == (50, 0, 950)


async def test_1000_at_once_for_50_seats_without_waitlist_give_50_and_950_refusals(
    training: Training,
) -> None:
    members = await training.members(MEMBERS)
    class_id = (await training.klass(capacity=SEATS, waitlist={"enabled": False}))["class_id"]

    answers = await asyncio.gather(*(training.enrol(class_id, m) for m in members))

    assert Counter(a.status_code for a in answers) == {201: SEATS, 422: MEMBERS - SEATS}
    refusals = [a.json() for a in answers if a.status_code == 422]
    assert {(r["errors"][0]["field"], r["errors"][0]["code"]) for r in refusals} == {
        ("class_id", "class_full")
    }
    stored = await training.statuses(class_id)
    assert Counter(stored.values()) == {"confirmed": SEATS}
    assert set(stored) == {a.json()["member_id"] for a in answers if a.status_code == 201}
    # A refusal changed nothing: no row, no event.
    seen = Counter(kind for kind, _ in await training.events(class_id))
    assert seen == {"class.scheduled": 1, "enrolment.confirmed": SEATS}


async def test_an_enrolment_chosen_as_a_deadlock_victim_is_run_again(training: Training) -> None:
    """The cycle the membership consumer can make: its batch transaction holds a class (a
    member's departure) and then updates another member's row, which an enrolment into that class
    has locked for share. Postgres aborts the enrolment; the enrolment runs again and succeeds."""
    [member] = await training.members(1)
    class_id = (await training.klass(capacity=SEATS))["class_id"]
    async with training.pool.acquire() as consumer, consumer.transaction():
        await consumer.execute("SELECT 1 FROM classes WHERE class_id = $1 FOR UPDATE", class_id)
        enrolling = asyncio.create_task(training.enrol(class_id, member))
        await eventually(lambda: _waiting_for_a_lock(training))
        # Closes the cycle; the enrolment waited longer, so its deadlock check fires first.
        await consumer.execute("UPDATE members SET updated_at = now() WHERE member_id = $1", member)
    answer = await enrolling
    assert answer.status_code == 201, answer.text
    assert await training.statuses(class_id) == {member: "confirmed"}


async def _waiting_for_a_lock(training: Training) -> bool:
    return bool(
        await training.pool.fetchval(
            "SELECT count(*) > 0 FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
    )


async def test_an_enrolment_read_before_staff_set_seats_is_counted_under_them(
    training: Training,
) -> None:
    """A class read without seat limit that gets one before the enrolment is written: the
    enrolment is not written uncounted; enrolling again counts it."""
    class_id = (await training.klass(capacity=None))["class_id"]
    first, second = await training.members(2)
    uow = training.app.state.unit_of_work()
    async with uow.in_one_statement():
        found = await uow.classes.for_new_enrolment(class_id, first)
        assert found is not None and found.member is not None
        enrolment = found.tc.enrol(found.member, uow.clock.now(), place=found.place)
        capacity = f"/classes/{class_id}/capacity"
        assert (await training.staff.put(capacity, json={"capacity": 1})).status_code == 200
        adding = uow.classes.adding_enrolment(enrolment, found.member_version)
        assert await uow.commit_with(*adding) is None

    answers = [await training.enrol(class_id, m) for m in (first, second)]

    assert [a.json()["status"] for a in answers] == ["confirmed", "waitlisted"]
    held = await training.pool.fetchval(
        "SELECT seats_held FROM classes WHERE class_id = $1", class_id
    )
    assert held == 1


async def test_lecture_enrolments_at_once_each_get_one_enrolment(training: Training) -> None:
    """A class without seat limit: 300 enrolments at once (and a repeat of each) all land once."""
    members = await training.members(300)
    class_id = (await training.klass(capacity=None))["class_id"]

    answers = await asyncio.gather(*(training.enrol(class_id, m) for m in members * 2))

    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 300, 409: 300}
    assert {a.json()["member_id"] for a in answers if a.status_code == 201} == set(members)
    stored = await training.statuses(class_id)
    assert Counter(stored.values()) == {"confirmed": 300}


async def test_a_lecture_enrolment_waits_for_a_departure_being_applied_then_is_refused(
    training: Training,
) -> None:
    """The consumer applying MemberLeft holds the member's row (updated, not yet committed) while
    an enrolment read before it is written: the write waits for it, sees a member changed since
    the read and writes nothing, no event either; enrolling again is refused as ``member_left``."""
    class_id = (await training.klass(capacity=None))["class_id"]
    [member] = await training.members(1)
    uow = training.app.state.unit_of_work()
    async with uow.in_one_statement():
        found = await uow.classes.for_new_enrolment(class_id, member)
        assert found is not None and found.member is not None
        enrolment = found.tc.enrol(found.member, uow.clock.now(), place=found.place)
        adding = uow.classes.adding_enrolment(enrolment, found.member_version)
        async with training.pool.acquire() as consumer, consumer.transaction():
            await consumer.execute(
                "UPDATE members SET status = 'left' WHERE member_id = $1", member
            )
            writing = asyncio.create_task(uow.commit_with(*adding))
            await eventually(lambda: _waiting_for_a_lock(training))
        assert await writing is None

    answer = await training.enrol(class_id, member)

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["code"] == "member_left"
    assert await training.statuses(class_id) == {}
    assert [kind for kind, _ in await training.events(class_id)] == ["class.scheduled"]
