"""HTTP routes for the fund's ledger (balances, journal) and the finance backstop.

Finance (a credential of department ``finance``) reads backstop requests with
``backstop:read`` and answers them with a grant with ``backstop:grant``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response

from services.mutual_aid import commands as c
from services.mutual_aid import handlers
from services.mutual_aid.api_common import (
    Days,
    IdFilter,
    Paged,
    Uow,
    Year,
    pages,
)
from services.mutual_aid.backstop import BackstopStatus
from services.mutual_aid.commands import api_fields
from services.mutual_aid.ledger import Account, EntryKind
from services.mutual_aid.ledger_repository import BackstopRequests, Fund
from services.mutual_aid.ledger_views import (
    BackstopRequestView,
    Balances,
    FundView,
    JournalEntryView,
)
from services.mutual_aid.money import format_yuan
from services.mutual_aid.search import Page
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, NotFound
from shared.http import router as service_router
from shared.routes import Pool

router = service_router()
FINANCE = "finance"


@router.get(
    "/fund",
    tags=["fund"],
    summary="The fund's balances, and their audit from the journal",
    description=(
        "Every account's balance as kept, and whether it equals the sum of the journal's lines"
        " (`balances_match_journal`, always true unless the books were tampered with)."
    ),
)
async def fund(pool: Pool, _: Caller = Depends(require_scope("reports:read"))) -> FundView:
    async with pool.acquire() as conn:
        kept = await Fund(conn).balances()
        derived = await Fund(conn).derived_balances()
    return FundView(
        balances=Balances.of(kept),
        fund_cash_fen=kept[Account.FUND_CASH],
        fund_cash_yuan=format_yuan(kept[Account.FUND_CASH]),
        balances_match_journal=kept == derived,
    )


@router.get(
    "/fund/journal",
    tags=["fund"],
    summary="The journal, in posting order (by kind, reference, days posted)",
    description=(
        "Double-entry journal entries with their lines, oldest first. `reference` finds what"
        " was posted for a receipt, a claim or a backstop request; `since`/`until` bound the"
        " day posted (422 `before_since` when `until` is earlier)."
    ),
)
async def journal(
    pool: Pool,
    days: Days,
    page: Annotated[Page, Depends(pages(200))],  # the journal has always paged by 200
    kind: Annotated[EntryKind | None, Query()] = None,
    reference: IdFilter = None,
    _: Caller = Depends(require_scope("reports:read")),
) -> list[JournalEntryView]:
    async with pool.acquire() as conn:
        rows = await Fund(conn).journal(
            kind=kind,
            reference=reference,
            days=days,
            page=page,
        )
    return [JournalEntryView.model_validate(dict(r)) for r in rows]


# The backstop ----------------------------------------------------------------------------------


@router.get(
    "/backstop/requests",
    tags=["backstop"],
    summary="Backstop requests to finance (by status, year, claim)",
    description=(
        "What the fund asked finance for, oldest first, each with its grants, reminders and"
        " what is still outstanding. `claim_id` finds the request that asked for a claim."
    ),
)
async def list_requests(
    pool: Pool,
    page: Paged,
    status: Annotated[BackstopStatus | None, Query()] = None,
    year: Year = None,
    claim_id: IdFilter = None,
    _: Caller = Depends(require_scope("backstop:read")),
) -> list[BackstopRequestView]:
    async with pool.acquire() as conn:
        found = await BackstopRequests(conn).search(
            status=status, year=year, claim_id=claim_id, page=page
        )
    return [BackstopRequestView.of(r) for r in found]


@router.get(
    "/backstop/requests/{request_id}",
    tags=["backstop"],
    summary="One backstop request",
    description="404 `unknown_backstop_request`: no such request.",
)
async def get_request(
    request_id: str, pool: Pool, _: Caller = Depends(require_scope("backstop:read"))
) -> BackstopRequestView:
    async with pool.acquire() as conn:
        request = await BackstopRequests(conn).get(request_id)
    if request is None:
        raise NotFound(
            "request_id",
            "unknown_backstop_request",
            "no such backstop request",
            request_id=request_id,
        )
    return BackstopRequestView.of(request)


@router.post(
    "/backstop/requests/{request_id}/grants",
    status_code=201,
    tags=["backstop"],
    summary="Finance grants money against a request (201; 200 when the same grant is re-sent)",
    description=(
        "Only a credential of department `finance` may grant (403 `finance_only`). The grant"
        " is journaled (Dr fund cash, Cr backstop income) and the payout worker pays the"
        " waiting claims. A grant may be partial. Idempotent by `reference`: the same"
        " reference, request, amount and day again answers 200 with the request, journaling"
        " nothing. 409 `already_recorded`: the reference was used for another grant;"
        " `no_open_request`: the request is unknown, granted or withdrawn; `above_outstanding`:"
        " more than the request still asks for. 422 `in_the_future` for `granted_on`."
    ),
    responses={
        200: {
            "description": "The same grant was recorded before: nothing journaled again",
            "model": BackstopRequestView,
        }
    },
)
async def grant(
    request_id: str,
    cmd: c.RecordGrant,
    response: Response,
    uow: Uow,
    caller: Caller = Depends(require_scope("backstop:grant")),
) -> BackstopRequestView:
    # Not a shared.routes.action: it answers 201, or 200 for a grant sent again, and an
    # action's status code is fixed when it is declared.
    if caller.department != FINANCE:
        raise Forbidden(
            "department", "finance_only", "only the finance bureau grants backstop money"
        )
    with api_fields():
        answered, repeat = await handlers.grant_backstop(
            cmd.about(request_id=request_id, recorded_by=caller.app_id), uow
        )
    if repeat:
        response.status_code = 200
    return BackstopRequestView.of(answered)
