"""HTTP routes of the union funds service (工会经费): the tax bureau's remittances and finance's
subsidies. Validate, call a handler, shape the answer.

The tax bureau (a credential of department ``tax``) submits remittance batches with
``remittances:submit``; city finance (department ``finance``) records subsidies with
``subsidies:write``. The federation reads the reports with ``reports:read``. The department is
checked as well as the scope: collection and subsidy figures are those departments' own records,
so a federation tool holding the scope by mistake still cannot write them.

Unions are those membership announced (``unions``, kept from its events): a union established a
moment ago may not be known here yet. Every error is problem+json with a code listed in
``docs/errors/union_funds.md``.
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Query, Response

from services.union_funds import commands as c
from services.union_funds import handlers
from services.union_funds.periods import MAX_YEAR, MIN_YEAR, Period, uncovered_months
from services.union_funds.repository import Remittances, Subsidies, Unions
from services.union_funds.unit_of_work import UnionFundsUnitOfWork
from services.union_funds.views import (
    Arrear,
    ArrearsReport,
    BatchReportView,
    RemittanceList,
    SubsidyTotal,
    SubsidyTotals,
    SubsidyView,
    UnorganisedEmployer,
    UnorganisedReport,
    remittance_view,
)
from shared.auth import Caller, require_scope
from shared.credit_code import normalise_credit_code
from shared.errors import DomainError, Forbidden
from shared.http import router as shared_router
from shared.routes import Pool, Today, unit_of_work

router = shared_router()
TAX = "tax"
FINANCE = "finance"
PeriodQuery = Annotated[
    str,
    Query(max_length=7, description='A month "2026-10" or a quarter "2026Q4"', examples=["2026Q4"]),
]
UnderQuery = Annotated[
    str | None,
    Query(max_length=64, description="An organisation: only its subtree (itself included)"),
]
_RESENT = "200: the same batch or reference sent again, answered as the first time"


Uow = Annotated[UnionFundsUnitOfWork, Depends(unit_of_work)]


def _within(caller: Caller, under: str | None) -> None:
    """A credential limited to organisations sees only their subtrees, never the whole city."""
    if caller.organisations is None:
        return
    if under is None:
        raise Forbidden(
            "under", "under_required", "this credential is limited to organisations: name one"
        )
    caller.ensure_organisation(under, field="under")


async def _subtree_root(conn: asyncpg.Connection, under: str | None) -> None:
    if under is not None:
        await Unions(conn).get(under, field="under")  # 404 for an unknown one


# Remittances -----------------------------------------------------------------------------------


@router.post(
    "/remittances/batches",
    status_code=201,
    tags=["remittances"],
    response_model=BatchReportView,
    responses={200: {"model": BatchReportView, "description": _RESENT}},
    summary="The tax bureau's remittance records (201; 200 with the first answer when resent)",
)
async def submit_remittances(
    batch: c.RemittanceBatch,
    uow: Uow,
    response: Response,
    caller: Caller = Depends(require_scope("remittances:submit")),
) -> BatchReportView:
    """The tax bureau sends the union funds (工会经费) it collected, in batches of up to 10,000
    records. Each record is matched to the union standing today whose employer has the record's
    credit code, or recorded as unmatched (the employer has no union yet: see
    `GET /remittances/unorganised`). Records with errors are listed in `errors` with their
    index, field and code (`required`, `unknown_field`, `not_whole_fen`, `period_not_begun`,
    `check_character_mismatch`, ...) while the good ones are recorded. Amounts that differ from
    2% of the payroll base are flagged (`rate`), not refused.

    Idempotent by `batch_id`: the same batch again is answered 200 with the first report; the
    same `batch_id` with other records is 409 `batch_id_reused`. A record already recorded by
    another batch is a `duplicate`; with other amounts it is rejected (`recorded_otherwise`).
    Only credentials of the tax bureau may submit (403 `tax_bureau_only`)."""
    if caller.department != TAX:
        raise Forbidden("department", "tax_bureau_only", "only the tax bureau submits remittances")
    result, repeat = await handlers.submit_remittances(batch.about(submitted_by=caller.app_id), uow)
    if repeat:
        response.status_code = 200
    return BatchReportView.model_validate(result)


@router.get(
    "/remittances",
    tags=["remittances"],
    response_model=RemittanceList,
    summary="A union's or an employer's remittances",
)
async def list_remittances(
    pool: Pool,
    union_id: Annotated[
        str | None, Query(max_length=64, description="A union: its employer's remittances")
    ] = None,
    credit_code: Annotated[
        str | None, Query(max_length=18, description="An employer, with or without a union")
    ] = None,
    period: Annotated[
        str | None,
        Query(max_length=7, description='Only those overlapping "2026-10" or "2026Q4"'),
    ] = None,
    caller: Caller = Depends(require_scope("reports:read")),
) -> RemittanceList:
    """Give exactly one of `union_id` (its employer's credit code, whenever the records
    arrived) or `credit_code` (for employers without a union): 422 `union_or_credit_code`
    otherwise. `period` keeps the records overlapping it (422 `invalid_period`,
    `no_such_month`, `no_such_quarter`, `year_out_of_range`). A credential limited to some
    unions asks by `union_id` for its own (403 `organisation_not_allowed`,
    `limited_credential`); 404 `organisation_not_found`."""
    if (union_id is None) == (credit_code is None):
        raise DomainError("union_id", "union_or_credit_code", "give either union_id or credit_code")
    asked = Period.parse(period) if period is not None else None
    async with pool.acquire() as conn:
        if union_id is not None:
            caller.ensure_organisation(union_id, field="union_id")
            code = (await Unions(conn).get(union_id, field="union_id")).credit_code
        else:
            assert credit_code is not None
            if caller.organisations is not None:
                raise Forbidden(
                    "credit_code",
                    "limited_credential",
                    "this credential is limited to its unions",
                )
            code = normalise_credit_code(credit_code)
        rows = await Remittances(conn).of_employer(code, asked) if code else []
    return RemittanceList(
        union_id=union_id,
        credit_code=code,
        period=str(asked) if asked else None,
        items=[remittance_view(r) for r in rows],
    )


@router.get(
    "/remittances/arrears",
    tags=["remittances"],
    response_model=ArrearsReport,
    summary="Unions whose employer has not remitted for the period",
)
async def arrears(
    pool: Pool,
    day: Today,
    period: PeriodQuery,
    under: UnderQuery = None,
    caller: Caller = Depends(require_scope("reports:read")),
) -> ArrearsReport:
    """Unions standing today with an employer, in the subtree, founded by the period's end, with
    a month of the period no remittance covers (a quarterly one covers its three months). A
    credential limited to some organisations must name one of them in `under` (403
    `under_required`, `organisation_not_allowed`); 404 `organisation_not_found` for `under`;
    422 for a period that is not a month or a quarter."""
    _within(caller, under)
    asked = Period.parse(period)
    async with pool.acquire() as conn:
        await _subtree_root(conn, under)
        unions = await Unions(conn).owing_for(asked, under, day)
        paid = await Remittances(conn).periods_paid([u["credit_code"] for u in unions], asked)
    items = []
    for u in unions:
        periods = [Period.parse(p) for p in paid.get(u["credit_code"], [])]
        missing = uncovered_months(asked, periods, since=u["founded_on"])
        if missing:
            items.append(
                Arrear(
                    union_id=u["id"],
                    name=u["name"],
                    credit_code=u["credit_code"],
                    employer_name=u["employer_name"],
                    missing_months=[str(m) for m in missing],
                )
            )
    return ArrearsReport(period=str(asked), under=under, unions_checked=len(unions), items=items)


@router.get(
    "/remittances/unorganised",
    tags=["remittances"],
    response_model=UnorganisedReport,
    summary="Employers that remitted for the period but have no union: a prompt to organise them",
)
async def unorganised(
    pool: Pool,
    day: Today,
    period: PeriodQuery,
    caller: Caller = Depends(require_scope("reports:read")),
) -> UnorganisedReport:
    """Employers whose union funds arrived for (part of) the period while no union standing
    today has them as employer, largest amount first: where the federation should found a
    union. City-wide, so a credential limited to some organisations may not ask (403
    `limited_credential`)."""
    if caller.organisations is not None:
        raise Forbidden(
            "organisations",
            "limited_credential",
            "employers without a union are no organisation's to see",
        )
    asked = Period.parse(period)
    async with pool.acquire() as conn:
        rows = await Remittances(conn).unorganised(asked, day)
    return UnorganisedReport(
        period=str(asked),
        items=[
            UnorganisedEmployer(
                credit_code=r["credit_code"],
                employer_name=r["employer_name"],
                periods=sorted(r["periods"]),
                records=r["records"],
                payroll_base_fen=r["payroll_base_fen"],
                amount_fen=r["amount_fen"],
            )
            for r in rows
        ],
    )


# Subsidies -------------------------------------------------------------------------------------


@router.post(
    "/subsidies",
    status_code=201,
    tags=["subsidies"],
    response_model=SubsidyView,
    responses={200: {"model": SubsidyView, "description": _RESENT}},
    summary="City finance's administrative subsidy to a union (201; 200 when resent)",
)
async def record_subsidy(
    cmd: c.RecordSubsidy,
    uow: Uow,
    response: Response,
    caller: Caller = Depends(require_scope("subsidies:write")),
) -> SubsidyView:
    """City finance records a subsidy it granted to a union for a month, a quarter or a year.
    Idempotent by finance's `reference`: sent again with the same figures it is answered 200
    with the first record; with other figures 409 `reference_reused` (`existing` shows the
    recorded one: a correction needs a person). 404 `organisation_not_found` (union_id: no such
    union, or one established in membership a moment ago and not announced here yet); 409
    `union_dissolved` before the period; 422 `before_founding`, `invalid_period`,
    `year_out_of_range`. Only credentials of city finance may record (403 `finance_only`)."""
    if caller.department != FINANCE:
        raise Forbidden("department", "finance_only", "only city finance records subsidies")
    subsidy, repeat = await handlers.record_subsidy(cmd.about(recorded_by=caller.app_id), uow)
    if repeat:
        response.status_code = 200
    return subsidy


@router.get(
    "/subsidies/totals",
    tags=["subsidies"],
    response_model=SubsidyTotals,
    summary="Subsidies per union and year",
)
async def subsidy_totals(
    pool: Pool,
    year: Annotated[int | None, Query(ge=MIN_YEAR, le=MAX_YEAR, examples=[2026])] = None,
    under: UnderQuery = None,
    caller: Caller = Depends(require_scope("reports:read")),
) -> SubsidyTotals:
    """Amount and number of subsidies per union and year; members covered is the year's largest
    period's (the same members are covered month after month, so periods do not add up). A
    credential limited to some organisations must name one of them in `under` (403
    `under_required`, `organisation_not_allowed`); 404 `organisation_not_found`."""
    _within(caller, under)
    async with pool.acquire() as conn:
        await _subtree_root(conn, under)
        rows = await Subsidies(conn).totals(year, under)
    return SubsidyTotals(
        year=year,
        under=under,
        items=[
            SubsidyTotal(
                union_id=r["union_id"],
                name=r["name"],
                year=r["year"],
                amount_fen=r["amount_fen"],
                members_covered=r["members_covered"],
                count=r["records"],
            )
            for r in rows
        ],
    )
