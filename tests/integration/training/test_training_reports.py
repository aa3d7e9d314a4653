"""Reports per class, per course, and per union subtree and year, counted from what happened
through the API (members counted in the union they enrolled from)."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.integration.training.conftest import CITY, Training, at

pytestmark = pytest.mark.integration
ZERO = {
    "enrolled": 0,
    "pending_approval": 0,
    "offered": 0,
    "waitlisted": 0,
    "cancelled": 0,
    "rejected": 0,
    "attended": 0,
    "attendances": 0,
    "completed": 0,
    "certified": 0,
}


async def test_reports_per_class_course_and_union_subtree_and_year(training: Training) -> None:
    tag = uuid.uuid4().hex[:6]
    county, factory, depot = f"county-{tag}", f"factory-{tag}", f"depot-{tag}"
    f1, f2, f3 = await training.members(3, union_id=factory, union_path=(CITY, county))
    [d1] = await training.members(1, union_id=depot, union_path=(CITY, county))
    [o1] = await training.members(1, union_id=f"elsewhere-{tag}", union_path=(CITY, f"x-{tag}"))
    course_id = await training.course()
    now_class = await training.klass(
        course_id,
        capacity=3,
        enrolment_opens_at=at(days=-1),
        enrolment_closes_at=at(hours=1),
        sessions=[{"starts_at": at(minutes=-10), "ends_at": at(hours=2), "venue": "201"}],
    )
    k1, session = now_class["class_id"], now_class["sessions"][0]["session_id"]
    k2 = (await training.klass(course_id, capacity=None))["class_id"]
    for member in (f1, f2, f3, d1):
        await training.enrol(k1, member)
    for member in (o1, d1):
        await training.enrol(k2, member)
    await training.staff.post(
        f"/classes/{k1}/sessions/{session}/attendance", json={"member_id": f1}
    )

    k1_report = (await training.staff.get(f"/reports/classes/{k1}")).json()
    assert k1_report == {"class_id": k1} | ZERO | {
        "enrolled": 3,
        "waitlisted": 1,
        "attended": 1,
        "attendances": 1,
        "completed": 1,
        "certified": 1,
    }

    course = (await training.staff.get(f"/reports/courses/{course_id}")).json()
    assert course["total"] == ZERO | {
        "enrolled": 5,
        "waitlisted": 1,
        "attended": 1,
        "attendances": 1,
        "completed": 1,
        "certified": 1,
    }
    assert course["by_class"][k2] == ZERO | {"enrolled": 2}

    year = (
        datetime.fromisoformat(now_class["sessions"][0]["starts_at"])
        .astimezone(ZoneInfo("Asia/Shanghai"))
        .year
    )
    union = (await training.staff.get(f"/reports/unions/{county}", params={"year": year})).json()
    assert union["total"] == ZERO | {
        "enrolled": 4,
        "waitlisted": 1,
        "attended": 1,
        "attendances": 1,
        "completed": 1,
        "certified": 1,
    }
    assert union["by_union"] == {
        factory: ZERO
        | {"enrolled": 3, "attended": 1, "attendances": 1, "completed": 1, "certified": 1},
        depot: ZERO | {"enrolled": 1, "waitlisted": 1},
    }
    other_year = await training.staff.get(f"/reports/unions/{county}", params={"year": year - 1})
    assert other_year.json()["total"] == ZERO

    # A credential limited to other unions may not read this subtree's report.
    async with await training.client("reports:read", organisations=[f"x-{tag}"]) as limited:
        refused = await limited.get(f"/reports/unions/{county}", params={"year": year})
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["field"] == "union_id"
