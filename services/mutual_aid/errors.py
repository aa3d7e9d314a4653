"""Errors the mutual-aid domain raises when a rule says no.

They build on ``shared.errors`` so the HTTP layer answers with the right 4xx and the field at fault:

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
    """One thing wrong with a plan: the dotted field (``rules.bands[1].lower``) and why."""

    field: str
    message: str


class PlanInvalid(DomainError):
    def __init__(self, problems: list[PlanProblem]) -> None:
        first = problems[0]
        super().__init__(first.field, "plan_invalid", problems=problems)
        self.problems = problems

    def __str__(self) -> str:
        return "; ".join(f"{p.field}: {p.message}" for p in self.problems)

    def fields(self) -> list[str]:
        return [p.field for p in self.problems]


class AdjustmentRefused(DomainError):
    pass


class InvalidTransition(Conflict):
    def __init__(self, what: str, action: str, state: str) -> None:
        super().__init__("state", "invalid_transition", what=what, action=action, state=state)
        self.action = action
        self.state = state

    def __str__(self) -> str:
        return f"{self.extra['what']}: cannot {self.action} in state {self.state}"


class GrantRefused(Conflict):
    pass


class FundOverdrawn(Conflict):
    pass


class DuplicateEntry(Conflict):
    pass
