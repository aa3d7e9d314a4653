"""Attendance and viewing lead to completion and a certificate; anyone can verify its number
without a credential and learns only the masked holder and what was completed."""

from __future__ import annotations

from collections import Counter

import pytest

from services.training.certificates import check_character, is_valid_certificate_number
from tests.integration.training.conftest import Training, at

pytestmark = pytest.mark.integration


def _now_session() -> dict[str, object]:
    return {
        "enrolment_opens_at": at(days=-1),
        "enrolment_closes_at": at(hours=1),
        "sessions": [{"starts_at": at(minutes=-10), "ends_at": at(hours=2), "venue": "职工之家"}],
    }


async def test_checking_in_with_the_session_code_completes_and_issues_a_verifiable_certificate(
    training: Training,
) -> None:
    member = await training.member()
    course_id = await training.course(title="职工安全生产培训", kind="skills_training")
    klass = await training.klass(course_id, name="2026年春季班", **_now_session())
    class_id, session_id = klass["class_id"], klass["sessions"][0]["session_id"]
    await training.enrol(class_id, member)
    shown = (
        await training.staff.get(f"/classes/{class_id}/sessions/{session_id}/check-in-code")
    ).json()
    assert shown["qr_text"] == f"GHTRAIN:{session_id}:{shown['code']}"

    # Typed the way people do: lower case, with a space.
    typed = shown["code"][:3].lower() + " " + shown["code"][3:]
    answer = await training.portal.post(
        f"/classes/{class_id}/sessions/{session_id}/check-in",
        json={"member_id": member, "code": typed},
    )

    assert answer.status_code == 200, answer.text
    enrolment = answer.json()
    assert enrolment["attended_sessions"] == [session_id]
    assert enrolment["completed_on"] is not None
    number = enrolment["certificate_number"]
    assert is_valid_certificate_number(number)
    kinds = [kind for kind, _ in await training.events(class_id)]
    assert kinds[-3:] == ["attendance.recorded", "course.completed", "certificate.issued"]
    issued = (await training.events(class_id))[-1][1]
    assert (issued["member_id"], issued["certificate_number"]) == (member, number)

    verified = await training.public.get(f"/certificates/{number}/verification")
    assert verified.status_code == 200
    assert verified.json() == {
        "number": number,
        "holder": "张*",
        "course_title": "职工安全生产培训",
        "class_name": "2026年春季班",
        "completed_on": enrolment["completed_on"],
        "issued_on": enrolment["completed_on"],
    }
    assert "max-age" in verified.headers["cache-control"]
    assert member not in verified.text


async def test_verification_says_why_a_number_is_not_genuine(training: Training) -> None:
    body = "23456789AB"  # a well-formed number nobody was issued
    unknown = f"GH-{body[:4]}-{body[4:8]}-{body[8:]}{check_character(body)}"
    typo = unknown[:-1] + ("2" if unknown[-1] != "2" else "3")

    answers = {
        n: await training.public.get(f"/certificates/{n}/verification")
        for n in (unknown, typo, "not-a-number")
    }

    assert {n: (a.status_code, a.json()["errors"][0]["code"]) for n, a in answers.items()} == {
        unknown: (404, "unknown_certificate"),
        typo: (422, "check_character_mismatch"),
        "not-a-number": (422, "malformed"),
    }
    for answer in answers.values():
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["field"] == "number"
        assert answer.json()["errors"][0]["message"]
    # A certificate issued a minute from now must not stay unknown in a cache for a day.
    assert answers[unknown].headers["cache-control"] == "public, max-age=60"
    assert answers[typo].headers["cache-control"] == "public, max-age=86400"


async def test_watched_minutes_complete_an_online_lecture_and_a_resent_report_counts_once(
    training: Training,
) -> None:
    member = await training.member()
    course_id = await training.course(
        kind="lecture_series",
        completion={"min_attendance_percent": None, "min_watched_minutes": 60},
    )
    lecture = await training.klass(
        course_id,
        capacity=None,
        sessions=[
            {
                "starts_at": at(days=2),
                "ends_at": at(days=2, hours=1),
                "online_link": "https://live.example/1",
            }
        ],
    )
    class_id = lecture["class_id"]
    assert (await training.enrol(class_id, member)).json()["status"] == "confirmed"

    def report(report_id: str, minutes: int):
        return training.streaming.post(
            f"/classes/{class_id}/viewing-reports",
            json={"report_id": report_id, "member_id": member, "minutes": minutes},
        )

    first = (await report(f"{class_id}-r1", 40)).json()
    resent = (await report(f"{class_id}-r1", 40)).json()
    second = (await report(f"{class_id}-r2", 20)).json()

    assert (first["counted"], first["watched_minutes"], first["completed_on"]) == (True, 40, None)
    assert (resent["counted"], resent["watched_minutes"]) == (False, 40)
    assert (second["counted"], second["watched_minutes"]) == (True, 60)
    assert second["completed_on"] is not None and second["certificate_number"]
    kinds = Counter(kind for kind, _ in await training.events(class_id))
    assert kinds == {
        "class.scheduled": 1,
        "enrolment.confirmed": 1,
        "course.completed": 1,
        "certificate.issued": 1,
    }
    verified = await training.public.get(
        f"/certificates/{second['certificate_number']}/verification"
    )
    assert verified.status_code == 200, verified.text
