"""A lecture's viewers reported in one batch: counted once per report id, refused line by line,
completing members (and certifying them) in the same transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.training import viewing_export
from tests.integration.training.conftest import Training
from tests.support.clock import ManualClock

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("slice_lines", [10_000, 2])
async def test_a_batch_counts_each_report_once_refuses_strangers_and_completes(
    training: Training, monkeypatch: pytest.MonkeyPatch, slice_lines: int
) -> None:
    """In one transaction, or in slices of two lines (a repeat in the next slice included)."""
    monkeypatch.setattr(viewing_export, "VIEWING_SLICE", slice_lines)
    course = await training.course(
        kind="lecture_series",
        completion={"min_attendance_percent": None, "min_watched_minutes": 60},
    )
    lecture = await training.klass(course, capacity=None)
    class_id = lecture["class_id"]
    watcher, dozer, stranger = await training.members(3)
    for member in (watcher, dozer):
        assert (await training.enrol(class_id, member)).status_code == 201
    body = {
        "reports": [
            {"report_id": f"{class_id}-1", "member_id": watcher, "minutes": 40},
            {"report_id": f"{class_id}-2", "member_id": watcher, "minutes": 30},
            {"report_id": f"{class_id}-3", "member_id": dozer, "minutes": 20},
            {"report_id": f"{class_id}-3", "member_id": dozer, "minutes": 20},
            {"report_id": f"{class_id}-4", "member_id": stranger, "minutes": 90},
        ]
    }
    path = f"/classes/{class_id}/viewing-reports/batches"

    first = await training.streaming.post(path, json=body)

    assert first.status_code == 200, first.text
    assert first.json() == {
        "counted": 3,
        "repeated": [f"{class_id}-3"],
        "refused": [{"report_id": f"{class_id}-4", "member_id": stranger, "code": "not_enrolled"}],
        "completed": 1,
        "certified": 1,
    }
    minutes = await training.pool.fetch(
        "SELECT member_id, watched_minutes, completed_on IS NOT NULL AS done FROM enrolments"
        " WHERE class_id = $1 ORDER BY member_id",
        class_id,
    )
    assert {r["member_id"]: (r["watched_minutes"], r["done"]) for r in minutes} == {
        watcher: (70, True),
        dozer: (20, False),
    }
    kinds = [kind for kind, _ in await training.events(class_id)]
    assert kinds.count("course.completed") == 1 and kinds.count("certificate.issued") == 1

    again = (await training.streaming.post(path, json=body)).json()
    assert (again["counted"], again["completed"], again["certified"]) == (0, 0, 0)
    assert len(again["repeated"]) == 4


async def test_slices_in_flight_together_count_in_the_batch_order(
    training: Training, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two slices are applied at once, each in its own transaction: a report id's first line
    still counts wherever its repeats are, a member's minutes from every slice add up, and the
    member completes once, in the slice that took them over the line."""
    monkeypatch.setattr(viewing_export, "VIEWING_SLICE", 2)
    class_id, (keen, late) = await training.lecture(60, enrolled=2)
    lines = [
        ("r1", keen, 40),
        ("r2", late, 10),
        ("r1", keen, 5),  # a repeat, in the next slice: not counted
        ("r3", keen, 30),  # 40 + 30: completes here
        ("r4", keen, 30),  # after completing: counted, not completed again
        ("r5", late, 55),  # 10 + 55: completes in the third slice
    ]
    body = {
        "report_ids": [f"{class_id}-{r}" for r, _, _ in lines],
        "member_ids": [m for _, m, _ in lines],
        "minutes": [n for _, _, n in lines],
    }

    answer = await training.streaming.post(
        f"/classes/{class_id}/viewing-reports/batches", json=body
    )

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "counted": 5,
        "repeated": [f"{class_id}-r1"],
        "refused": [],
        "completed": 2,
        "certified": 2,
    }
    rows = await training.pool.fetch(
        "SELECT member_id, watched_minutes FROM enrolments WHERE class_id = $1", class_id
    )
    assert {r["member_id"]: r["watched_minutes"] for r in rows} == {keen: 100, late: 65}
    kinds = [kind for kind, _ in await training.events(class_id)]
    assert kinds.count("course.completed") == 2 and kinds.count("certificate.issued") == 2


async def test_moving_the_clock_lets_staff_record_attendance_and_dates_the_completion(
    timed_training: Training, clock: ManualClock
) -> None:
    """The class's one session starts in two days: too early to record until the clock moves."""
    training = timed_training
    class_id = (await training.klass())["class_id"]
    member = await training.member()
    assert (await training.enrol(class_id, member)).status_code == 201
    session_id = (await training.staff.get(f"/classes/{class_id}")).json()["sessions"][0][
        "session_id"
    ]
    path = f"/classes/{class_id}/sessions/{session_id}/attendance"

    early = await training.staff.post(path, json={"member_id": member})
    clock.advance(timedelta(days=2))
    on_time = await training.staff.post(path, json={"member_id": member})

    assert early.json()["errors"][0]["code"] == "session_not_started"
    assert on_time.status_code == 200, on_time.text
    assert on_time.json()["completed_on"] == clock.today().isoformat()


