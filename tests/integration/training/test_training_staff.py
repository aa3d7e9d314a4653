"""Staff decisions round-trip through the database: approval and rejection, scores against the
completion rule, and the no-show rule freeing seats for the waitlist."""

from __future__ import annotations

import pytest

from tests.integration.training.conftest import Training, at

pytestmark = pytest.mark.integration


async def test_a_rejected_enrolment_frees_its_held_seat_for_the_next_who_then_awaits_approval(
    training: Training,
) -> None:
    m0, m1 = await training.members(2)
    class_id = (await training.klass(capacity=1, requires_approval=True))["class_id"]
    assert (await training.enrol(class_id, m0)).json()["status"] == "pending_approval"
    assert (await training.enrol(class_id, m1)).json()["status"] == "waitlisted"

    rejected = await training.staff.post(
        f"/classes/{class_id}/enrolments/{m0}/rejection", json={"reason": "不符合报名条件"}
    )

    assert rejected.json()["status"] == "rejected"
    assert await training.statuses(class_id) == {m0: "rejected", m1: "pending_approval"}
    *_, (kind, promoted) = await training.events(class_id)
    assert (kind, promoted["member_id"], promoted["status"]) == (
        "enrolment.promoted",
        m1,
        "pending_approval",
    )
    approved = await training.staff.post(f"/classes/{class_id}/enrolments/{m1}/approval")
    assert approved.json()["status"] == "confirmed"
    again = await training.enrol(class_id, m0)
    assert again.status_code == 409
    [error] = again.json()["errors"]
    assert (error["field"], error["code"]) == ("member_id", "enrolment_rejected")


async def test_completion_waits_for_a_passing_score_as_well_as_attendance(
    training: Training,
) -> None:
    member = await training.member()
    course_id = await training.course(completion={"min_attendance_percent": 100, "pass_mark": 60})
    klass = await training.klass(
        course_id,
        enrolment_opens_at=at(days=-1),
        enrolment_closes_at=at(hours=1),
        sessions=[{"starts_at": at(minutes=-30), "ends_at": at(hours=1), "venue": "201"}],
    )
    class_id, session = klass["class_id"], klass["sessions"][0]["session_id"]
    await training.enrol(class_id, member)
    await training.staff.post(
        f"/classes/{class_id}/sessions/{session}/attendance", json={"member_id": member}
    )

    mine = (await training.portal.get(f"/classes/{class_id}/enrolments/{member}")).json()
    assert mine["missing_for_completion"] == [
        {"criterion": "assessment_score", "needed": "60", "actual": None}
    ]
    score = f"/classes/{class_id}/enrolments/{member}/score"
    failed = (await training.staff.put(score, json={"score": "59.5"})).json()
    assert (failed["score"], failed["completed_on"]) == ("59.5", None)
    passed = (await training.staff.put(score, json={"score": 75})).json()
    assert passed["completed_on"] is not None and passed["certificate_number"]
    mine = (await training.portal.get(f"/classes/{class_id}/enrolments/{member}")).json()
    assert (mine["missing_for_completion"], mine["score"]) == ([], "75")


async def test_the_no_show_rule_frees_absentees_seats_once(training: Training) -> None:
    came, absent, waiting = await training.members(3)
    klass = await training.klass(
        capacity=2,
        releases_no_shows=True,
        enrolment_opens_at=at(days=-3),
        enrolment_closes_at=at(hours=1),
        # The first session ended an hour ago: inside the sweep's grace, so only staff act here.
        sessions=[
            {"starts_at": at(hours=-3), "ends_at": at(hours=-1), "venue": "201"},
            {"starts_at": at(days=1), "ends_at": at(days=1, hours=2), "venue": "201"},
        ],
    )
    class_id, first = klass["class_id"], klass["sessions"][0]["session_id"]
    for member in (came, absent, waiting):
        await training.enrol(class_id, member)
    await training.staff.post(
        f"/classes/{class_id}/sessions/{first}/attendance", json={"member_id": came}
    )

    released = await training.staff.post(f"/classes/{class_id}/no-show-release")

    assert released.json()["released_member_ids"] == [absent]
    assert await training.statuses(class_id) == {
        came: "confirmed",
        absent: "cancelled",
        waiting: "confirmed",
    }
    cancelled = [d for k, d in await training.events(class_id) if k == "enrolment.cancelled"]
    assert [(d["member_id"], d["reason"]) for d in cancelled] == [(absent, "no_show")]
    again = await training.staff.post(f"/classes/{class_id}/no-show-release")
    assert again.json()["released_member_ids"] == []
