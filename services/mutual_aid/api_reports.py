"""HTTP routes for reports: read-only roll-ups of the fund, claims, payments, the backstop and
units' arrears, straight from the schema (``reports``)."""

from __future__ import annotations

from fastapi import Depends, Request

from services.mutual_aid.api_common import Days, Year
from services.mutual_aid.reports import (
    Arrears,
    BackstopYear,
    BenefitsPaidReport,
    ClaimsReport,
    FundDay,
    Reports,
)
from shared.auth import Caller, require_scope
from shared.http import router as service_router
from shared.routes import Pool

router = service_router()


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
        return await Reports(conn).fund_position(days)


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
