"""What mutual-aid routes take besides their own input: the unit of work (``Uow``), and the
query parameters lists share (year, period, page). Use cases after which claims may be payable
wake the payout worker themselves, through the unit of work (``wake_payouts``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query

from services.mutual_aid.search import Page, Period
from services.mutual_aid.unit_of_work import MutualAidUnitOfWork
from shared.auth import Caller
from shared.errors import DomainError
from shared.inputs import IsoDate, Limit, Offset
from shared.routes import unit_of_work

Uow = Annotated[MutualAidUnitOfWork, Depends(unit_of_work)]
Year = Annotated[int | None, Query(ge=2000, le=2100, description="a scheme year")]
# Ids as other systems hold them; the bound keeps a query from carrying a document.
IdFilter = Annotated[str | None, Query(min_length=1, max_length=100)]
PageOffset = Annotated[Offset, Query(description="how many matches to skip")]
PageLimit = Annotated[Limit, Query(description="at most this many (1 to 1000)")]


def visible_units(caller: Caller, unit_id: str | None) -> set[str] | None:
    """The units a list may show: the one asked for (None: all), within those the caller may
    see; an empty set when the caller may see none of them."""
    units = {unit_id} if unit_id else None
    if caller.organisations is not None:
        units = set(caller.organisations) & units if units else set(caller.organisations)
    return units


async def period(
    since: Annotated[IsoDate | None, Query(description="from this day (included)")] = None,
    until: Annotated[IsoDate | None, Query(description="to this day (included)")] = None,
) -> Period:
    if since is not None and until is not None and until < since:
        raise DomainError("until", "before_since", "must not be before since")
    return Period(since, until)


def pages(default_limit: int) -> Callable[..., Awaitable[Page]]:
    """The ``limit`` and ``offset`` of a list whose page holds ``default_limit`` unless asked."""

    async def page(limit: PageLimit = default_limit, offset: PageOffset = 0) -> Page:
        return Page(limit, offset)

    return page


Days = Annotated[Period, Depends(period)]
Paged = Annotated[Page, Depends(pages(100))]
