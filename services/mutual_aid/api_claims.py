"""HTTP routes for claims: intake by units and members, review by federation officers.

A claim's answer is always the claim as it stands after the call (``ClaimView``): its state, the
benefit's explanation, every step with who took it and through which system, its payment and any
backstop request covering it. A credential limited to organisations acts only on its units'
claims (403 ``organisation_not_allowed``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

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
from services.mutual_aid.claims import ClaimState
from services.mutual_aid.claims_repository import Claims
from services.mutual_aid.commands import api_fields, in_api_terms
from services.mutual_aid.ledger_repository import BackstopRequests, Payments
from services.mutual_aid.unit_of_work import MutualAidUnitOfWork
from services.mutual_aid.views import ClaimView
from shared.auth import Caller, require_scope
from shared.http import router as service_router
from shared.inputs import Command
from shared.routes import Pool, action

router = service_router()
C = TypeVar("C", bound=Command)

_NO_CLAIM = " 404 `unknown_claim`: no such claim."
_REVIEW = (
    " Only a claim `under_review` can be decided: 409 `invalid_transition` otherwise (the"
    " answer carries the claim's `state`). Deciding twice is refused, never applied twice."
)


async def claim_answer(pool: asyncpg.Pool, claim_id: str, caller: Caller) -> ClaimView:
    """The claim as it stands now, with its payment and any backstop request covering it."""
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),  # one snapshot
    ):
        claims = Claims(conn)
        claim = await claims.get(claim_id)
        caller.ensure_organisation(claim.intake.unit_id, field="claim_id")
        return ClaimView.of(
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
    description=(
        "A unit or member hands in a hospital stay: dates, invoices and the expense split"
        " (basic insurance, self-paid in and outside the catalogue; the parts must add up to"
        " the total). The answer is the claim after the automatic checks: `under_review` with"
        " the computed benefit and its explanation, or `auto_rejected` with coded"
        " `rejections` (NOT_COVERED, WAITING_PERIOD, DUPLICATE_INVOICE, INCONSISTENT_AMOUNTS,"
        " LATE_SUBMISSION, OVER_CEILING). Each call submits a new claim: an invoice already"
        " claimed is rejected as DUPLICATE_INVOICE, never paid twice. 422 `unknown_member`,"
        " `in_the_future`, `before_admission`, `duplicate_invoice`, `not_icd10`..."
    ),
)
async def submit_claim(
    cmd: c.SubmitClaim,
    uow: Uow,
    pool: Pool,
    caller: Caller = Depends(require_scope("claims:submit")),
) -> ClaimView:
    caller.ensure_organisation(cmd.unit_id, field="unit_id")
    with api_fields():
        claim = await handlers.submit_claim(cmd.about(via=caller.app_id), uow)
    return await claim_answer(pool, claim.claim_id, caller)


@router.post(
    "/claims/{claim_id}/resubmit",
    tags=["claims"],
    summary="Hand a returned claim back with the documents asked for",
    description=(
        "Only a `returned` claim can be resubmitted (409 `invalid_transition` otherwise); the"
        " checks run again, and the first submission date still counts for the deadline."
        " `corrected` replaces the claim's details (not its member: 422"
        " `cannot_change_on_resubmission`)." + _NO_CLAIM
    ),
)
async def resubmit_claim(
    claim_id: str,
    cmd: c.Resubmit,
    uow: Uow,
    pool: Pool,
    caller: Caller = Depends(require_scope("claims:submit")),
) -> ClaimView:
    # Not a shared.routes.action: may_act(pool, claim_id, caller) sees the claim as it is, not
    # the body, and a credential limited to organisations must not move the claim to a unit
    # outside them through `corrected.unit_id`.
    await _may_act_on(pool, claim_id, caller)
    if cmd.corrected is not None:
        caller.ensure_organisation(cmd.corrected.unit_id, field="corrected.unit_id")
    with api_fields():
        await handlers.resubmit_claim(cmd.about(claim_id=claim_id, via=caller.app_id), uow)
    return await claim_answer(pool, claim_id, caller)


@router.get(
    "/claims",
    tags=["claims"],
    summary="List and search claims (member, unit, state, plan, year, days submitted)",
    description=(
        "Claims in submission order, each as `GET /claims/{id}` shows it. `since`/`until` bound"
        " the day of the first submission (422 `before_since` when `until` is earlier). A"
        " credential limited to organisations sees only its units' claims."
    ),
)
async def list_claims(
    pool: Pool,
    days: Days,
    page: Paged,
    state: Annotated[ClaimState | None, Query()] = None,
    unit_id: IdFilter = None,
    member_id: IdFilter = None,
    plan_id: IdFilter = None,
    scheme_year: Year = None,
    caller: Caller = Depends(require_scope("claims:read")),
) -> list[ClaimView]:
    async with pool.acquire() as conn:
        ids = await Claims(conn).search(
            state=state,
            unit_ids=visible_units(caller, unit_id),
            member_id=member_id,
            plan_id=plan_id,
            scheme_year=scheme_year,
            days=days,
            page=page,
        )
    return [await claim_answer(pool, i, caller) for i in ids]


@router.get(
    "/claims/{claim_id}",
    tags=["claims"],
    summary="A claim's state, explanation and every step",
    description="What the member and unit are shown: state, benefit explanation, history."
    + _NO_CLAIM,
)
async def get_claim(
    claim_id: str, pool: Pool, caller: Caller = Depends(require_scope("claims:read"))
) -> ClaimView:
    return await claim_answer(pool, claim_id, caller)


def _decision(
    verb: str,
    command: type[C],
    handler: Callable[[C, MutualAidUnitOfWork], Awaitable[object]],
    summary: str,
    description: str,
) -> None:
    """``POST /claims/{claim_id}/<verb>``: an officer's decision on one claim under review,
    recorded with the department that took it, answering the claim as it stands."""
    action(
        router,
        f"/claims/{{claim_id}}/{verb}",
        command=command,
        handler=handler,
        uow=Uow,
        scope="claims:review",
        may_act=_may_act_on,
        answer=claim_answer,
        response_model=ClaimView,
        summary=summary,
        description=description + _REVIEW + _NO_CLAIM,
        tags=["review"],
        actor_field="via",
    )


_decision(
    "approve",
    c.Officer,
    in_api_terms(handlers.approve_claim),
    "Approve the computed benefit",
    "The benefit is valued again with the member's year as it is now and the fund owes it"
    " from this moment; the payout worker pays it (or asks finance for the shortfall)."
    " 409 `no_longer_covered`: the member's cover ended before the admission day; reject"
    " the claim as NOT_COVERED.",
)
_decision(
    "adjust",
    c.Adjust,
    in_api_terms(handlers.adjust_claim),
    "Approve a lower amount than computed, with a reason",
    "As approve, for `amount_fen` instead of the computed benefit. 422 `above_computed`"
    " (with `computed_fen`): never more than the rules give.",
)
_decision(
    "reject",
    c.Reject,
    handlers.reject_claim,
    "Reject with a reason code",
    "The member is told the code and text (`ClaimRejected`).",
)
_decision(
    "return",
    c.ReturnForDocuments,
    handlers.return_claim,
    "Return for more documents",
    "The claim goes back to the submitter (`ClaimReturned`) until it is resubmitted. 422"
    " `say_what_is_missing` when neither a document nor a note is given.",
)
