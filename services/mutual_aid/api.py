"""HTTP routes for plans, enrolment and contributions: validate, call a handler, answer.

Every route needs a signed request whose credential holds the scope declared beside it. A
credential limited to organisations acts only for those units. Amounts are integer fen in
``*_fen`` fields (see ``commands``). Claims are in ``api_claims``; the fund, the backstop and
reports in ``api_ledger``. Lists are pages: ``limit`` (1 to 1000) and ``offset``; a page shorter
than ``limit`` is the last.
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Query

from services.mutual_aid import commands as c
from services.mutual_aid import handlers
from services.mutual_aid.api_common import (
    Days,
    IdFilter,
    Paged,
    Uow,
    Year,
    visible_units,
)
from services.mutual_aid.commands import api_fields, in_api_terms
from services.mutual_aid.plans import PlanStatus
from services.mutual_aid.repository import Enrolments, Members, Plans
from services.mutual_aid.views import (
    ActivePeriodView,
    ContributionRecord,
    CoverageView,
    EnrolmentSummary,
    EnrolmentView,
    MemberCoverageView,
    MemberCoverView,
    PlanView,
)
from shared.auth import Caller, require_scope
from shared.errors import NotFound
from shared.http import router as service_router
from shared.inputs import IsoDate
from shared.routes import Pool, action

router = service_router()

_NO_SUCH = "404 `unknown_{0}`: no such {0}."
_ORGANISATIONS = (
    "A credential limited to organisations sees only its own units' {0} (403 "
    "`organisation_not_allowed` when it names another unit)."
)


# Plans -----------------------------------------------------------------------------------------


@router.post(
    "/plans",
    status_code=201,
    tags=["plans"],
    summary="Draft the next plan version of a scheme year",
    description=(
        "Federation staff draft a plan: the contribution a unit pays per member and the benefit"
        " rules (deductible, ratio bands, ceilings, waiting period, submission deadline). A"
        " draft may be incomplete; `POST /plans/{plan_id}/publish` checks every rule. Each call"
        " drafts a new version (`plan-2026-v2`...): not idempotent. Amounts are fen, at most"
        f" {c.MAX_FEN}; ratios 0 to 1 with at most 4 decimals. 409 `drafted_concurrently`:"
        " another version was drafted at the same moment; send it again."
    ),
)
async def draft_plan(
    cmd: c.DraftPlan, uow: Uow, _: Caller = Depends(require_scope("plans:write"))
) -> PlanView:
    with api_fields():
        return PlanView.of(await handlers.draft_plan(cmd, uow))


async def _plan(pool: asyncpg.Pool, plan_id: str, _: Caller) -> PlanView:
    async with pool.acquire() as conn:
        return PlanView.of(await Plans(conn).get(plan_id))


action(
    router,
    "/plans/{plan_id}/publish",
    command=c.PublishPlan,
    handler=in_api_terms(handlers.publish_plan),
    uow=Uow,
    scope="plans:write",
    answer=_plan,
    response_model=PlanView,
    tags=["plans"],
    summary="Publish a draft: every rule is checked, every problem named",
    description=(
        "Publishing makes the plan the one in force from `effective_from` (a later version"
        " supersedes an earlier one from its own start) and announces `PlanPublished`. A plan"
        " that breaks a rule answers 422 with one error per problem, each naming the field as"
        " sent (`rules.bands[1].lower_fen`) with its own code (`bands_not_contiguous`...)."
        " 409 `invalid_transition`: already published. " + _NO_SUCH.format("plan")
    ),
)


@router.get(
    "/plans",
    tags=["plans"],
    summary="List and search plans",
    description="Plans by scheme year and status, oldest year and version first.",
)
async def list_plans(
    pool: Pool,
    page: Paged,
    scheme_year: Year = None,
    status: Annotated[PlanStatus | None, Query()] = None,
    _: Caller = Depends(require_scope("plans:read")),
) -> list[PlanView]:
    async with pool.acquire() as conn:
        found = await Plans(conn).search(scheme_year, status, page=page)
    return [PlanView.of(p) for p in found]


@router.get(
    "/plans/{plan_id}",
    tags=["plans"],
    summary="One plan version with its rules",
    description="The plan as drafted or published, with each band's label. "
    + _NO_SUCH.format("plan"),
)
async def get_plan(
    plan_id: str, pool: Pool, caller: Caller = Depends(require_scope("plans:read"))
) -> PlanView:
    return await _plan(pool, plan_id, caller)


# Enrolment -------------------------------------------------------------------------------------


async def _enrolment(pool: asyncpg.Pool, enrolment_id: str, caller: Caller) -> EnrolmentView:
    async with pool.acquire() as conn:
        enrolment = await Enrolments(conn).get(enrolment_id)
    caller.ensure_organisation(enrolment.unit_id, field="enrolment_id")
    return EnrolmentView.of(enrolment)


@router.post(
    "/enrolments",
    status_code=201,
    tags=["enrolment"],
    summary="Enrol a unit for a plan year with its staff list",
    description=(
        "A unit (or staff for it) enrols for a scheme year with its staff's member ids. Staff"
        " who are active union members on the start day are covered; the others are listed"
        " under `not_covered` with the reason and can be added later with"
        " `POST /enrolments/{id}/staff`. The unit then owes the plan's contribution for every"
        " member covered. 409 `already_enrolled` (with `enrolment_id`): one enrolment per unit"
        " and year, so re-sending is refused, never doubled. 422 `no_published_plan`,"
        " `no_plan_in_force`, `after_plan_end`. " + _ORGANISATIONS.format("enrolments")
    ),
)
async def enrol_unit(
    cmd: c.EnrolUnit,
    uow: Uow,
    caller: Caller = Depends(require_scope("enrolment:write")),
) -> EnrolmentView:
    caller.ensure_organisation(cmd.unit_id, field="unit_id")
    return EnrolmentView.of(await handlers.enrol_unit(cmd, uow))


async def _may_enrol(pool: asyncpg.Pool, enrolment_id: str, caller: Caller) -> None:
    await _enrolment(pool, enrolment_id, caller)


action(
    router,
    "/enrolments/{enrolment_id}/staff",
    command=c.CoverStaff,
    handler=handlers.cover_staff,
    uow=Uow,
    scope="enrolment:write",
    may_act=_may_enrol,
    answer=_enrolment,
    response_model=EnrolmentView,
    tags=["enrolment"],
    summary="Cover more of the unit's staff",
    description=(
        "Adds members to an enrolment from `on` (default today). Safe to repeat: a member"
        " already covered keeps their cover; one who is not an active member is listed under"
        " `not_covered`. 422 `after_plan_end`. " + _NO_SUCH.format("enrolment")
    ),
)


@router.get(
    "/enrolments",
    tags=["enrolment"],
    summary="List and search enrolments (by year, unit, plan)",
    description=(
        "Each enrolment with its counts and money (expected, received, arrears), without the"
        " staff and receipts (`GET /enrolments/{id}` has them). By year, then unit. "
        + _ORGANISATIONS.format("enrolments")
    ),
)
async def list_enrolments(
    pool: Pool,
    page: Paged,
    scheme_year: Year = None,
    unit_id: IdFilter = None,
    plan_id: IdFilter = None,
    caller: Caller = Depends(require_scope("enrolment:read")),
) -> list[EnrolmentSummary]:
    async with pool.acquire() as conn:
        rows = await Enrolments(conn).summaries(
            scheme_year=scheme_year,
            units=visible_units(caller, unit_id),
            plan_id=plan_id,
            page=page,
        )
    return [EnrolmentSummary.of_row(r) for r in rows]


@router.get(
    "/enrolments/{enrolment_id}",
    tags=["enrolment"],
    summary="One enrolment: cover, staff not covered, contributions, arrears",
    description="The whole enrolment. " + _NO_SUCH.format("enrolment"),
)
async def get_enrolment(
    enrolment_id: str, pool: Pool, caller: Caller = Depends(require_scope("enrolment:read"))
) -> EnrolmentView:
    return await _enrolment(pool, enrolment_id, caller)


@router.get(
    "/enrolments/{enrolment_id}/coverages",
    tags=["enrolment"],
    summary="The staff an enrolment covers, a page at a time",
    description=(
        "Covered members by member id, each with the days covered and when their waiting period"
        " started; `covered_on` keeps those covered on that day. " + _NO_SUCH.format("enrolment")
    ),
)
async def list_coverages(
    enrolment_id: str,
    pool: Pool,
    page: Paged,
    covered_on: Annotated[IsoDate | None, Query(description="covered on this day")] = None,
    caller: Caller = Depends(require_scope("enrolment:read")),
) -> list[CoverageView]:
    async with pool.acquire() as conn:
        repo = Enrolments(conn)
        unit_id = await repo.unit_of(enrolment_id)
        caller.ensure_organisation(unit_id, field="enrolment_id")
        found = await repo.covered(enrolment_id, covered_on=covered_on, page=page)
    return [CoverageView.model_validate(x) for x in found]


@router.get(
    "/members/{member_id}/coverage",
    tags=["enrolment"],
    summary="A member's standing as mutual aid knows it, and their cover",
    description=(
        "When the member was an active union member (from membership's events) and every"
        " cover through units the caller may see. 404 `unknown_member`: membership has not"
        " told mutual aid of this member."
    ),
)
async def member_coverage(
    member_id: str, pool: Pool, caller: Caller = Depends(require_scope("enrolment:read"))
) -> MemberCoverageView:
    async with pool.acquire() as conn:
        known = await Members(conn).get(member_id)
        if known is None:
            raise NotFound("member_id", "unknown_member", "not a member known to mutual aid")
        cover = await Enrolments(conn).coverages_of(member_id)
    return MemberCoverageView(
        member_id=member_id,
        union_id=known.union_id,
        active_periods=[ActivePeriodView.model_validate(p) for p in known.standing.periods],
        coverages=[
            MemberCoverView.of_member(x)
            for x in cover
            if caller.organisations is None or x.unit_id in caller.organisations
        ],
    )


# Contributions ---------------------------------------------------------------------------------


action(
    router,
    "/enrolments/{enrolment_id}/contributions",
    command=c.RecordContribution,
    handler=in_api_terms(handlers.receive_contribution),
    uow=Uow,
    scope="contributions:write",
    may_act=_may_enrol,
    answer=_enrolment,
    response_model=EnrolmentView,
    name="record_contribution",
    status_code=201,  # a contribution is recorded
    tags=["contributions"],
    summary="Record a unit's contribution (amount, payer, receipt)",
    description=(
        "Journals money a unit paid into the fund (Dr fund cash, Cr contributions income) and"
        " wakes the payout worker: claims waiting for funds may be paid now. Idempotent by"
        " receipt number: 409 `already_recorded` (with `enrolment_id`) when the receipt is"
        " recorded already, here or for another unit. 422 `in_the_future` for `received_on`. "
        + _NO_SUCH.format("enrolment")
    ),
)


@router.get(
    "/contributions",
    tags=["contributions"],
    summary="Find contributions across enrolments (unit, year, receipt, days received)",
    description=(
        "Contributions in the order they were recorded, each with its enrolment and unit: for"
        " finance reconciling receipts and for units checking what they paid. `since`/`until`"
        " bound the day received (422 `before_since` when `until` is earlier). "
        + _ORGANISATIONS.format("contributions")
    ),
)
async def list_contributions(
    pool: Pool,
    days: Days,
    page: Paged,
    unit_id: IdFilter = None,
    enrolment_id: IdFilter = None,
    scheme_year: Year = None,
    receipt_number: IdFilter = None,
    caller: Caller = Depends(require_scope("enrolment:read")),
) -> list[ContributionRecord]:
    async with pool.acquire() as conn:
        rows = await Enrolments(conn).contributions(
            units=visible_units(caller, unit_id),
            enrolment_id=enrolment_id,
            scheme_year=scheme_year,
            receipt_number=receipt_number,
            days=days,
            page=page,
        )
    return [ContributionRecord.model_validate(dict(r)) for r in rows]
