"""A lecture's watched-minutes export read from its raw body, checked and held a slice at a time.

FastAPI, given ``ViewingBatch`` as the route's body, kept the body, parsed it with Python's
``json`` and validated the lines into a second copy, about 100 MB at once for 300,000 lines in
columns (ViewingLine models for the ``reports`` form, about 280 MB). Here the route reads the
body itself and parses it as FastAPI did, dropping each copy once the next is made; each slice
of ``VIEWING_SLICE`` lines is validated as a ``ViewingBatch`` of its own (the same rules, so the
whole batch passes exactly when every slice does), and what a slice keeps until it is applied is
packed in a few strings. Every slice is checked before any is applied, so a refused batch
changes nothing. Whenever a slice is refused the whole batch is validated again at once, as
FastAPI did, so a refusal names every faulty field exactly as before.

The plain columns form, as the streaming platform sends it, is not even parsed whole: each
column is read a slice at a time (``viewing_json``, the values ``json.loads`` would give), and
each slice validated and packed before the next is read. Its 300,000 lines then never exist as
Python objects at once: the read's peak fell from 56 to 19 MiB above the process's size. Any
other body, or one whose slice is refused, is parsed whole as above.
"""

from __future__ import annotations

import email.message
import json
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import ValidationError

from services.training import viewing_json
from services.training.commands import MAX_VIEWERS_PER_BATCH, ViewingBatch
from shared.errors import DomainError

# Lines a transaction of a batch takes: its events (two per completing member, about 2 KB each
# until written) stay in memory until its commit, so a 300,000-line batch goes in slices. 2,000
# lines hold about 8 MB of events (10,000 held 40 MB, a third of the API process's whole size);
# each slice adds a few round trips, about 150 more for 300,000 lines. A slice is also what is
# validated at a time.
VIEWING_SLICE = 2_000

# Validated text never holds NUL (``shared.inputs.Command`` refuses it), so it can join a slice's
# ids into one string: about 25 bytes a line held instead of two strings of about 60 bytes each.
_SEPARATOR = "\x00"
_COLUMNS = ("reports", "report_ids", "member_ids", "minutes")


def _joined(ids: list[str]) -> str:
    return _SEPARATOR.join(ids)


@dataclass(frozen=True)
class Slice:
    """A validated slice of the batch, packed until its transaction."""

    report_ids: str
    member_ids: str
    minutes: array[int]

    @classmethod
    def of(cls, report_ids: list[str], member_ids: list[str], minutes: list[int]) -> Slice:
        # Minutes are 1 to 1440 (validated): two bytes each.
        return cls(_joined(report_ids), _joined(member_ids), array("H", minutes))

    def columns(self) -> tuple[list[str], list[str], list[int]]:
        """The slice's lines as (report ids, member ids, minutes)."""
        return (
            self.report_ids.split(_SEPARATOR),
            self.member_ids.split(_SEPARATOR),
            self.minutes.tolist(),
        )


@dataclass(frozen=True)
class ViewingExport:
    """The batch route's command: a lecture's export, validated, in the slices it is applied in."""

    class_id: str
    slices: list[Slice]


async def read(request: Request, class_id: str) -> ViewingExport:
    """The request's export, every line validated; refused (422, naming each faulty field) as a
    ``ViewingBatch`` body would be."""
    body = bytearray()
    async for chunk in request.stream():  # the audit middleware replays it in 64 KiB chunks
        body += chunk
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    if not _json_typed(request.headers.get("content-type")):
        return ViewingExport(class_id, _whole(bytes(body)))
    text = _decoded(body)
    del body  # each copy of a 300,000-line export is about 10 MB: one at a time
    slices = _read_columns(text)
    if slices is None:  # not the plain columns form, or refused: as it always was
        data = _parsed(text)
        del text
        slices = _validated(data)
    return ViewingExport(class_id, slices)


