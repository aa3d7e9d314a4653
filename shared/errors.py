"""Errors the domain raises, each naming the field at fault; the HTTP layer turns them into
RFC 9457 problem+json answers with the matching 4xx status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule refused the request. ``field`` names the input at fault (dotted path)."""

    status = 422
    title = "Request refused by a rule"

    def __init__(self, field: str, reason: str, **extra: Any) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.extra = extra


class Conflict(DomainError):
    status = 409
    title = "Conflicts with the current state"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    title = "Not allowed"
