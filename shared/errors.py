"""Errors the domain raises, each naming the field at fault; the HTTP layer turns them into
RFC 9457 problem+json answers with the matching 4xx status.

One contract across the platform (``docs/errors.md``): every error has the ``field`` at fault (a
dotted path such as ``members[3].id_number``), a stable snake_case ``code`` a program can act on,
and a ``message`` for people. Codes are part of the published API: add new ones, never rename.
"""

from __future__ import annotations

import re
from typing import Any

_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "errors"})
_CODE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


class DomainError(Exception):
    """A rule refused the request: ``field`` at fault, ``code`` (snake_case), ``message``."""

    status = 422
    title = "Request refused by a rule"

    def __init__(self, field: str, code: str, message: str | None = None, **extra: Any) -> None:
        if not _CODE.fullmatch(code):
            # A prose reason here would reach clients as a "code": refuse it where it is written.
            raise ValueError(f"error code {code!r} is not snake_case")
        self.field = field
        self.code = code
        self.message = message or code.replace("_", " ")
        clash = _PROBLEM_MEMBERS.intersection(extra)
        if clash:
            raise ValueError(f"extra members {sorted(clash)} would replace the problem's own")
        # ``extra`` goes into the problem+json body: keep its values JSON-ready.
        self.extra = extra
        super().__init__(f"{field}: {self.message}")


class Conflict(DomainError):
    status = 409
    title = "Conflicts with the current state"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    title = "Not allowed"


class ServiceUnavailable(Exception):
    """The service cannot serve yet (starting, or waiting for Postgres or Kafka): a 503 that
    tells the caller to retry."""
