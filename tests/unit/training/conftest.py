"""Builders for the training domain's unit tests: a course, a class, members, a fixed clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.training.domain import (
    Audience,
    CompletionRule,
    Course,
    CourseKind,
    EnrolmentWindow,
    MemberStatus,
    MemberView,
    Session,
    TrainingClass,
    WaitlistPolicy,
)

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
# Enrolment opens at OPENS; the first session starts ten days later.
OPENS = datetime(2024, 3, 1, 9, 0, tzinfo=BEIJING)
CLOSES = OPENS + timedelta(days=9)
FIRST_SESSION = OPENS + timedelta(days=10)
SECRET = b"unit-test-check-in-secret-0123456789"
CITY = "u-city"
COUNTY = "u-county"
UNION = "u-grassroots"


class Build:
    opens = OPENS
    closes = CLOSES
    first_session = FIRST_SESSION
    now = OPENS + timedelta(hours=1)
    secret = SECRET
    city, county, union = CITY, COUNTY, UNION

    def course(
        self,
        kind: CourseKind = CourseKind.CADRE_TRAINING,
        audience: Audience | None = None,
        completion: CompletionRule | None = None,
        pass_mark: Decimal | None = None,
    ) -> Course:
        return Course(
            course_id="course-1",
            title="工会干部业务培训",
            kind=kind,
            provider="亳州市总工会",
            description="Union cadre basics",
            audience=audience or Audience.everyone(),
            completion=completion or CompletionRule.attendance(80, pass_mark),
        )

    def sessions(self, count: int = 5, online: bool = False) -> list[Session]:
        return [
            Session(
                session_id=f"s{i + 1}",
                starts_at=FIRST_SESSION + timedelta(days=i),
                ends_at=FIRST_SESSION + timedelta(days=i, hours=3),
                venue=None if online else "职工之家 201",
                online_link="https://learn.example/live" if online else None,
            )
            for i in range(count)
        ]

    def training_class(
        self,
        capacity: int | None = 50,
        waitlist: WaitlistPolicy | None = None,
        requires_approval: bool = False,
        course: Course | None = None,
        sessions: Sequence[Session] | None = None,
        releases_no_shows: bool = False,
    ) -> TrainingClass:
        training_class = TrainingClass.schedule(
            class_id="class-1",
            course=course or self.course(),
            name="2024年第一期",
            sessions=sessions if sessions is not None else self.sessions(),
            capacity=capacity,
            window=EnrolmentWindow(OPENS, CLOSES),
            waitlist=waitlist,
            requires_approval=requires_approval,
            releases_no_shows=releases_no_shows,
        )
        training_class.events.clear()
        return training_class

    def member(
        self,
        n: int | str,
        union_id: str = UNION,
        union_path: tuple[str, ...] = (CITY, COUNTY),
        categories: frozenset[str] = frozenset(),
        is_cadre: bool = False,
        status: MemberStatus = MemberStatus.ACTIVE,
    ) -> MemberView:
        return MemberView(
            member_id=f"m{n}",
            name=f"张{n}",
            status=status,
            union_id=union_id,
            union_path=union_path,
            categories=categories,
            is_cadre=is_cadre,
        )


@pytest.fixture
def build() -> Build:
    return Build()
