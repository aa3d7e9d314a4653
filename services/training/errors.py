"""Errors the training domain raises when a rule says no.

They build on ``shared.errors`` so the HTTP layer answers with the right status (422, 409, 404) and
the field at fault. Every error names the ``field`` the caller got wrong (or the thing in the way)
and a machine-readable ``reason`` a client can act on; ``message`` is for people and becomes the
problem's ``detail``.

    DomainError (422)   a request breaks a rule
    ├── Conflict (409)  it clashes with what exists: a second enrolment, a wrong status
    └── NotFound (404)  it names a session or enrolment the class does not have
"""

from __future__ import annotations

from typing import Any

from shared import errors as shared


class DomainError(shared.DomainError):
    def __init__(self, field: str, reason: str, message: str | None = None, **extra: Any) -> None:
        # ``extra`` goes into the problem+json body: keep its values JSON-ready (str, int).
        super().__init__(field, reason, **extra)
        self.message = message or reason.replace("_", " ")

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class Conflict(DomainError, shared.Conflict):
    pass


class NotFound(DomainError, shared.NotFound):
    pass
