"""HTTP routes for the fund, the finance backstop and reports.

Finance (a credential of department ``finance``) reads backstop requests with
``backstop:read`` and answers them with a grant with ``backstop:grant``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from services.mutual_aid import commands as c
from services.mutual_aid import handlers
from services.mutual_aid.api import Ctx, Pool, Uow, Year, wake_payouts
from services.mutual_aid.backstop import BackstopStatus
from services.mutual_aid.commands import api_fields
from services.mutual_aid.fund_repository import BackstopRequests, Fund
from services.mutual_aid.ledger import Account
from services.mutual_aid.reports import Reports
from services.mutual_aid.views import money, request_view
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, NotFound

router = APIRouter()
FINANCE = "finance"


@router.get("/fund", tags=["fund"], summary="The fund's balances, and their audit from the journal")
async def fund(pool: Pool, _: Caller = Depends(require_scope("reports:read"))) -> dict[str, Any]:
    async with pool.acquire() as conn:
        kept = await Fund(conn).balances()
        derived = await Fund(conn).derived_balances()
    return {
        "balances": {f"{a.value}_fen": v for a, v in kept.items()},
        **money("fund_cash", kept[Account.FUND_CASH]),
        # True when the kept balances equal the sums of the journal lines (they always should).
        "balances_match_journal": kept == derived,
    }


@router.get("/fund/journal", tags=["fund"], summary="The journal, in posting order")
async def journal(
    pool: Pool,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
    _: Caller = Depends(require_scope("reports:read")),
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [dict(r) for r in await Fund(conn).journal(limit, offset)]


# The backstop ----------------------------------------------------------------------------------


@router.get("/backstop/requests", tags=["backstop"], summary="Backstop requests to finance")
async def list_requests(
    pool: Pool,
    status: BackstopStatus | None = None,
    year: Year = None,
    _: Caller = Depends(require_scope("backstop:read")),
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        found = await BackstopRequests(conn).search(status.value if status else None, year)
    return [request_view(r) for r in found]


@router.get("/backstop/requests/{request_id}", tags=["backstop"])
async def get_request(
    request_id: str, pool: Pool, _: Caller = Depends(require_scope("backstop:read"))
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        request = await BackstopRequests(conn).get(request_id)
    if request is None:
        raise NotFound("request_id", "no such backstop request", request_id=request_id)
    return request_view(request)


@router.post(
    "/backstop/requests/{request_id}/grants",
    status_code=201,
    tags=["backstop"],
    summary="Finance grants money against a request (201; 200 when the same grant is re-sent)",
)
async def grant(
    request_id: str,
    cmd: c.RecordGrant,
    request: Request,
    response: Response,
    uow: Uow,
    ctx: Ctx,
    caller: Caller = Depends(require_scope("backstop:grant")),
) -> dict[str, Any]:
    if caller.department != FINANCE:
        raise Forbidden("department", "only the finance bureau grants backstop money")
    with api_fields():
        answered, repeat = await handlers.grant_backstop(
            uow, ctx, request_id, cmd, recorded_by=caller.app_id
        )
    if repeat:
        response.status_code = 200
    wake_payouts(request)  # the waiting claims are paid by the payout worker
    return request_view(answered)


# Reports ---------------------------------------------------------------------------------------


@router.get("/reports/fund-position", tags=["reports"], summary="The fund's position over time")
async def fund_position(
    pool: Pool,
    since: date | None = None,
    until: date | None = None,
    _: Caller = Depends(require_scope("reports:read")),
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await Reports(conn).fund_position(since, until)


@router.get("/reports/claims", tags=["reports"], summary="Claims by status and by unit")
async def claims_report(
    pool: Pool, scheme_year: Year = None, _: Caller = Depends(require_scope("reports:read"))
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await Reports(conn).claims(scheme_year)


@router.get("/reports/benefits-paid", tags=["reports"], summary="Benefits paid, by month and unit")
async def benefits_paid(
    request: Request,
    pool: Pool,
    scheme_year: Year = None,
    _: Caller = Depends(require_scope("reports:read")),
) -> dict[str, Any]:
    zone = request.app.state.runtime.settings.timezone
    async with pool.acquire() as conn:
        return await Reports(conn).benefits_paid(scheme_year, zone)


@router.get(
    "/reports/backstop",
    tags=["reports"],
    summary="Backstop requested, granted and outstanding per year",
)
async def backstop_report(
    pool: Pool, _: Caller = Depends(require_scope("reports:read"))
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await Reports(conn).backstop()


@router.get("/reports/arrears", tags=["reports"], summary="Units whose contributions are not level")
async def arrears(
    pool: Pool, scheme_year: Year = None, _: Caller = Depends(require_scope("reports:read"))
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await Reports(conn).arrears(scheme_year)
