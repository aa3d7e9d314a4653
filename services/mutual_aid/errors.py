"""Errors the mutual-aid domain raises when a rule says no.

They build on ``shared.errors`` (field, snake_case code, message) so the HTTP layer answers with
the right 4xx and the field at fault. Every code is listed in ``docs/errors/mutual_aid.md``:

    DomainError (422)          a request breaks a rule
    ├── PlanInvalid            a plan cannot be published; ``problems`` lists every field at fault
    ├── AdjustmentRefused      an officer's adjusted amount is above the computed benefit
    └── Conflict (409)
        ├── InvalidTransition  a claim / plan / request cannot take that step in its state
        ├── GrantRefused       a finance grant does not match an open backstop request
        ├── FundOverdrawn      a posting would take the fund below zero
        └── DuplicateEntry     a journal entry or receipt already recorded
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import Conflict, DomainError


@dataclass(frozen=True)
class PlanProblem:
    """One thing wrong with a plan: the dotted field (``rules.bands[1].lower``), a snake_case
    code a form can key its hint on, and a message for the officer."""

    field: str
    code: str
    message: str


class PlanInvalid(DomainError):
    def __init__(self, problems: list[PlanProblem]) -> None:
        first = problems[0]
        super().__init__(first.field, first.code, first.message)
        self.problems = problems

    def __str__(self) -> str:
        return "; ".join(f"{p.field}: {p.message}" for p in self.problems)

    def fields(self) -> list[str]:
        return [p.field for p in self.problems]


class AdjustmentRefused(DomainError):
    pass


class InvalidTransition(Conflict):
    """``what`` ("claim CL-2025-000001") cannot take ``action`` in ``state``; the three ride in
    the answer so a client can show the state it should have refreshed."""

    def __init__(self, what: str, action: str, state: str) -> None:
        super().__init__(
            "state",
            "invalid_transition",
            f"{what}: cannot {action} in state {state}",
            what=what,
            action=action,
            state=str(state),
        )
        self.action = action
        self.state = state


class GrantRefused(Conflict):
    pass


class FundOverdrawn(Conflict):
    pass


class DuplicateEntry(Conflict):
    pass
