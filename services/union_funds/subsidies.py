"""City finance's administrative subsidies to unions: the rules. Pure."""

from __future__ import annotations

from services.union_funds.periods import SUBSIDY_PERIODS, Period
from services.union_funds.unions import Union
from shared.errors import Conflict, DomainError


def subsidy_period(raw: str) -> Period:
    """Finance grants for a month, a quarter or a whole year."""
    return Period.parse(raw, kinds=SUBSIDY_PERIODS)


def check_subsidised(union: Union, period: Period) -> None:
    """A union may be subsidised for any period it stood in: finance often records a subsidy
    after the fact, so a union dissolved since is fine; one dissolved before the period began, or
    founded after it ended, is not."""
    if union.dissolved_on is not None and union.dissolved_on < period.start:
        message = f"{union.id} was dissolved on {union.dissolved_on.isoformat()}, before {period}"
        raise Conflict("union_id", "union_dissolved", message)
    if union.founded_on is not None and union.founded_on > period.end:
        message = f"ends before {union.id} was founded on {union.founded_on}"
        raise DomainError("period", "before_founding", message)
