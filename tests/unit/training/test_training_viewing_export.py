"""The viewing batch's body read column by column answers exactly as the whole parse does: the
same slices for a good export, the same refusal (or 400) for anything else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from services.training import viewing_export
from services.training.viewing_export import _decoded, _parsed, _read_columns, _validated
from shared.errors import DomainError

Answer = Any  # each slice's (report ids, member ids, minutes), or the refusal


def columns(n: int, minutes: Any = 60) -> dict[str, list[Any]]:
    return {
        "report_ids": [f"live-{i}" for i in range(n)],
        "member_ids": [f"M{i:08d}" for i in range(n)],
        "minutes": [minutes] * n,
    }


def refusal(e: Exception) -> Answer:
    if isinstance(e, RequestValidationError):
        return 422, e.errors()
    if isinstance(e, DomainError):
        return 422, e.field, e.code
    assert isinstance(e, HTTPException)
    return e.status_code, e.detail


async def answer(body: bytes) -> Answer:
    """What the route reads from this body, streamed in small chunks."""
    chunks: Iterator[bytes] = iter([body[at : at + 7] for at in range(0, len(body), 7)] or [b""])

    async def receive() -> dict[str, Any]:
        chunk = next(chunks, b"")
        return {"type": "http.request", "body": chunk, "more_body": chunk != b""}

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b""}
    scope["headers"] = [(b"content-type", b"application/json")]
    try:
        export = await viewing_export.read(Request(scope, receive), "c")
    except (RequestValidationError, HTTPException, DomainError) as e:
        return refusal(e)
    return [s.columns() for s in export.slices]


def whole(body: bytes) -> Answer:
    """What the whole parse reads from it (all of it at once, then checked a slice at a time)."""
    try:
        return [s.columns() for s in _validated(_parsed(_decoded(bytearray(body))))]
    except (RequestValidationError, HTTPException, DomainError) as e:
        return refusal(e)


def text(document: dict[str, Any] | str) -> str:
    return document if isinstance(document, str) else json.dumps(document)


READ_BY_COLUMNS: list[dict[str, Any] | str] = [
    columns(7),
    {"minutes": [1, 1440], "member_ids": ["m1", "m2"], "report_ids": ["r1", "r2"]},
    {"report_ids": [" r1 ", "\tr2\n"], "member_ids": ["  m1", "m2  "], "minutes": [5, 6]},
    {"report_ids": ["工会-1", "😀"], "member_ids": ["会员", "\ud83d\ude00"], "minutes": [5, 6]},
    json.dumps(columns(3), indent="\t", separators=(" ,\r\n", " : "), ensure_ascii=True),
    text(columns(3)).replace("60", "1e2"),
    text(columns(3)).replace("60", "60.0"),
    columns(3) | {"minutes": [60, 60, True]},  # lax as before: one minute
    '{"report_ids": ["r\\u0031", "r\\"2"], "member\\u005fids": ["a\\/b", "c"], "minutes": [1,2]}',
]


@pytest.mark.parametrize("document", READ_BY_COLUMNS)
@pytest.mark.parametrize("lines_a_slice", [1, 2, 3, 2000])
async def test_a_plain_export_is_read_by_columns_into_the_slices_the_whole_parse_makes(
    document: dict[str, Any] | str, lines_a_slice: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(viewing_export, "VIEWING_SLICE", lines_a_slice)
    body = text(document).encode()

    assert _read_columns(text(document)) is not None  # not the whole parse's answer
    assert await answer(body) == whole(body)
    assert isinstance(whole(body), list)


async def test_an_export_in_utf_16_is_read_by_columns_too() -> None:
    body = text(columns(3)).encode("utf-16")

    assert _read_columns(body.decode("utf-16")) is not None
    assert await answer(body) == whole(body) == await answer(text(columns(3)).encode())


PARSED_WHOLE: list[dict[str, Any] | str] = [
    # refused by the rules, in the first or a later slice
    columns(3, minutes=0),
    columns(3) | {"minutes": [60, 60, 1441]},
    columns(3) | {"minutes": [60, 60, 2**64]},
    columns(3) | {"minutes": [60, 60, "sixty"]},
    columns(3) | {"minutes": [60, 60, 60.5]},
    columns(3) | {"minutes": [60, 60, None]},
    columns(3) | {"minutes": [60, 60, [60]]},
    columns(3) | {"member_ids": ["m", "m", "\x00"]},
    columns(3) | {"member_ids": ["m", "m", "\ud800"]},  # a lone surrogate
    columns(3) | {"member_ids": ["m", "m", "m" * 65]},
    columns(3) | {"report_ids": ["r", "r", "r" * 101]},
    columns(3) | {"report_ids": ["r", "r", "   "]},
    columns(3) | {"report_ids": ["r", "r", 5]},
    columns(3) | {"report_ids": ["r", "r", {"id": "r"}]},
    # the form: a column missing, null or empty, of another length, both forms, another key
    {"report_ids": ["r"], "member_ids": ["m"]},
    columns(2) | {"minutes": None},
    columns(2) | {"minutes": []},
    columns(2) | {"minutes": [60]},
    columns(1) | {"reports": [{"report_id": "r", "member_id": "m", "minutes": 1}]},
    columns(1) | {"reports": None},  # accepted: the whole parse takes it
    columns(1) | {"class_id": "c"},
    {"reports": [{"report_id": "r", "member_id": "m", "minutes": 1}]},  # accepted
    {},
    "[]",
    "null",
    # JSON the columns are not read from: a repeated key (the last counts), not JSON at all
    '{"minutes": [0], "report_ids": ["r"], "member_ids": ["m"], "minutes": [1]}',
    '{"minutes": [1], "report_ids": ["r"], "member_ids": ["m"], "minutes": [0]}',
    text(columns(2))[:-1],
    text(columns(2)) + "x",
    text(columns(2)).replace("[", "[,", 1),
    "\ufeff" + text(columns(2)),
    '{"report_ids": ["r' + "[" * 100_000 + '"], "member_ids": ["m"], "minutes": [1]}',
    '{"report_ids": ["r"], "member_ids": ["m"], "minutes": [' + "[" * 100_000 + "]}",
    '{"report_ids": ["r"], "member_ids": ["m"], "minutes": [1' + "0" * 5000 + "]}",
]


@pytest.mark.parametrize("document", PARSED_WHOLE)
@pytest.mark.parametrize("lines_a_slice", [2, 2000])
async def test_anything_else_answers_as_the_whole_parse_does(
    document: dict[str, Any] | str, lines_a_slice: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(viewing_export, "VIEWING_SLICE", lines_a_slice)
    body = text(document).encode()

    assert _read_columns(text(document)) is None
    assert await answer(body) == whole(body)


@pytest.mark.parametrize("body", [b"\xff\xfe\x00", b"\xc3\x28{}", b"{", b" "])
async def test_a_body_that_is_not_json_answers_as_before(body: bytes) -> None:
    assert await answer(body) == whole(body)


async def test_one_line_too_many_is_refused_as_the_whole_parse_refuses_it() -> None:
    body = text(columns(viewing_export.MAX_VIEWERS_PER_BATCH + 1)).encode()

    refused = await answer(body)

    assert refused == whole(body)
    assert refused[0] == 422 and {e["type"] for e in refused[1]} == {"too_long"}
