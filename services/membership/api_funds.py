"""HTTP routes for union funds: the tax bureau's remittances and finance's subsidies.

The tax bureau (a credential of department ``tax``) submits remittance batches with
``remittances:submit``; city finance (department ``finance``) records subsidies with
``subsidies:write``. The federation reads the reports with ``reports:read``. The department is
checked as well as the scope: collection and subsidy figures are those departments' own records,
so a federation tool holding the scope by mistake still cannot write them.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response

from services.membership import commands as c
from services.membership import funds_handlers
from services.membership.api import Pool
from services.membership.funds_handlers import FundsUnitOfWork
from services.membership.funds_repository import Remittances, Subsidies
from services.membership.identity import normalise_credit_code
from services.membership.remittances import Period, uncovered_months
from services.membership.repository import Organisations
from shared.auth import Caller, require_scope
from shared.errors import DomainError, Forbidden

router = APIRouter()
TAX = "tax"
FINANCE = "finance"
PeriodQuery = Annotated[str, Query(max_length=7, description='a month "2026-10" or "2026Q3"')]
UnderQuery = Annotated[
    str | None, Query(max_length=40, description="an organisation: its subtree only")
]


def funds_uow(request: Request) -> FundsUnitOfWork:
    runtime = request.app.state.runtime
    return FundsUnitOfWork(runtime.pool, runtime.settings.events_topic)


Uow = Annotated[FundsUnitOfWork, Depends(funds_uow)]


def _within(caller: Caller, under: str | None) -> None:
    """A credential limited to organisations sees only their subtrees, never the whole city."""
    if caller.organisations is None:
        return
    if under is None:
        raise Forbidden("under", "this credential is limited to organisations: name one in under")
    caller.ensure_organisation(under, field="under")


async def _subtree_root(conn: asyncpg.Connection, under: str | None) -> None:
    if under is not None:
        await Organisations(conn).get(under, field="under")  # 404 for an unknown one


# Remittances -----------------------------------------------------------------------------------


@router.post(
    "/remittances/batches",
    status_code=201,
    tags=["union funds"],
    summary="The tax bureau's remittance records (201; 200 with the first answer when resent)",
)
async def submit_remittances(
    batch: c.RemittanceBatch,
    uow: Uow,
    response: Response,
    caller: Caller = Depends(require_scope("remittances:submit")),
) -> dict[str, Any]:
    """Each record is matched to a union by the employer's credit code, or is unmatched; records
    with errors are listed with their index and field while the good ones are recorded. Amounts
    that differ from 2% of the payroll base are flagged (``rate``), not refused."""
    if caller.department != TAX:
        raise Forbidden("department", "only the tax bureau submits remittances")
    result, repeat = await funds_handlers.submit_remittances(batch, uow, submitted_by=caller.app_id)
    if repeat:
        response.status_code = 200
    return result


def remittance_view(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["id"],
        "credit_code": r["credit_code"],
        "employer_name": r["employer_name"],
        "period": r["period"],
        "payroll_base_fen": r["payroll_base_fen"],
        "amount_fen": r["amount_fen"],
        "expected_fen": r["expected_fen"],
        "deviation_fen": r["amount_fen"] - r["expected_fen"],
        "paid_on": r["paid_on"].isoformat(),
        "record_id": r["record_id"],
        "matched_union_id": r["union_id"],  # as matched when the record arrived
        "batch_id": r["batch_id"],
    }


@router.get("/remittances", tags=["union funds"], summary="A union's or an employer's remittances")
async def list_remittances(
    pool: Pool,
    union_id: Annotated[str | None, Query(max_length=40)] = None,
    credit_code: Annotated[str | None, Query(max_length=18)] = None,
    period: Annotated[str | None, Query(max_length=7)] = None,
    caller: Caller = Depends(require_scope("reports:read")),
) -> dict[str, Any]:
    """By union (its employer's credit code, whenever the records arrived) or by credit code
    (for employers without a union); ``period`` keeps those overlapping it."""
    if (union_id is None) == (credit_code is None):
        raise DomainError("union_id", "give either union_id or credit_code")
    asked = Period.parse(period) if period is not None else None
    async with pool.acquire() as conn:
        if union_id is not None:
            caller.ensure_organisation(union_id, field="union_id")
            union = await Organisations(conn).get(union_id, field="union_id")
            code = union.employer.credit_code if union.employer else None
        else:
            assert credit_code is not None
            if caller.organisations is not None:
                raise Forbidden("credit_code", "this credential is limited to its unions")
            code = normalise_credit_code(credit_code)
        rows = await Remittances(conn).of_employer(code, asked) if code else []
    return {
        "union_id": union_id,
        "credit_code": code,
        "period": str(asked) if asked else None,
        "items": [remittance_view(r) for r in rows],
    }


@router.get(
    "/remittances/arrears",
    tags=["union funds"],
    summary="Unions whose employer has not remitted for the period",
)
async def arrears(
    pool: Pool,
    period: PeriodQuery,
    under: UnderQuery = None,
    caller: Caller = Depends(require_scope("reports:read")),
) -> dict[str, Any]:
    """Standing unions with an employer, in the subtree, founded by the period's end, with a
    month of the period no remittance covers (a quarterly one covers its three months)."""
    _within(caller, under)
    asked = Period.parse(period)
    async with pool.acquire() as conn:
        await _subtree_root(conn, under)
        unions = await Remittances(conn).unions_owing_for(asked, under)
        paid = await Remittances(conn).periods_paid([u["credit_code"] for u in unions], asked)
    items = []
    for u in unions:
        periods = [Period.parse(p) for p in paid.get(u["credit_code"], [])]
        missing = uncovered_months(asked, periods, since=u["founded_on"])
        if missing:
            items.append(
                {
                    "union_id": u["id"],
                    "name": u["name"],
                    "credit_code": u["credit_code"],
                    "employer_name": u["employer_name"],
                    "missing_months": [str(m) for m in missing],
                }
            )
    return {"period": str(asked), "under": under, "unions_checked": len(unions), "items": items}


@router.get(
    "/remittances/unorganised",
    tags=["union funds"],
    summary="Employers that remitted for the period but have no union: a prompt to organise them",
)
async def unorganised(
    pool: Pool, period: PeriodQuery, caller: Caller = Depends(require_scope("reports:read"))
) -> dict[str, Any]:
    if caller.organisations is not None:
        raise Forbidden("organisations", "employers without a union are no organisation's to see")
    asked = Period.parse(period)
    async with pool.acquire() as conn:
        rows = await Remittances(conn).unorganised(asked)
    return {
        "period": str(asked),
        "items": [
            {
                "credit_code": r["credit_code"],
                "employer_name": r["employer_name"],
                "periods": sorted(r["periods"]),
                "records": r["records"],
                "payroll_base_fen": r["payroll_base_fen"],
                "amount_fen": r["amount_fen"],
            }
            for r in rows
        ],
    }


# Subsidies -------------------------------------------------------------------------------------


@router.post(
    "/subsidies",
    status_code=201,
    tags=["union funds"],
    summary="City finance's administrative subsidy to a union (201; 200 when resent)",
)
async def record_subsidy(
    cmd: c.RecordSubsidy,
    uow: Uow,
    response: Response,
    caller: Caller = Depends(require_scope("subsidies:write")),
) -> dict[str, Any]:
    if caller.department != FINANCE:
        raise Forbidden("department", "only city finance records subsidies")
    subsidy, repeat = await funds_handlers.record_subsidy(cmd, uow, recorded_by=caller.app_id)
    if repeat:
        response.status_code = 200
    return subsidy


@router.get("/subsidies/totals", tags=["union funds"], summary="Subsidies per union and year")
async def subsidy_totals(
    pool: Pool,
    year: Annotated[int | None, Query(ge=1950, le=9999)] = None,
    under: UnderQuery = None,
    caller: Caller = Depends(require_scope("reports:read")),
) -> dict[str, Any]:
    """Amount and number of subsidies per union and year; members covered is the year's largest
    period's (the same members are covered month after month, so periods do not add up)."""
    _within(caller, under)
    async with pool.acquire() as conn:
        await _subtree_root(conn, under)
        rows = await Subsidies(conn).totals(year, under)
    return {
        "year": year,
        "under": under,
        "items": [
            {
                "union_id": r["union_id"],
                "name": r["name"],
                "year": r["year"],
                "amount_fen": r["amount_fen"],
                "members_covered": r["members_covered"],
                "count": r["records"],
            }
            for r in rows
        ],
    }
