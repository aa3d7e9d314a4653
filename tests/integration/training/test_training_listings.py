"""Every collection can be listed and searched, a page at a time: the catalogue's courses and
classes, a class's roster, and one member's enrolments and certificates across classes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.training.conftest import Training, at

pytestmark = pytest.mark.integration
INT64_MAX = 2**63 - 1


async def _course(training: Training, tag: str, title: str, **overrides: Any) -> str:
    return await training.course(title=f"{title} {tag}", **overrides)


async def _found(training: Training, path: str, **query: Any) -> dict[str, Any]:
    answer = await training.portal.get(path, params=query)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _ids(page: dict[str, Any], key: str) -> list[str]:
    return [item[key] for item in page["items"]]


async def test_courses_are_found_by_title_kind_audience_and_open_enrolment(
    training: Training,
) -> None:
    tag = f"Tag{uuid.uuid4().hex[:8]}"
    open_now = await _course(training, tag, "安全生产", kind="skills_training")
    closed = await _course(
        training, tag, "干部履职", kind="cadre_training", audience={"kind": "cadres"}
    )
    unscheduled = await _course(
        training,
        tag,
        "权益讲座",
        kind="lecture_series",
        completion={"min_attendance_percent": None, "min_watched_minutes": 30},
    )
    await training.klass(open_now)
    await training.klass(closed, enrolment_opens_at=at(days=-3), enrolment_closes_at=at(hours=-1))

    everything = await _found(training, "/courses", title=tag.lower())
    assert (set(_ids(everything, "course_id")), everything["total"]) == (
        {open_now, closed, unscheduled},
        3,
    )
    assert _ids(everything, "course_id")[0] == unscheduled  # the newest first
    assert everything["items"][0]["completion"]["min_watched_minutes"] == 30

    async def ids(**query: Any) -> set[str]:
        return set(_ids(await _found(training, "/courses", title=tag, **query), "course_id"))

    assert await ids(kind="cadre_training") == {closed}
    assert await ids(audience="cadres") == {closed}
    assert await ids(audience="all_members", kind="skills_training") == {open_now}
    assert await ids(open_for_enrolment="true") == {open_now}
    assert await ids(open_for_enrolment="false") == {closed, unscheduled}
    assert await _found(training, "/courses", title=f"no such {tag}") == {
        "items": [],
        "total": 0,
        "next_offset": None,
    }

    first = await _found(training, "/courses", title=tag, limit=2)
    rest = await _found(training, "/courses", title=tag, limit=2, offset=first["next_offset"])
    assert (len(first["items"]), first["next_offset"], rest["next_offset"]) == (2, 2, None)
    assert {*_ids(first, "course_id"), *_ids(rest, "course_id")} == {open_now, closed, unscheduled}


async def test_classes_are_listed_with_their_seats_counted_and_found_by_start_and_window(
    training: Training,
) -> None:
    m1, m2 = await training.members(2)
    course_id = await training.course()
    soon = await training.klass(course_id, capacity=1)
    later = await training.klass(
        course_id,
        enrolment_opens_at=at(days=1),
        enrolment_closes_at=at(days=9),
        sessions=[{"starts_at": at(days=10), "ends_at": at(days=10, hours=2), "venue": "201"}],
    )
    assert (await training.enrol(soon["class_id"], m1)).status_code == 201
    assert (await training.enrol(soon["class_id"], m2)).json()["status"] == "waitlisted"

    listed = await _found(training, f"/courses/{course_id}/classes")
    assert _ids(listed, "class_id") == [soon["class_id"], later["class_id"]]
    # The page counts seats in SQL: the same answer as the class itself.
    one = (await training.portal.get(f"/classes/{soon['class_id']}")).json()
    assert listed["items"][0] == one
    assert (one["seats_held"], one["seats_free"], one["waitlisted"]) == (1, 0, 1)

    async def ids(**query: Any) -> list[str]:
        return _ids(await _found(training, "/classes", course_id=course_id, **query), "class_id")

    assert await ids(open_for_enrolment="true") == [soon["class_id"]]
    assert await ids(open_for_enrolment="false") == [later["class_id"]]
    assert await ids(starts_from=at(days=5)) == [later["class_id"]]
    assert await ids(starts_before=at(days=5)) == [soon["class_id"]]
    assert await ids(limit=1, offset=1) == [later["class_id"]]

    unknown = await training.portal.get("/courses/no-such-course/classes")
    assert (unknown.status_code, unknown.json()["errors"][0]["code"]) == (404, "unknown_course")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"starts_from": "2026-07-01T09:00:00"}, "starts_from"),  # no UTC offset
        ({"starts_before": "1782900000"}, "starts_before"),  # a Unix number
        ({"offset": str(INT64_MAX + 1)}, "offset"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
    ],
)
async def test_list_queries_out_of_range_are_422_naming_the_parameter(
    training: Training, query: dict[str, str], field: str
) -> None:
    answer = await training.portal.get("/classes", params=query)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_the_largest_offset_is_an_empty_last_page(training: Training) -> None:
    for path in ("/courses", "/classes", "/members/m-nobody/enrolments"):
        page = await _found(training, path, offset=INT64_MAX)
        assert (page["items"], page["next_offset"]) == ([], None)


async def test_a_roster_is_paged_and_filtered_by_status(training: Training) -> None:
    members = await training.members(3)
    class_id = (await training.klass(capacity=1))["class_id"]
    for member in members:
        assert (await training.enrol(class_id, member)).status_code == 201

    page = (await training.staff.get(f"/classes/{class_id}/enrolments", params={"limit": 2})).json()
    assert (_ids(page, "member_id"), page["total"], page["next_offset"]) == (members[:2], 3, 2)
    line = (
        await training.staff.get(f"/classes/{class_id}/enrolments", params={"status": "waitlisted"})
    ).json()
    assert [(e["member_id"], e["waitlist_position"]) for e in line["items"]] == [
        (members[1], 1),
        (members[2], 2),
    ]


async def test_a_member_sees_their_enrolments_in_every_class_and_their_certificates(
    training: Training,
) -> None:
    member, ahead = await training.members(2)
    full = (await training.klass(capacity=1, name="满员班"))["class_id"]
    assert (await training.enrol(full, ahead)).status_code == 201
    assert (await training.enrol(full, member)).json()["status"] == "waitlisted"
    cancelled = (await training.klass(name="已取消班"))["class_id"]
    assert (await training.enrol(cancelled, member)).status_code == 201
    answer = await training.portal.post(
        f"/classes/{cancelled}/enrolments/{member}/cancellation", json={"reason": "单位工作冲突"}
    )
    assert answer.status_code == 200, answer.text
    course_id = await training.course(title="职工安全生产培训", kind="skills_training")
    attended = await training.klass(
        course_id,
        name="今日班",
        enrolment_opens_at=at(days=-1),
        enrolment_closes_at=at(hours=1),
        sessions=[{"starts_at": at(minutes=-10), "ends_at": at(hours=2), "venue": "职工之家"}],
    )
    assert (await training.enrol(attended["class_id"], member)).status_code == 201
    checked_in = await training.staff.post(
        f"/classes/{attended['class_id']}/sessions/{attended['sessions'][0]['session_id']}"
        "/attendance",
        json={"member_id": member},
    )
    number = checked_in.json()["certificate_number"]
    assert number

    record = await _found(training, f"/members/{member}/enrolments")
    by_class = {e["class_id"]: e for e in record["items"]}
    assert record["total"] == 3
    assert by_class[full]["status"] == "waitlisted"
    assert by_class[full]["waitlist_position"] == 1
    assert (by_class[cancelled]["status"], by_class[cancelled]["cancel_reason"]) == (
        "cancelled",
        "单位工作冲突",
    )
    mine = by_class[attended["class_id"]]
    assert (mine["status"], mine["attended_sessions"], mine["session_count"]) == (
        "confirmed",
        1,
        1,
    )
    assert (mine["course_title"], mine["course_kind"]) == ("职工安全生产培训", "skills_training")
    assert mine["certificate_number"] == number and mine["completed_on"]
    assert ahead not in str(record)

    only = await _found(training, f"/members/{member}/enrolments", status="cancelled")
    assert _ids(only, "class_id") == [cancelled]
    paged = await _found(training, f"/members/{member}/enrolments", limit=2)
    assert (len(paged["items"]), paged["next_offset"]) == (2, 2)

    certificates = await _found(training, f"/members/{member}/certificates")
    assert certificates["total"] == 1
    [certificate] = certificates["items"]
    assert (certificate["number"], certificate["holder"], certificate["class_name"]) == (
        number,
        "张*",
        "今日班",
    )
    verified = await training.public.get(f"/certificates/{number}/verification")
    assert verified.status_code == 200

    nobody = await _found(training, "/members/m-never-heard-of/certificates")
    assert (nobody["items"], nobody["total"]) == ([], 0)


async def test_a_nul_in_a_body_or_a_path_is_refused_at_the_edge_and_changes_nothing(
    training: Training,
) -> None:
    class_id = (await training.klass())["class_id"]
    answer = await training.portal.post(
        f"/classes/{class_id}/enrolments", json={"member_id": "a\u0000b"}
    )
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert (error["field"], error["code"]) == ("member_id", "nul_character")
    assert await training.statuses(class_id) == {}

    # Before any class is looked up: the unknown class "x" of the issue is refused the same way.
    answer = await training.portal.post("/classes/x/enrolments", json={"member_id": "a\u0000b"})
    assert answer.status_code == 422, answer.text
    for path in ("/members/a%00b/enrolments", f"/classes/{class_id}/enrolments/a%00b"):
        answer = await training.portal.get(path)
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"][0]["code"] == "control_character"
