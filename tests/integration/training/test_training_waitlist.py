"""A freed seat goes to the waitlist in order: promoted at once, or offered with a deadline that the
sweep enforces, as the class is configured."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.training import handlers
from tests.integration.training.conftest import Training, at, eventually

pytestmark = pytest.mark.integration


async def test_a_cancellation_promotes_the_next_in_line_and_records_both_events(
    training: Training,
) -> None:
    m0, m1, m2, m3 = await training.members(4)
    class_id = (await training.klass(capacity=2))["class_id"]
    for member in (m0, m1, m2, m3):
        assert (await training.enrol(class_id, member)).status_code == 201
    assert await training.statuses(class_id) == {
        m0: "confirmed",
        m1: "confirmed",
        m2: "waitlisted",
        m3: "waitlisted",
    }

    answer = await training.portal.post(
        f"/classes/{class_id}/enrolments/{m0}/cancellation", json={"reason": "生病"}
    )

    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["cancelled_by"]) == ("cancelled", "member")
    assert await training.statuses(class_id) == {
        m0: "cancelled",
        m1: "confirmed",
        m2: "confirmed",
        m3: "waitlisted",
    }
    mine = (await training.portal.get(f"/classes/{class_id}/enrolments/{m3}")).json()
    assert mine["waitlist_position"] == 1
    *_, cancelled, promoted = await training.events(class_id)
    assert cancelled[0] == "enrolment.cancelled"
    assert (cancelled[1]["member_id"], cancelled[1]["reason"], cancelled[1]["cancelled_by"]) == (
        m0,
        "生病",
        "member",
    )
    assert promoted[0] == "enrolment.promoted"
    assert (promoted[1]["member_id"], promoted[1]["status"]) == (m2, "confirmed")

    # Staff cancel too, with their reason; the last in line moves up; then nobody is waiting.
    answer = await training.staff.post(
        f"/classes/{class_id}/enrolments/{m1}/staff-cancellation", json={"reason": "重复报名"}
    )
    assert answer.json()["cancelled_by"] == "staff"
    assert (await training.statuses(class_id))[m3] == "confirmed"
    summary = (await training.staff.get(f"/classes/{class_id}")).json()
    assert (summary["seats_held"], summary["waitlisted"]) == (2, 0)


async def test_in_offer_mode_the_seat_is_offered_and_an_unanswered_offer_passes_on(
    training: Training,
) -> None:
    m0, m1, m2 = await training.members(3)
    class_id = (
        await training.klass(capacity=1, waitlist={"promotion": "offer", "offer_hours": 24})
    )["class_id"]
    for member in (m0, m1, m2):
        await training.enrol(class_id, member)

    await training.staff.post(
        f"/classes/{class_id}/enrolments/{m0}/staff-cancellation", json={"reason": "调岗"}
    )

    offer = (await training.portal.get(f"/classes/{class_id}/enrolments/{m1}")).json()
    assert offer["status"] == "offered"
    deadline = datetime.fromisoformat(offer["offer_expires_at"])
    assert abs(deadline - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)
    assert (await training.events(class_id))[-1][0] == "enrolment.offered"

    # A day passes without an answer: move the deadline back instead of waiting for it.
    await training.pool.execute(
        "UPDATE enrolments SET offer_expires_at = now() - interval '1 minute'"
        " WHERE class_id = $1 AND member_id = $2",
        class_id,
        m1,
    )
    statuses = await eventually(
        lambda: _when(training, class_id, lambda s: s[m1] == "cancelled" and s[m2] == "offered")
    )
    assert statuses[m0] == "cancelled"
    expired = [d for kind, d in await training.events(class_id) if kind == "enrolment.cancelled"]
    assert (expired[-1]["member_id"], expired[-1]["reason"]) == (m1, "offer_expired")

    # Accepting after the deadline is refused; m2 accepts in time and takes the seat.
    late = await training.portal.post(f"/classes/{class_id}/enrolments/{m1}/offer-acceptance")
    assert late.status_code == 409
    accepted = await training.portal.post(f"/classes/{class_id}/enrolments/{m2}/offer-acceptance")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "confirmed"
    kind, data = (await training.events(class_id))[-1]
    assert (kind, data["member_id"], data["via"]) == ("enrolment.confirmed", m2, "offer_accepted")


async def _when(training: Training, class_id: str, check) -> dict[str, str] | None:
    statuses = await training.statuses(class_id)
    return statuses if check(statuses) else None


@pytest.mark.parametrize("slice_members", [2_000, 1])
async def test_confirmed_members_are_reminded_once_the_day_before_a_session(
    training: Training, monkeypatch: pytest.MonkeyPatch, slice_members: int
) -> None:
    """In one slice, or one member a slice (a lecture's thousands go out so)."""
    monkeypatch.setattr(handlers, "REMINDER_SLICE", slice_members)
    m0, m1, m2 = await training.members(3)
    sessions = [
        {"starts_at": at(hours=30), "ends_at": at(hours=33), "venue": "职工之家 201"},
        {"starts_at": at(days=5), "ends_at": at(days=5, hours=3), "venue": "职工之家 201"},
    ]
    klass = await training.klass(capacity=2, sessions=sessions)
    class_id = klass["class_id"]
    for member in (m0, m1, m2):  # m2 is waitlisted: no seat to come to, no reminder
        await training.enrol(class_id, member)
    first = min(klass["sessions"], key=lambda s: s["starts_at"])["session_id"]

    # A day passes: bring the first session within the sweep's 24 hours instead of waiting.
    await training.pool.execute(
        "UPDATE sessions SET starts_at = now() + interval '2 hours' WHERE session_id = $1", first
    )

    async def reminders() -> list[tuple[str, str]]:
        return [
            (d["member_id"], d["session_id"])
            for kind, d in await training.events(class_id)
            if kind == "class.reminder"
        ]

    async def every_slice_out() -> bool:
        return bool(
            await training.pool.fetchval(
                "SELECT reminders_through = reminders_upto FROM sessions WHERE session_id = $1",
                first,
            )
        )

    await eventually(every_slice_out)
    assert sorted(await reminders()) == [(m0, first), (m1, first)]
    await asyncio.sleep(1.0)  # several more sweeps: still one reminder each
    assert sorted(await reminders()) == [(m0, first), (m1, first)]


async def test_reminders_cut_short_resume_after_the_last_member_reminded(
    training: Training,
) -> None:
    """A sweep stopped after its first slice (the session marked reminded, reminders through the
    first member's place): the next sweep reminds the others, and the first member not again."""
    m0, m1, m2 = await training.members(3)
    klass = await training.klass(capacity=None)
    class_id = klass["class_id"]
    session = min(klass["sessions"], key=lambda s: s["starts_at"])
    # A day passes, and the reminder is decided (the sweep takes it no more).
    await training.pool.execute(
        "UPDATE sessions SET starts_at = now() + interval '2 hours', reminded_at = now()"
        " WHERE session_id = $1",
        session["session_id"],
    )
    for member in (m0, m1, m2):
        assert (await training.enrol(class_id, member)).status_code == 201
    places = await training.pool.fetch(
        "SELECT member_id, sequence FROM enrolments WHERE class_id = $1 ORDER BY sequence",
        class_id,
    )
    assert [p["member_id"] for p in places] == [m0, m1, m2]
    await training.pool.execute(
        "UPDATE sessions SET reminders_through = $2, reminders_upto = $3 WHERE session_id = $1",
        session["session_id"],
        places[0]["sequence"],
        places[-1]["sequence"],
    )

    async def reminded() -> list[str] | None:
        members = [
            d["member_id"]
            for kind, d in await training.events(class_id)
            if kind == "class.reminder"
        ]
        return members if len(members) == 2 else None

    assert sorted(await eventually(reminded)) == sorted([m1, m2])
    await eventually(
        lambda: training.pool.fetchval(
            "SELECT reminders_through = reminders_upto FROM sessions WHERE session_id = $1",
            session["session_id"],
        )
    )
    assert sorted(await reminded() or []) == sorted([m1, m2])
