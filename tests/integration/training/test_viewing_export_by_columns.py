"""The streaming platform's export, compact JSON in columns, is read a column's slice at a time
and never parsed whole, and counts exactly as the same lines sent any other way."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.training import viewing_export
from tests.integration.training.conftest import Training

pytestmark = pytest.mark.integration


def never(_: str) -> Any:
    raise AssertionError("the plain columns form was parsed whole")


async def test_a_compact_export_in_columns_is_read_by_slices_and_counted(
    training: Training, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(viewing_export, "VIEWING_SLICE", 2)
    monkeypatch.setattr(viewing_export, "_parsed", never)
    class_id, members = await training.lecture(60, enrolled=3)
    # As the platform writes it: no whitespace; a member twice (two reports), ids padded.
    body = orjson.dumps(
        {
            "report_ids": [f"{class_id}-{n}" for n in range(5)],
            "member_ids": [*members, f" {members[0]} ", members[1]],
            "minutes": [50, 60, 10, 15, 5],
        }
    )

    answer = await training.streaming.post(
        f"/classes/{class_id}/viewing-reports/batches",
        content=body,
        headers={"content-type": "application/json"},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "counted": 5,
        "repeated": [],
        "refused": [],
        "completed": 2,
        "certified": 2,
    }
    rows = await training.pool.fetch(
        "SELECT member_id, watched_minutes FROM enrolments WHERE class_id = $1", class_id
    )
    assert {r["member_id"]: r["watched_minutes"] for r in rows} == {
        members[0]: 65,
        members[1]: 65,
        members[2]: 10,
    }
