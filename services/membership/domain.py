"""The membership domain: union organisations, members, their status timeline, statistics.

Pure: no I/O, no clock. Every rule that needs "today" takes it as an argument so tests and the
service decide what today is. Aggregates append the events they cause to ``self.events``; the
unit of work writes them to the outbox in the same transaction.

Errors are the project's own (``shared.errors``), re-exported here, so the HTTP layer answers
with the right status and the field at fault::

    DomainError(field, code, message)   the request breaks a rule; ``field`` names the input at
                                        fault, ``code`` (snake_case) says which rule (422)
    ├── Conflict                        well formed, but the current state forbids it (409)
    └── NotFound                        for the service layer; the domain never raises it (404)

Every code is listed in ``docs/errors/membership.md``.
"""

from services.membership.member import *  # noqa: F403
from services.membership.organisation import *  # noqa: F403
from services.membership.rules import *  # noqa: F403
from services.membership.statistics import *  # noqa: F403
