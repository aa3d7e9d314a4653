"""HTTP routes for plans, enrolment, contributions and claims: validate, call a handler, answer.

Every route needs a signed request whose credential holds the scope declared beside it. A
credential limited to organisations acts only for those units. Amounts are integer fen in
``*_fen`` fields (see ``commands``). The fund, the backstop and reports are in ``api_fund``.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request

from services.mutual_aid import commands as c
from services.mutual_aid import handlers
from services.mutual_aid.claims import ClaimState
from services.mutual_aid.claims_repository import Claims
from services.mutual_aid.commands import api_fields
from services.mutual_aid.fund_repository import BackstopRequests, Payments
from services.mutual_aid.handlers import Context, MutualAidUnitOfWork
from services.mutual_aid.intake import Submitter
from services.mutual_aid.repository import Enrolments, Members, Plans
from services.mutual_aid.views import claim_view, coverage_view, enrolment_view, plan_view
from shared.auth import Caller, require_scope
from shared.errors import NotFound

router = APIRouter()


def uow(request: Request) -> MutualAidUnitOfWork:
    runtime = request.app.state.runtime
    return MutualAidUnitOfWork(runtime.pool, runtime.settings.events_topic)


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def wake_payouts(request: Request) -> None:
    request.app.state.payouts.wake()


Uow = Annotated[MutualAidUnitOfWork, Depends(uow)]
Pool = Annotated[asyncpg.Pool, Depends(pool)]
Ctx = Annotated[Context, Depends(context)]
Year = Annotated[int | None, Query(ge=2000, le=2100)]


# Plans -----------------------------------------------------------------------------------------


@router.post("/plans", status_code=201, tags=["plans"], summary="Draft the next plan version")
async def draft_plan(
    cmd: c.DraftPlan, uow: Uow, _: Caller = Depends(require_scope("plans:write"))
) -> dict[str, Any]:
    with api_fields():
        return plan_view(await handlers.draft_plan(uow, cmd))


@router.post(
    "/plans/{plan_id}/publish",
    tags=["plans"],
    summary="Publish a draft: every rule is checked, every problem named",
)
async def publish_plan(
    plan_id: str, uow: Uow, ctx: Ctx, _: Caller = Depends(require_scope("plans:write"))
) -> dict[str, Any]:
    with api_fields():
        return plan_view(await handlers.publish_plan(uow, plan_id, ctx.clock.today()))


@router.get("/plans", tags=["plans"])
async def list_plans(
    pool: Pool, scheme_year: Year = None, _: Caller = Depends(require_scope("plans:read"))
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [plan_view(p) for p in await Plans(conn).search(scheme_year)]


@router.get("/plans/{plan_id}", tags=["plans"])
async def get_plan(
    plan_id: str, pool: Pool, _: Caller = Depends(require_scope("plans:read"))
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return plan_view(await Plans(conn).get(plan_id))


# Enrolment -------------------------------------------------------------------------------------


async def _enrolment(pool: asyncpg.Pool, enrolment_id: str, caller: Caller) -> dict[str, Any]:
    async with pool.acquire() as conn:
        enrolment = await Enrolments(conn).get(enrolment_id)
    caller.ensure_organisation(enrolment.unit_id, field="enrolment_id")
    return enrolment_view(enrolment)


@router.post(
    "/enrolments",
    status_code=201,
    tags=["enrolment"],
    summary="Enrol a unit for a plan year with its staff list",
)
async def enrol_unit(
    cmd: c.EnrolUnit,
    uow: Uow,
    ctx: Ctx,
    caller: Caller = Depends(require_scope("enrolment:write")),
) -> dict[str, Any]:
    caller.ensure_organisation(cmd.unit_id, field="unit_id")
    return enrolment_view(await handlers.enrol_unit(uow, cmd, ctx.clock.today()))


@router.post(
    "/enrolments/{enrolment_id}/staff", tags=["enrolment"], summary="Cover more of the staff"
)
async def cover_staff(
    enrolment_id: str,
    cmd: c.CoverStaff,
    uow: Uow,
    ctx: Ctx,
    pool: Pool,
    caller: Caller = Depends(require_scope("enrolment:write")),
) -> dict[str, Any]:
    await _enrolment(pool, enrolment_id, caller)
    on = cmd.on or ctx.clock.today()
    return enrolment_view(await handlers.cover_staff(uow, enrolment_id, cmd.member_ids, on))


@router.get("/enrolments", tags=["enrolment"])
async def list_enrolments(
    pool: Pool, scheme_year: Year = None, caller: Caller = Depends(require_scope("enrolment:read"))
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        repo = Enrolments(conn)
        ids = await repo.search(scheme_year, caller.organisations)
        return [enrolment_view(await repo.get(i)) for i in ids]


@router.get("/enrolments/{enrolment_id}", tags=["enrolment"])
async def get_enrolment(
    enrolment_id: str, pool: Pool, caller: Caller = Depends(require_scope("enrolment:read"))
) -> dict[str, Any]:
    return await _enrolment(pool, enrolment_id, caller)


@router.get(
    "/members/{member_id}/coverage",
    tags=["enrolment"],
    summary="A member's standing as mutual aid knows it, and their cover",
)
async def member_coverage(
    member_id: str, pool: Pool, caller: Caller = Depends(require_scope("enrolment:read"))
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        known = await Members(conn).get(member_id)
        if known is None:
            raise NotFound("member_id", "not a member known to mutual aid")
        cover = await Enrolments(conn).coverages_of(member_id)
    visible = [
        x for x in cover if caller.organisations is None or x.unit_id in caller.organisations
    ]
    return {
        "member_id": member_id,
        "union_id": known.union_id,
        "active_periods": [
            {"starts_on": p.starts_on, "ends_on": p.ends_on} for p in known.standing.periods
        ],
        "coverages": [
            {
                "enrolment_id": x.enrolment_id,
                "unit_id": x.unit_id,
                "scheme_year": x.scheme_year,
                "plan_id": x.plan_id,
                **coverage_view(x.coverage),
            }
            for x in visible
        ],
    }


@router.post(
    "/enrolments/{enrolment_id}/contributions",
    status_code=201,
    tags=["contributions"],
    summary="Record a unit's contribution (amount, payer, receipt)",
)
async def record_contribution(
    enrolment_id: str,
    cmd: c.RecordContribution,
    request: Request,
    uow: Uow,
    ctx: Ctx,
    pool: Pool,
    caller: Caller = Depends(require_scope("contributions:write")),
) -> dict[str, Any]:
    if caller.organisations is not None:
        await _enrolment(pool, enrolment_id, caller)
    with api_fields():
        enrolment = await handlers.receive_contribution(uow, ctx, enrolment_id, cmd)
    wake_payouts(request)  # claims waiting for funds may be payable now
    return enrolment_view(enrolment)


# Claims ----------------------------------------------------------------------------------------


async def claim_answer(pool: asyncpg.Pool, claim_id: str, caller: Caller) -> dict[str, Any]:
    """The claim as it stands now, with its payment and any backstop request covering it."""
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),  # one snapshot
    ):
        claims = Claims(conn)
        claim = await claims.get(claim_id)
        caller.ensure_organisation(claim.intake.unit_id, field="claim_id")
        return claim_view(
            claim,
            vias=claims.vias[claim_id],
            payment=await Payments(conn).of_claim(claim_id),
            backstop_requests=await BackstopRequests(conn).for_claim(claim_id),
        )


async def _may_act_on(pool: asyncpg.Pool, claim_id: str, caller: Caller) -> None:
    if caller.organisations is not None:
        await claim_answer(pool, claim_id, caller)


@router.post(
    "/claims",
    status_code=201,
    tags=["claims"],
    summary="Submit a claim; the automatic checks run at once",
)
async def submit_claim(
    cmd: c.SubmitClaim,
    uow: Uow,
    ctx: Ctx,
    pool: Pool,
    caller: Caller = Depends(require_scope("claims:submit")),
) -> dict[str, Any]:
    caller.ensure_organisation(cmd.unit_id, field="unit_id")
    submitter = Submitter(kind=cmd.submitted_by.kind, id=cmd.submitted_by.id)
    with api_fields():
        intake = cmd.to_intake(submitter, ctx.clock.today())
        claim = await handlers.submit_claim(uow, ctx, intake, caller.app_id)
    return await claim_answer(pool, claim.claim_id, caller)


@router.post(
    "/claims/{claim_id}/resubmit",
    tags=["claims"],
    summary="Hand a returned claim back with the documents asked for",
)
async def resubmit_claim(
    claim_id: str,
    cmd: c.Resubmit,
    uow: Uow,
    ctx: Ctx,
    pool: Pool,
    caller: Caller = Depends(require_scope("claims:submit")),
) -> dict[str, Any]:
    await _may_act_on(pool, claim_id, caller)
    with api_fields():
        corrected = None
        if cmd.corrected is not None:
            caller.ensure_organisation(cmd.corrected.unit_id, field="corrected.unit_id")
            async with pool.acquire() as conn:
                first = (await Claims(conn).get(claim_id)).intake
            corrected = cmd.corrected.to_intake(
                first.submitted_by, ctx.clock.today(), prefix=("corrected",)
            )
        await handlers.resubmit_claim(
            uow, ctx, claim_id, cmd.by, cmd.documents, corrected, caller.app_id
        )
    return await claim_answer(pool, claim_id, caller)


@router.get("/claims", tags=["claims"])
async def list_claims(
    pool: Pool,
    state: ClaimState | None = None,
    unit_id: str | None = None,
    member_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    caller: Caller = Depends(require_scope("claims:read")),
) -> list[dict[str, Any]]:
    units: set[str] | None = {unit_id} if unit_id else None
    if caller.organisations is not None:
        units = set(caller.organisations) & units if units else set(caller.organisations)
    async with pool.acquire() as conn:
        ids = await Claims(conn).search(
            state=state.value if state else None,
            unit_ids=units,
            member_id=member_id,
            limit=limit,
            offset=offset,
        )
    return [await claim_answer(pool, i, caller) for i in ids]


@router.get("/claims/{claim_id}", tags=["claims"], summary="A claim's state, explanation, steps")
async def get_claim(
    claim_id: str, pool: Pool, caller: Caller = Depends(require_scope("claims:read"))
) -> dict[str, Any]:
    return await claim_answer(pool, claim_id, caller)


@router.post("/claims/{claim_id}/approve", tags=["review"], summary="Approve the computed benefit")
async def approve_claim(
    claim_id: str,
    cmd: c.Officer,
    request: Request,
    uow: Uow,
    ctx: Ctx,
    pool: Pool,
    caller: Caller = Depends(require_scope("claims:review")),
) -> dict[str, Any]:
    await _may_act_on(pool, claim_id, caller)
    with api_fields():
        await handlers.approve_claim(uow, ctx, claim_id, cmd.officer, caller.app_id)
    wake_payouts(request)
    return await claim_answer(pool, claim_id, caller)


@router.post(
    "/claims/{claim_id}/adjust",
    tags=["review"],
    summary="Approve a lower amount than computed, with a reason",
)
async def adjust_claim(
    claim_id: str,
    cmd: c.Adjust,
    request: Request,
    uow: Uow,
    ctx: Ctx,
    pool: Pool,
    caller: Caller = Depends(require_scope("claims:review")),
) -> dict[str, Any]:
    await _may_act_on(pool, claim_id, caller)
    with api_fields():
        await handlers.approve_claim(
            uow, ctx, claim_id, cmd.officer, caller.app_id, (cmd.amount_fen, cmd.reason)
        )
    wake_payouts(request)
    return await claim_answer(pool, claim_id, caller)


@router.post("/claims/{claim_id}/reject", tags=["review"], summary="Reject with a reason code")
async def reject_claim(
    claim_id: str,
    cmd: c.Reject,
    uow: Uow,
    ctx: Ctx,
    pool: Pool,
    caller: Caller = Depends(require_scope("claims:review")),
) -> dict[str, Any]:
    await _may_act_on(pool, claim_id, caller)
    await handlers.reject_claim(
        uow, ctx, claim_id, cmd.officer, cmd.reason_code, cmd.reason_text, caller.app_id
    )
    return await claim_answer(pool, claim_id, caller)


@router.post("/claims/{claim_id}/return", tags=["review"], summary="Return for more documents")
async def return_claim(
    claim_id: str,
    cmd: c.ReturnForDocuments,
    uow: Uow,
    ctx: Ctx,
    pool: Pool,
    caller: Caller = Depends(require_scope("claims:review")),
) -> dict[str, Any]:
    await _may_act_on(pool, claim_id, caller)
    await handlers.return_claim(
        uow, ctx, claim_id, cmd.officer, cmd.missing_documents, cmd.note, caller.app_id
    )
    return await claim_answer(pool, claim_id, caller)