async def test_the_columns_form_counts_as_lines_do_and_completes_only_by_the_whole_rule(
    training: Training,
) -> None:
    """Minutes and a pass mark: the batch completes the member already scored, not the other;
    a waitlisted member's line is refused as not confirmed."""
    course = await training.course(
        kind="lecture_series",
        completion={"min_attendance_percent": None, "min_watched_minutes": 30, "pass_mark": "60"},
    )
    lecture = await training.klass(course, capacity=2)
    class_id = lecture["class_id"]
    scored, unscored, waiting = await training.members(3)
    for member in (scored, unscored, waiting):
        assert (await training.enrol(class_id, member)).status_code == 201
    score = f"/classes/{class_id}/enrolments/{scored}/score"
    assert (await training.staff.put(score, json={"score": "75"})).status_code == 200
    path = f"/classes/{class_id}/viewing-reports/batches"
    columns = {
        "report_ids": [f"{class_id}-a", f"{class_id}-b", f"{class_id}-c", f"{class_id}-a"],
        "member_ids": [scored, unscored, waiting, scored],
        "minutes": [45, 45, 45, 45],
    }

    answer = await training.streaming.post(path, json=columns)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "counted": 2,
        "repeated": [f"{class_id}-a"],
        "refused": [{"report_id": f"{class_id}-c", "member_id": waiting, "code": "not_confirmed"}],
        "completed": 1,
        "certified": 1,
    }
    mine = (await training.portal.get(f"/classes/{class_id}/enrolments/{scored}")).json()
    assert (mine["watched_minutes"], mine["certificate_number"] is not None) == (45, True)
    theirs = (await training.portal.get(f"/classes/{class_id}/enrolments/{unscored}")).json()
    assert (theirs["watched_minutes"], theirs["completed_on"]) == (45, None)
    completed = [d for kind, d in await training.events(class_id) if kind == "course.completed"]
    assert [d["member_id"] for d in completed] == [scored]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (
            {"report_ids": ["r"], "member_ids": ["m"], "minutes": [1, 2]},
            "member_ids",
            "length_mismatch",
        ),
        ({"report_ids": ["r"], "minutes": [1]}, "member_ids", "required"),
        (
            {"reports": [{"report_id": "r", "member_id": "m", "minutes": 1}], "minutes": [1]},
            "reports",
            "two_forms",
        ),
        (
            {"report_ids": ["r"], "member_ids": ["m"], "minutes": [0]},
            "minutes[0]",
            "greater_than_equal",
        ),
        (  # in the third slice of two lines: named by its place in the batch
            {"report_ids": list("abcde"), "member_ids": ["m"] * 5, "minutes": [1] * 4 + [0]},
            "minutes[4]",
            "greater_than_equal",
        ),
        (  # a NUL anywhere is named alone, before a field's fault in an earlier slice
            {"report_ids": list("abcd"), "member_ids": ["m", "m", "m", "\x00"], "minutes": [0] * 4},
            "member_ids[3]",
            "nul_character",
        ),
        (  # a field's fault in a later slice is named before the columns' lengths
            {"report_ids": list("abc"), "member_ids": ["m"] * 3, "minutes": [1, 1, 1, 1, 0]},
            "minutes[4]",
            "greater_than_equal",
        ),
        (
            {
                "reports": [{"report_id": "r", "member_id": "m", "minutes": 1}] * 2
                + [{"report_id": "r", "member_id": "m"}]
            },
            "reports[2].minutes",
            "missing",
        ),
    ],
)
async def test_a_malformed_batch_is_refused_whole_naming_the_field(
    training: Training,
    monkeypatch: pytest.MonkeyPatch,
    body: dict[str, object],
    field: str,
    code: str,
) -> None:
    """Read and checked two lines at a time, and refused as the whole batch at once would be."""
    monkeypatch.setattr(viewing_export, "VIEWING_SLICE", 2)
    class_id = (await training.klass(capacity=None))["class_id"]
    answer = await training.streaming.post(
        f"/classes/{class_id}/viewing-reports/batches", json=body
    )
    assert answer.status_code == 422
    assert [(e["field"], e["code"]) for e in answer.json()["errors"]] == [(field, code)]


async def test_a_batch_refused_in_its_last_slice_counts_none_of_the_slices_before(
    training: Training, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(viewing_export, "VIEWING_SLICE", 2)
    class_id, members = await training.lecture(30, enrolled=3)
    body = {
        "report_ids": [f"{class_id}-{m}" for m in members] + [f"{class_id}-late"],
        "member_ids": [*members, members[0]],
        "minutes": [45, 45, 45, 1441],
    }

    answer = await training.streaming.post(
        f"/classes/{class_id}/viewing-reports/batches", json=body
    )

    assert answer.status_code == 422
    assert [(e["field"], e["code"]) for e in answer.json()["errors"]] == [
        ("minutes[3]", "less_than_equal")
    ]
    watched = await training.pool.fetch(
        "SELECT watched_minutes, completed_on FROM enrolments WHERE class_id = $1", class_id
    )
    assert [tuple(r) for r in watched] == [(0, None)] * 3
    counted = await training.pool.fetchval(
        "SELECT count(*) FROM viewing_reports WHERE report_id LIKE $1", f"{class_id}-%"
    )
    assert counted == 0
    kinds = [kind for kind, _ in await training.events(class_id)]
    assert kinds == ["class.scheduled"] + ["enrolment.confirmed"] * 3