def _json_typed(content_type: str | None) -> bool:
    """Read as JSON when FastAPI would read a body as JSON: application/json or .../*+json."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


# Python's json, as FastAPI parsed the body, so every answer stays as it was (orjson differs:
# it refuses NaN and reads an integer beyond 64 bits as a float). It is no slower here, and its
# peak is lower: orjson held 64 MB at once for a 300,000-line export that parses into 42 MB.


def _decoded(body: bytearray) -> str:
    """The body as text, as ``json.loads`` decodes bytes (UTF-8, -16 or -32)."""
    try:
        return body.decode(json.detect_encoding(body), "surrogatepass")
    except Exception as e:  # not in any of them: as FastAPI answered it
        raise HTTPException(400, "There was an error parsing the body") from e


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        loc = ("body", e.pos)
        error = {"type": "json_invalid", "loc": loc, "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([error | {"ctx": {"error": e.msg}}]) from None
    except Exception as e:  # nested too deep, say: as FastAPI answered it
        raise HTTPException(400, "There was an error parsing the body") from e


def _read_columns(text: str) -> list[Slice] | None:
    """The plain columns form, each column's slice validated and packed as it is read, so its
    lines never exist as Python objects all at once (the whole parse held about 45 MB of them
    at 300,000 lines). None for anything else, or when a slice is refused: the whole parse and
    ``_validated`` then answer, refusals included, exactly as before.

    A column's slice alone is checked by the same ``ViewingBatch`` rules as the slice of all three
    in ``_validated`` (each field is checked on its own), and its elements are the values
    ``json.loads`` gives (``viewing_json``), so a batch read here is the one read there."""
    packed: dict[str, list[Any]] = {name: [] for name in _COLUMNS[1:]}
    lines = dict.fromkeys(packed, 0)
    try:
        for name, values in viewing_json.arrays(text, packed.keys(), VIEWING_SLICE):
            column = getattr(ViewingBatch.model_validate({name: values}), name)
            packed[name].append(array("H", column) if name == "minutes" else _joined(column))
            lines[name] += len(values)
    except (viewing_json.NotPlain, ValidationError):
        return None
    if len(set(lines.values())) != 1 or lines["minutes"] > MAX_VIEWERS_PER_BATCH:
        return None  # a column missing, columns of different lengths, too many lines
    # Every column was cut at the same lines, so their n-th slices hold the same lines.
    return [Slice(*parts) for parts in zip(*packed.values(), strict=True)]


def _validated(data: Any) -> list[Slice]:
    """Each slice validated and packed in turn. Anything but a plain batch (not an object, an
    unknown key, a column not a list of 1 to 300,000 lines, neither form or both, a faulty line)
    is validated whole, for its refusal."""
    if not _plain(data):
        return _whole(data)
    try:
        ViewingBatch.model_construct(**data).check_form()
    except DomainError:
        return _whole(data)  # a field's fault, if any, is named first
    slices = []
    for at in range(0, max(len(v) for v in data.values() if v is not None), VIEWING_SLICE):
        part = {k: v if v is None else v[at : at + VIEWING_SLICE] for k, v in data.items()}
        try:
            batch = ViewingBatch.model_validate(part, from_attributes=True)
        except ValidationError:
            return _whole(data)
        slices.append(Slice.of(*batch.columns()))
    return slices


def _plain(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.keys() <= set(_COLUMNS)
        and any(v is not None for v in data.values())
        and all(
            v is None or (isinstance(v, list) and 1 <= len(v) <= MAX_VIEWERS_PER_BATCH)
            for v in data.values()
        )
    )


def _whole(data: Any) -> list[Slice]:
    """The batch validated at once, as FastAPI did: its refusal names every fault."""
    try:
        batch = ViewingBatch.model_validate(data, from_attributes=True)  # as FastAPI does
    except ValidationError as e:
        errors = e.errors(include_url=False)
        raise RequestValidationError(
            [err | {"loc": ("body", *err["loc"])} for err in errors]
        ) from None
    report_ids, member_ids, minutes = batch.columns()
    return [
        Slice.of(report_ids[s], member_ids[s], minutes[s])
        for s in (slice(at, at + VIEWING_SLICE) for at in range(0, len(report_ids), VIEWING_SLICE))
    ]


@cache
def _batch_schemas() -> dict[str, Any]:
    """``ViewingBatch`` and ``ViewingLine`` as FastAPI writes a body's schemas."""

    def body(batch: ViewingBatch) -> None: ...  # a route declared only to be documented

    route = APIRoute("/", body, methods=["POST"])
    schemas: dict[str, Any] = get_openapi(title="", version="", routes=[route])["components"][
        "schemas"
    ]
    return {name: schemas[name] for name in ("ViewingBatch", "ViewingLine")}


# The route's request body as published when FastAPI read it: the same schema, by reference.
REQUEST_BODY = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ViewingBatch"}}},
    "required": True,
}


def documenting(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The app's OpenAPI with the schemas ``REQUEST_BODY`` refers to, which no route declares."""

    def documented() -> dict[str, Any]:
        document = openapi()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if "ViewingBatch" not in schemas:
            schemas.update(_batch_schemas())
            document["components"]["schemas"] = dict(sorted(schemas.items()))
        return document

    return documented
