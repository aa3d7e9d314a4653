"""What a request may carry: the base of every request body and the path and query types.

Everything a caller sends ends up in Postgres, which refuses a NUL character in text and an
integer beyond 64 bits. So the edge refuses them first, as a 422 naming the field, and a handler
never sees them:

* a request body is a :class:`Command`: unknown fields are refused, and no string anywhere in it
  (keys included) holds NUL, no integer leaves the 64-bit range;
* path and query values never hold control characters (``shared.edge`` refuses the request);
* integers in paths and queries are :data:`Int64`, :data:`Offset`, :data:`Limit` or :data:`RowId`;
* dates are :data:`IsoDate` / :data:`IsoDateTime`: ISO 8601 text only (no Unix numbers), years
  1900 to 2199.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Self

import orjson
from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199

Int64 = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX)]
RowId = Annotated[int, Ge(1), Le(INT64_MAX)]
Offset = Annotated[int, Ge(0), Le(INT64_MAX)]
Limit = Annotated[int, Ge(1), Le(1000)]


def _offending(value: Any) -> tuple[str, str, str] | None:
    """(field, code, message) of the first value Postgres would refuse, depth first.

    A lecture's 300,000-line batch is checked in C: written as JSON, with every integer held to
    53 bits, it holds no escaped NUL. Only a value that might hold a fault (an integer beyond 53
    bits, a NUL) or that orjson cannot write (a set, a model) is walked in Python.
    """
    try:
        if b"\\u0000" not in orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER):
            return None
    except (TypeError, orjson.JSONEncodeError):
        pass
    found = _walk(value)
    if found is None:
        return None
    where, code, message = found
    return _path(where), code, message


# Where a fault lies, innermost step first: ("key", k) into a dict, ("index", i) into a list.
_Steps = list[tuple[str, Any]]


def _walk(value: Any) -> tuple[_Steps, str, str] | None:
    """The first fault and where it lies; the path is made only for the one found."""
    if isinstance(value, str):
        if "\x00" in value:
            return [], "nul_character", "must not contain the NUL character"
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return [], "integer_out_of_range", "must fit in 64 bits"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _walk(key) or _walk(item)
            if found:
                found[0].append(("key", key))
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _walk(item)
            if found:
                found[0].append(("index", i))
                return found
    return None


def _path(steps: _Steps) -> str:
    """``tags[1]``, ``sessions[0].venue``: outermost step first."""
    path = ""
    for kind, step in reversed(steps):
        path = f"{path}[{step}]" if kind == "index" else f"{path}.{step}" if path else str(step)
    return path


class _FromRoute:
    """Marks a command field the route fills: the thing's id from the path, or who acted."""


FROM_ROUTE = _FromRoute()
# A command field the body never carries (it is not in the body's schema, and sending it is
# refused): ``shared.routes.action`` fills it from the path, or from the admitted caller.
FromRoute = Annotated[SkipJsonSchema[str], FROM_ROUTE]


class Command(BaseModel):
    """The base of every command: a request body, plus the fields its route fills (``FromRoute``).

    A handler takes the whole command, ``handler(cmd, uow)``: what it acts on travels inside it.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @classmethod
    def route_fields(cls) -> frozenset[str]:
        return frozenset(n for n, f in cls.model_fields.items() if FROM_ROUTE in f.metadata)

    def about(self, **filled: str) -> Self:
        """This command with the fields its route fills (validated by the route's own types)."""
        unknown = set(filled) - self.route_fields()
        if unknown:
            raise TypeError(f"{type(self).__name__} has no route fields {sorted(unknown)}")
        return self.model_copy(update=filled)

    @model_validator(mode="before")
    @classmethod
    def _fits_postgres(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in cls.route_fields() & data.keys():
                raise PydanticCustomError(
                    "extra_forbidden",
                    "{field} comes from the URL or the credential, never from the body",
                    {"field": name},
                )
        found = _offending(data)
        if found:
            field, code, message = found
            # The field path rides in the context: shared.http appends it to the location.
            raise PydanticCustomError(code, message, {"field": field})
        return data


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})"
)


def _iso_text(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, date | datetime):
            return value  # already a date (defaults, Python callers)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise PydanticCustomError("iso_format", "must be an ISO 8601 {what}", {"what": what})
        return value

    return check


def _in_range(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise PydanticCustomError(
            "out_of_range",
            "must be in the years {earliest} to {latest}",
            {"earliest": EARLIEST_YEAR, "latest": LATEST_YEAR},
        )
    return value


IsoDate = Annotated[
    date,
    BeforeValidator(_iso_text(_ISO_DATE, "date (YYYY-MM-DD)")),
    AfterValidator(_in_range),
    Field(json_schema_extra={"example": "2026-07-01"}),
]
IsoDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text(_ISO_DATETIME, "date-time with its UTC offset")),
    AfterValidator(_in_range),
    Field(json_schema_extra={"example": "2026-07-01T09:30:00+08:00"}),
]
