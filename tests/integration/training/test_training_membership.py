"""Training follows membership: a member who leaves the union mid-course loses every enrolment
still in play, with events that commit with the consumed MemberLeft, and the seat goes on."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from tests.integration.training.conftest import Training, at

pytestmark = pytest.mark.integration


async def test_a_member_leaving_mid_course_loses_enrolments_and_the_next_is_promoted(
    training: Training,
) -> None:
    leaver, second, third = await training.members(3)
    # Mid-course: the first session is on now, the second in two days (past the sweep's 24-hour
    # reminder horizon, so no reminder joins the events counted below); enrolment still open.
    running = await training.klass(
        capacity=1,
        enrolment_opens_at=at(days=-2),
        enrolment_closes_at=at(hours=1),
        sessions=[
            {"starts_at": at(minutes=-20), "ends_at": at(hours=2), "venue": "职工之家"},
            {"starts_at": at(days=2), "ends_at": at(days=2, hours=2), "venue": "职工之家"},
        ],
    )
    class_id, first_session = running["class_id"], running["sessions"][0]["session_id"]
    other_id = (await training.klass(capacity=1))["class_id"]  # where the leaver only waits
    for member in (leaver, second, third):
        assert (await training.enrol(class_id, member)).status_code == 201
    for member in (second, leaver):
        assert (await training.enrol(other_id, member)).status_code == 201
    checked_in = await training.staff.post(
        f"/classes/{class_id}/sessions/{first_session}/attendance", json={"member_id": leaver}
    )
    assert checked_in.status_code == 200, checked_in.text

    left = await training.leave(leaver)

    assert await training.statuses(class_id) == {
        leaver: "cancelled",
        second: "confirmed",
        third: "waitlisted",
    }
    assert await training.statuses(other_id) == {second: "confirmed", leaver: "cancelled"}
    rows = await training.pool.fetch(
        "SELECT type, payload, headers FROM outbox WHERE key = $1 ORDER BY id", class_id
    )
    cancelled, promoted = rows[-2:]
    data = orjson.loads(cancelled["payload"])
    assert cancelled["type"] == "gonghui.training.enrolment.cancelled"
    assert (data["member_id"], data["reason"], data["cancelled_by"], data["previous_status"]) == (
        leaver,
        "left_union",
        "system",
        "confirmed",
    )
    assert promoted["type"] == "gonghui.training.enrolment.promoted"
    assert orjson.loads(promoted["payload"])["member_id"] == second
    # Caused by the MemberLeft envelope: written in the consumer's transaction for that event.
    assert cancelled["headers"]["ce_causationid"] == left.id
    assert cancelled["headers"]["ce_correlationid"] == left.correlationid
    other = await training.events(other_id)
    assert other[-1][0] == "enrolment.cancelled"
    assert other[-1][1]["previous_status"] == "waitlisted"

    # The relay publishes every one, in the order recorded (one key, one partition): a consumer
    # of training.events sees the cancellation, then the promotion.
    recorded = [r["type"] for r in rows]
    assert len(recorded) == 7  # scheduled, 1 confirmed, 2 waitlisted, attendance, the two above
    assert await _read_class_events(training, class_id, want=len(recorded)) == recorded

    # Gone from the union, gone from the enrolment desk.
    refused = await training.enrol((await training.klass())["class_id"], leaver)
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert (error["field"], error["code"]) == ("member_id", "member_left")


async def _read_class_events(training: Training, class_id: str, want: int) -> list[str]:
    consumer = AIOKafkaConsumer(
        f"{training.namespace}training.events",
        bootstrap_servers=training.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[str] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < want and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(
                    dict(r.headers)["ce_type"].decode()
                    for r in records
                    if r.key == class_id.encode()
                )
    finally:
        await consumer.stop()
    return found


async def test_a_member_leaving_a_lecture_changes_their_enrolment_alone(
    training: Training,
) -> None:
    """Leaving takes the member's own enrolment, not the lecture: it goes through while the
    lecture's row is held FOR SHARE and another member's enrolment FOR UPDATE, as a slice of a
    viewing batch holds them (taking the class FOR UPDATE waited for the batch). In a class with
    seats and nobody waiting, the seat is given back to the counters."""
    lecture = (await training.klass(capacity=None))["class_id"]
    seminar = (await training.klass(capacity=2))["class_id"]
    leaver, stayer = await training.members(2)
    for class_id in (lecture, seminar):
        for member in (leaver, stayer):
            assert (await training.enrol(class_id, member)).status_code == 201

    async with training.pool.acquire() as batch, batch.transaction():
        await batch.execute("SELECT 1 FROM classes WHERE class_id = $1 FOR SHARE", lecture)
        await batch.execute(
            "SELECT 1 FROM enrolments WHERE class_id = $1 AND member_id = $2 FOR UPDATE",
            lecture,
            stayer,
        )
        await training.leave(leaver)  # waits for the departure's transaction to commit

    assert await training.statuses(lecture) == {leaver: "cancelled", stayer: "confirmed"}
    assert await training.statuses(seminar) == {leaver: "cancelled", stayer: "confirmed"}
    summary = (await training.staff.get(f"/classes/{seminar}")).json()
    assert (summary["seats_held"], summary["seats_free"], summary["waitlisted"]) == (1, 1, 0)
    kinds = [kind for kind, _ in await training.events(lecture)]
    assert kinds[-1] == "enrolment.cancelled"
