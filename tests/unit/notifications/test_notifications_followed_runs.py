"""How notifications' consumer cuts a batch of followed events into runs: a lecture's completions
and certificates (one subject, the class, alternating types) are one run, while membership's
joins, whose directory rows the messages read, still never hold one member twice."""

from __future__ import annotations

from datetime import date, timedelta

from aiokafka import ConsumerRecord

from services.notifications.handlers import follows
from services.notifications.live_rules import LiveRules
from services.notifications.main import RULES
from shared.consumer import Fresh, Handler, _runs
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined
from shared.events.training import CertificateIssued, CourseCompleted
from tests.support.clock import ManualClock

DAY = date(2026, 12, 5)


def handlers() -> dict[str, Handler]:
    clock = ManualClock()
    by_topic = follows(LiveRules(RULES), clock, timedelta(minutes=10), "notifications.events")
    return {t: h for by_type in by_topic.values() for t, h in by_type.items()}


def batch(*events: EventData) -> list[Fresh]:
    handler = handlers()
    record = ConsumerRecord("t", 0, 0, 0, 0, None, None, None, 0, 0, [])
    return [(Envelope.wrap(e), e, handler[e.type], record) for e in events]


def enrolment(member_id: str) -> dict[str, str]:
    return {
        "class_id": "class-1",
        "enrolment_id": f"e-{member_id}",
        "member_id": member_id,
        "course_id": "course-1",
        "course_title": "职工云课堂",
        "class_name": "live",
    }


def joined(member_id: str) -> MemberJoined:
    return MemberJoined(
        member_id=member_id,
        name="王芳",
        union_id="u-1",
        union_path=[],
        channel="online",
        categories=[],
        joined_on=DAY,
        card_number=f"GH-{member_id}",
        sex="F",
        birth_date=date(1990, 5, 1),
    )


def sizes(fresh: list[Fresh]) -> list[int]:
    return [len(run) for run in _runs(fresh)]


def test_a_lectures_completions_and_certificates_are_one_run() -> None:
    events: list[EventData] = []
    for member in ("a", "b", "c"):
        events.append(CourseCompleted(**enrolment(member), completed_on=DAY))
        events.append(
            CertificateIssued(**enrolment(member), certificate_number=f"C-{member}", issued_on=DAY)
        )
    assert sizes(batch(*events)) == [6]


def test_joins_still_end_a_run_where_a_member_comes_again() -> None:
    completed = CourseCompleted(**enrolment("a"), completed_on=DAY)
    assert sizes(batch(joined("a"), joined("b"), joined("a"), completed)) == [2, 1, 1]
