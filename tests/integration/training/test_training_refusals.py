"""Bad input gets a clear 4xx naming the field and the code, and changes nothing: no row, no
event. Every refusal below is checked against the class's enrolments and outbox afterwards."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.training.conftest import Training, at

pytestmark = pytest.mark.integration


async def _snapshot(training: Training, class_id: str) -> tuple[Any, ...]:
    enrolments = await training.pool.fetch(
        "SELECT * FROM enrolments WHERE class_id = $1 ORDER BY member_id", class_id
    )
    check_ins = await training.pool.fetchval(
        "SELECT count(*) FROM check_ins JOIN enrolments USING (enrolment_id) WHERE class_id = $1",
        class_id,
    )
    capacity = await training.pool.fetchval(
        "SELECT capacity FROM classes WHERE class_id = $1", class_id
    )
    return [dict(r) for r in enrolments], check_ins, capacity, await training.events(class_id)


async def _refused(
    training: Training,
    class_id: str,
    call: Any,
    status: int,
    field: str,
    code: str,
) -> httpx.Response:
    before = await _snapshot(training, class_id)
    answer: httpx.Response = await call
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert (field, code) in {(e["field"], e["code"]) for e in answer.json()["errors"]}
    assert await _snapshot(training, class_id) == before
    return answer


async def test_enrolment_refusals_name_the_code_and_change_nothing(training: Training) -> None:
    member, other = await training.members(2)
    class_id = (await training.klass(capacity=1, waitlist={"enabled": False}))["class_id"]
    assert (await training.enrol(class_id, member)).status_code == 201

    await _refused(
        training, class_id, training.enrol(class_id, "nobody"), 422, "member_id", "not_a_member"
    )
    await _refused(
        training, class_id, training.enrol(class_id, member), 409, "member_id", "already_enrolled"
    )
    full = await _refused(
        training, class_id, training.enrol(class_id, other), 422, "class_id", "class_full"
    )
    assert "no waitlist" in full.json()["detail"]
    await _refused(
        training,
        class_id,
        training.enrol("no-such-class", member),
        404,
        "class_id",
        "unknown_class",
    )

    cadres_only = await training.course(audience={"kind": "cadres"})
    cadre_class = (await training.klass(cadres_only))["class_id"]
    await _refused(
        training, cadre_class, training.enrol(cadre_class, other), 422, "member_id", "cadres_only"
    )
    [cadre] = await training.members(1, categories=("cadre",))
    assert (await training.enrol(cadre_class, cadre)).status_code == 201

    closed = (
        await training.klass(enrolment_opens_at=at(days=-3), enrolment_closes_at=at(hours=-1))
    )["class_id"]
    answer = await _refused(
        training, closed, training.enrol(closed, other), 422, "enrolment_window", "closed"
    )
    assert "enrolment closed at" in answer.json()["detail"]


async def test_capacity_cannot_drop_below_the_seats_already_held(training: Training) -> None:
    members = await training.members(3)
    class_id = (await training.klass(capacity=5))["class_id"]
    for member in members:
        await training.enrol(class_id, member)

    answer = await _refused(
        training,
        class_id,
        training.staff.put(f"/classes/{class_id}/capacity", json={"capacity": 2}),
        422,
        "capacity",
        "below_seats_held",
    )

    assert answer.json()["seats_held"] == 3
    assert "3 confirmed" in answer.json()["detail"]
    lowered = await training.staff.put(f"/classes/{class_id}/capacity", json={"capacity": 3})
    assert (lowered.status_code, lowered.json()["seats_free"]) == (200, 0)


async def test_a_wrong_or_expired_check_in_code_is_refused(training: Training) -> None:
    member = await training.member()
    klass = await training.klass(
        enrolment_opens_at=at(days=-3),
        enrolment_closes_at=at(hours=1),
        sessions=[
            {"starts_at": at(days=-2), "ends_at": at(days=-2, hours=2), "venue": "201"},
            {"starts_at": at(minutes=-5), "ends_at": at(hours=1), "venue": "201"},
            {"starts_at": at(days=2), "ends_at": at(days=2, hours=2), "venue": "201"},
        ],
    )
    class_id = klass["class_id"]
    past, current, future = (s["session_id"] for s in klass["sessions"])
    await training.enrol(class_id, member)

    async def code(session_id: str) -> str:
        path = f"/classes/{class_id}/sessions/{session_id}/check-in-code"
        return str((await training.staff.get(path)).json()["code"])

    def check_in(session_id: str, code: str) -> Any:
        return training.portal.post(
            f"/classes/{class_id}/sessions/{session_id}/check-in",
            json={"member_id": member, "code": code},
        )

    # Another session's code is the wrong code, even while that other session is on.
    await _refused(
        training, class_id, check_in(current, await code(future)), 422, "code", "wrong_code"
    )
    await _refused(
        training, class_id, check_in(past, await code(past)), 422, "code", "code_expired"
    )
    await _refused(
        training, class_id, check_in(future, await code(future)), 422, "code", "code_not_yet_valid"
    )
    accepted = await check_in(current, await code(current))
    assert (accepted.status_code, accepted.json()["attended_sessions"]) == (200, [current])


async def test_malformed_requests_name_each_field(training: Training) -> None:
    course_id = await training.course()
    answer = await training.staff.post(
        f"/courses/{course_id}/classes",
        json={
            "name": "第二期",
            "capacity": 0,
            "enrolment_opens_at": at(hours=-1),
            "enrolment_closes_at": at(days=1),
            "sessions": [{"starts_at": at(days=2), "ends_at": at(days=2, hours=3)}],
        },
    )
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["capacity"]

    answer = await training.staff.post(
        f"/courses/{course_id}/classes",
        json={
            "name": "第二期",
            "capacity": 10,
            "enrolment_opens_at": at(hours=-1),
            "enrolment_closes_at": at(days=1),
            "sessions": [{"starts_at": at(days=2), "ends_at": at(days=1), "venue": "201"}],
        },
    )
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert (error["field"], error["code"]) == ("sessions[0].ends_at", "before_start")
    classes = (await training.staff.get(f"/courses/{course_id}/classes")).json()
    assert (classes["items"], classes["total"]) == ([], 0)
