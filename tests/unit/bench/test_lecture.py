"""The lecture's watched-minutes export is written straight from the enrolled serials."""

from __future__ import annotations

from array import array

import orjson

from bench.lecture import WATCHED_MINUTES, export_body


def test_the_export_is_the_columns_form_of_the_enrolled_members() -> None:
    body = export_body(array("q", [1, 2, 300_000]))
    assert orjson.loads(body) == {
        "report_ids": ["live-M00000001", "live-M00000002", "live-M00300000"],
        "member_ids": ["M00000001", "M00000002", "M00300000"],
        "minutes": [WATCHED_MINUTES] * 3,
    }


def test_an_export_of_no_one_is_still_a_document() -> None:
    assert orjson.loads(export_body(array("q"))) == {
        "report_ids": [],
        "member_ids": [],
        "minutes": [],
    }
