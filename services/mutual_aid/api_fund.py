"""HTTP routes for the fund, the finance backstop and reports.

Finance (a credential of department ``finance``) reads backstop requests with
``backstop:read`` and answers them with a grant with ``backstop:grant``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from services.mutual_aid import commands as c
from services.mutual_aid import handlers
from services.mutual_aid.api_common import (
    Ctx,
    Days,
    IdFilter,
    PageLimit,
    PageOffset,
    Pool,
    Uow,
    Year,
    wake_payouts,
)
from services.mutual_aid.backstop import BackstopStatus
from services.mutual_aid.commands import api_fields
from services.mutual_aid.fund_repository import BackstopRequests, Fund
from services.mutual_aid.fund_views import (
    BackstopRequestView,
    Balances,
    FundView,
    JournalEntryView,
)
from services.mutual_aid.ledger import Account, EntryKind
from services.mutual_aid.money import format_yuan
from services.mutual_aid.reports import (
    Arrears,
    BackstopYear,
    BenefitsPaidReport,
    ClaimsReport,
    FundDay,
    Reports,
)
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, NotFound
from shared.http import router as service_router

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
    kind: Annotated[EntryKind | None, Query()] = None,
    reference: IdFilter = None,
    limit: PageLimit = 200,
    offset: PageOffset = 0,
    _: Caller = Depends(require_scope("reports:read")),
) -> list[JournalEntryView]:
    async with pool.acquire() as conn:
        rows = await Fund(conn).journal(
            kind=kind,
            reference=reference,
            since=days.since,
            until=days.until,
            limit=limit,
            offset=offset,
        )
    return [JournalEntryView.of_row(r) for r in rows]


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
    status: Annotated[BackstopStatus | None, Query()] = None,
    year: Year = None,
    claim_id: IdFilter = None,
    limit: PageLimit = 100,
    offset: PageOffset = 0,
    _: Caller = Depends(require_scope("backstop:read")),
) -> list[BackstopRequestView]:
    async with pool.acquire() as conn:
        found = await BackstopRequests(conn).search(
            status=status, year=year, claim_id=claim_id, limit=limit, offset=offset
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
    request: Request,
    response: Response,
    uow: Uow,
    ctx: Ctx,
    caller: Caller = Depends(require_scope("backstop:grant")),
) -> BackstopRequestView:
    if caller.department != FINANCE:
        raise Forbidden(
            "department", "finance_only", "only the finance bureau grants backstop money"
        )
    with api_fields():
        answered, repeat = await handlers.grant_backstop(
            uow, ctx, request_id, cmd, recorded_by=caller.app_id
        )
    if repeat:
        response.status_code = 200
    wake_payouts(request)  # the waiting claims are paid by the payout worker
    return BackstopRequestView.of(answered)


# Reports ---------------------------------------------------------------------------------------


@router.get(
    "/reports/fund-position",
    tags=["reports"],
    summary="The fund's position, day by day",
    description=(
        "Each day money moved between `since` and `until` (both included, ISO dates): what"
        " moved on each account and the balances at the day's end. 422 `before_since` when"
        " `until` is earlier than `since`."
    ),
)
async def fund_position(
    pool: Pool, days: Days, _: Caller = Depends(require_scope("reports:read"))
) -> list[FundDay]:
    async with pool.acquire() as conn:
        return await Reports(conn).fund_position(days.since, days.until)


@router.get(
    "/reports/claims",
    tags=["reports"],
    summary="Claims by status and by unit",
    description="Counts, approved amounts and declared expense per state; claims per unit.",
)
async def claims_report(
    pool: Pool, scheme_year: Year = None, _: Caller = Depends(require_scope("reports:read"))
) -> ClaimsReport:
    async with pool.acquire() as conn:
        return await Reports(conn).claims(scheme_year)


@router.get(
    "/reports/benefits-paid",
    tags=["reports"],
    summary="Benefits paid, by month and unit",
    description="Payments made for claims of the scheme year (all years when omitted).",
)
async def benefits_paid(
    request: Request,
    pool: Pool,
    scheme_year: Year = None,
    _: Caller = Depends(require_scope("reports:read")),
) -> BenefitsPaidReport:
    zone = request.app.state.runtime.settings.timezone
    async with pool.acquire() as conn:
        return await Reports(conn).benefits_paid(scheme_year, zone)


@router.get(
    "/reports/backstop",
    tags=["reports"],
    summary="Backstop requested, granted, withdrawn and outstanding per year",
    description="One row per year in which the fund asked finance for money.",
)
async def backstop_report(
    pool: Pool, _: Caller = Depends(require_scope("reports:read"))
) -> list[BackstopYear]:
    async with pool.acquire() as conn:
        return await Reports(conn).backstop()


@router.get(
    "/reports/arrears",
    tags=["reports"],
    summary="Units whose contributions are not level",
    description="Enrolments whose units paid less (or more: negative arrears) than they owe.",
)
async def arrears(
    pool: Pool, scheme_year: Year = None, _: Caller = Depends(require_scope("reports:read"))
) -> list[Arrears]:
    async with pool.acquire() as conn:
        return await Reports(conn).arrears(scheme_year)
