"""HTTP routes of the membership service for organisations and members: validate, call a handler,
shape the answer. Roster sync is in :mod:`services.membership.api_rosters`; union funds are a
service of their own (``services.union_funds``), which learns unions from membership's events.

ID numbers and mobile numbers are masked in every answer unless the caller holds the
``members:read_personal`` scope. Every error is problem+json with a code listed in
``docs/errors/membership.md``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Path, Query

from services.membership import commands as c
from services.membership import handlers
from services.membership.domain import Category, OrgKind, Status, roll_up
from services.membership.identity import (
    card_number_problem,
    normalise_card_number,
    normalise_credit_code,
    normalise_id_number,
)
from services.membership.repository import Members, Organisations
from services.membership.unit_of_work import MembershipUnitOfWork
from services.membership.views import (
    PERSONAL,
    CardHolder,
    CorrectedMember,
    MemberPage,
    MemberView,
    OrganisationPage,
    OrganisationView,
    Standing,
    Statistics,
    Totals,
    member_fields,
    member_view,
    organisation_view,
)
from shared.auth import Caller, require_scope
from shared.errors import DomainError, NotFound
from shared.http import router as shared_router
from shared.inputs import IsoDate, Limit, Offset
from shared.routes import Pool, action, unit_of_work

router = shared_router()
# The longest period statistics are asked for: the federation's reports look back a few years;
# a longer span is a typo, and would count the whole city's history for nothing.
STATISTICS_SPAN_YEARS = 20


Uow = Annotated[MembershipUnitOfWork, Depends(unit_of_work)]
# Ids the service gives out are far shorter; a longer one cannot exist and is refused (422).
OrgId = Annotated[
    str, Path(max_length=64, description="The organisation's id", examples=["bozhou-pharma"])
]
MemberId = Annotated[
    str,
    Path(
        max_length=64,
        description="The member's id (not the ID number)",
        examples=["m-0190a5e2c7d14c6b9d2f0a1b2c3d4e5f"],
    ),
]


def date_range(start: date, end: date, *, end_field: str, years: int) -> None:
    """Refuse a period that ends before it starts or spans more than ``years`` years."""
    if end < start:
        raise DomainError(end_field, "range_reversed", "must not be before the period's start")
    try:
        latest = start.replace(year=start.year + years)
    except ValueError:  # 29 February, and the year ``years`` on is not a leap year
        latest = start.replace(year=start.year + years, day=28)
    if end > latest:
        message = f"the period may span at most {years} years"
        raise DomainError(end_field, "range_too_long", message)


# Organisations ---------------------------------------------------------------------------------


@router.post(
    "/organisations",
    status_code=201,
    tags=["organisations"],
    response_model=OrganisationView,
    summary="Establish a federation or a grassroots union",
)
async def establish(
    cmd: c.EstablishOrganisation,
    uow: Uow,
    pool: Pool,
    caller: Caller = Depends(require_scope("organisations:write")),
) -> OrganisationView:
    """Places a new organisation in the city's tree: the city federation at the top, county
    federations under it, grassroots unions (enterprise, public institution, social
    organisation, platform company, township/village) under a federation. Federation staff call
    it when a union is founded.

    A grassroots union records its `founded_on` and, except a township/village union, its
    `employer` with the unified social credit code; the union funds service matches the tax
    bureau's remittances to the union by that code.

    Errors: `placement_not_allowed` (this kind cannot sit under that parent), `parent_required`,
    `employer_required` / `employer_not_allowed`, `founded_on_required`, the credit code's
    `wrong_length` / `invalid_character` / `check_character_mismatch` (422);
    `organisation_not_found` for `parent_id` (404); `organisation_exists` (the `id` is taken),
    `credit_code_taken` (another standing union has this employer; `existing` names it),
    `parent_dissolved` (409). Not idempotent without an `id`: give your own `id` so a retry
    answers 409 `organisation_exists` instead of creating a second one."""
    org_id = await handlers.establish_organisation(cmd, uow)
    return await organisation_answer(pool, org_id, caller)


@router.get(
    "/organisations",
    tags=["organisations"],
    response_model=OrganisationPage,
    summary="List and search organisations",
)
async def list_organisations(
    pool: Pool,
    _: Caller = Depends(require_scope("organisations:read")),
    parent_id: Annotated[
        str | None, Query(max_length=64, description="Only the direct children of this one")
    ] = None,
    under: Annotated[
        str | None,
        Query(max_length=64, description="Only this one's subtree (itself excluded)"),
    ] = None,
    kind: Annotated[OrgKind | None, Query()] = None,
    name: Annotated[
        str | None,
        Query(max_length=100, description="Part of the name, any case", examples=["药业"]),
    ] = None,
    credit_code: Annotated[
        str | None,
        Query(max_length=18, description="The employer's unified social credit code, exactly"),
    ] = None,
    dissolved: Annotated[
        bool | None,
        Query(description="true: only dissolved ones; false: only standing ones; omit: both"),
    ] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> OrganisationPage:
    """Organisations matching every filter given, by id, a page at a time: `total` counts them
    all, `next_offset` is the next page's `offset` (None on the last page). Federation staff use
    it to find a union by name or by its employer's credit code, and to walk the tree
    (`parent_id` for one level, `under` for a whole county)."""
    async with pool.acquire() as conn:
        total, rows = await Organisations(conn).search(
            parent_id=parent_id,
            under=under,
            kind=kind,
            name=name,
            credit_code=normalise_credit_code(credit_code) if credit_code is not None else None,
            dissolved=dissolved,
            offset=offset,
            limit=limit,
        )
    following = offset + len(rows)
    return OrganisationPage(
        items=[organisation_view(o) for o in rows],
        total=total,
        offset=offset,
        limit=limit,
        next_offset=following if following < total else None,
    )


@router.get(
    "/organisations/{org_id}",
    tags=["organisations"],
    response_model=OrganisationView,
    summary="One organisation",
)
async def get_organisation(
    org_id: OrgId, pool: Pool, caller: Caller = Depends(require_scope("organisations:read"))
) -> OrganisationView:
    """The organisation, dissolved or not, with its place in the tree (`path`) and employer.
    404 `organisation_not_found` for an id that does not exist."""
    return await organisation_answer(pool, org_id, caller)


async def organisation_answer(pool: asyncpg.Pool, org_id: str, _: Caller) -> OrganisationView:
    async with pool.acquire() as conn:
        return organisation_view(await Organisations(conn).get(org_id))


def _organisation_action(
    method: str, path: str, command: type[c.Command], handler: Any, summary: str, doc: str
) -> None:
    action(
        router,
        f"/organisations/{{org_id}}{path}",
        method=method,
        command=command,
        handler=handler,
        uow=Uow,
        subject=OrgId,
        scope="organisations:write",
        answer=organisation_answer,
        response_model=OrganisationView,
        tags=["organisations"],
        summary=summary,
        description=doc
        + " Answers the organisation as it is now. 404 `organisation_not_found`; 409"
        " `organisation_dissolved` for a dissolved one.",
    )


_organisation_action(
    "PATCH",
    "",
    c.RenameOrganisation,
    handlers.rename_organisation,
    "Rename an organisation",
    "Gives the organisation a new name (an OrganisationChanged event follows). Renaming to the"
    " same name changes nothing, so a retry is harmless.",
)
_organisation_action(
    "POST",
    "/move",
    c.MoveOrganisation,
    handlers.move_organisation,
    "Place an organisation under another parent",
    "Moves the organisation, with its whole subtree, under another federation (after a county"
    " reorganisation, say). Moving under its present parent changes nothing. 422"
    " `move_under_itself`, `move_under_descendant`, `placement_not_allowed`; 404"
    " `organisation_not_found` for `parent_id`; 409 `parent_dissolved`.",
)
_organisation_action(
    "POST",
    "/dissolve",
    c.DissolveOrganisation,
    handlers.dissolve_organisation,
    "Dissolve an organisation",
    "Records that the organisation was dissolved on `dissolved_on` (not in the future, not"
    " before its founding: 422 `date_in_future`, `before_founding`). Every member must have"
    " left or moved (409 `members_remain`) and every child organisation been dissolved or"
    " moved (409 `organisations_remain`). The city federation is never dissolved (422"
    " `city_federation_permanent`).",
)


@router.get(
    "/organisations/{org_id}/statistics",
    tags=["organisations"],
    response_model=Statistics,
    summary="Members and new unions over an organisation's subtree",
)
async def statistics(
    org_id: OrgId,
    pool: Pool,
    start: Annotated[IsoDate, Query(alias="from", description="First day of the period")],
    end: Annotated[IsoDate, Query(alias="to", description="Last day of the period, included")],
    _: Caller = Depends(require_scope("reports:read")),
) -> Statistics:
    """The federation's yearly figures for an organisation and everything below it: active
    members now, by category, plus the members who joined and the grassroots unions founded
    between `from` and `to` (both included).

    Dates are `YYYY-MM-DD`. 422 `range_reversed` when `to` is before `from`, `range_too_long`
    when the period spans more than 20 years (both name `to`); 404 `organisation_not_found`."""
    date_range(start, end, end_field="to", years=STATISTICS_SPAN_YEARS)
    async with pool.acquire() as conn:
        await Organisations(conn).get(org_id)
        tree = await Organisations(conn).tree(org_id)
        counts: dict[str, dict[str, int]] = {
            r["id"]: {
                "new_unions": int(r["founded_on"] is not None and start <= r["founded_on"] <= end)
            }
            for r in tree
        }
        for r in await Members(conn).counts_by_union([t["id"] for t in tree], start, end):
            counts[r["union_id"]].update({k: v for k, v in r.items() if k != "union_id"})
    totals = roll_up(
        [(r["id"], r["parent_id"] if r["id"] != org_id else None) for r in tree], counts
    )
    return Statistics(organisation_id=org_id, start=start, end=end, totals=Totals(**totals[org_id]))


@router.get(
    "/organisations/{org_id}/members",
    tags=["members"],
    response_model=MemberPage,
    summary="A union's members, a page at a time",
)
async def union_roster(
    org_id: OrgId,
    pool: Pool,
    caller: Caller = Depends(require_scope("members:read")),
    status: Annotated[Status | None, Query(description="Only members with this status")] = None,
    category: Annotated[Category | None, Query(description="Only this category")] = None,
    name: Annotated[
        str | None, Query(max_length=50, description="Part of the name", examples=["王"])
    ] = None,
    after: Annotated[
        str | None, Query(max_length=64, description="The previous page's next_after")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MemberPage:
    """The members whose current (or, for those who left, last) union is `org_id`, by member id.
    Pages are keyset-paginated: pass `next_after` as `after` until it is None; a page stays
    stable while members join. ID and mobile numbers are masked unless the caller holds
    `members:read_personal`. A credential limited to some organisations sees only theirs (403
    `organisation_not_allowed`); 404 `organisation_not_found`."""
    caller.ensure_organisation(org_id)
    async with pool.acquire() as conn:
        await Organisations(conn).get(org_id)
        rows = await Members(conn).roster(
            org_id,
            status=status.value if status else None,
            category=category.value if category else None,
            name=name,
            after=after,
            limit=limit,
        )
    items = [member_view(r, caller) for r in rows]
    return MemberPage(items=items, next_after=items[-1].id if len(items) == limit else None)


# Members ---------------------------------------------------------------------------------------


async def _member(pool: asyncpg.Pool, member_id: str, caller: Caller) -> MemberView:
    async with pool.acquire() as conn:
        return member_view(await Members(conn).get(member_id), caller)


@router.post(
    "/members",
    status_code=201,
    tags=["members"],
    response_model=MemberView,
    summary="A person joins a union",
)
async def join(
    cmd: c.JoinUnion, uow: Uow, caller: Caller = Depends(require_scope("members:join"))
) -> MemberView:
    """Records a new member of a grassroots union and issues the member card (the number is in
    the answer and in the MemberJoined event). Called by the online join form, union staff on
    site, and platform companies for their workers. The ID number gives birth date and sex; the
    member must be 16 on `joined_on`.

    Errors (422 unless said): `wrong_length`, `not_digits`, `unknown_area`,
    `invalid_birth_date`, `check_character_mismatch` (id_number); `not_11_digits`,
    `invalid_prefix`, `mobile_required` (mobile); `unknown_category`, `contradicts_id_number`;
    `employer_name_required`; `date_in_future`, `under_minimum_age` (joined_on);
    `not_a_grassroots_union` (union_id); 404 `organisation_not_found`; 409 `union_dissolved`;
    409 `already_a_member` with `existing_member_id`: a person joins once, so a retried join
    answers 409 naming the member it made the first time. A credential limited to some unions
    joins only into them (403 `organisation_not_allowed`)."""
    caller.ensure_organisation(cmd.union_id, field="union_id")
    return member_view(await handlers.join(cmd, uow), caller)  # as written: no second read


@router.get(
    "/members/{member_id}",
    tags=["members"],
    response_model=MemberView,
    summary="One member",
)
async def get_member(
    member_id: MemberId, pool: Pool, caller: Caller = Depends(require_scope("members:read"))
) -> MemberView:
    """The member with their status timeline and current card; ID and mobile numbers masked
    unless the caller holds `members:read_personal`. 404 `member_not_found`."""
    return await _member(pool, member_id, caller)


@router.get(
    "/members/{member_id}/standing",
    tags=["members"],
    response_model=Standing,
    summary="Was this person a member on a given day, and of which union",
)
async def standing(
    member_id: MemberId,
    pool: Pool,
    on: Annotated[IsoDate, Query(description="The day asked about, YYYY-MM-DD")],
    _: Caller = Depends(require_scope("members:read")),
) -> Standing:
    """For mutual aid, training and benefits that depend on membership on a date: `member` (active
    or suspended), `active`, the status and the union that day. A change dated D holds from D
    on. 404 `member_not_found`; 422 for a date that is not ISO `YYYY-MM-DD` in 1900-2199."""
    async with pool.acquire() as conn:
        member = await Members(conn).get(member_id)
    status = member.status_on(on)
    return Standing(
        member_id=member_id,
        on=on,
        member=status is not None and status is not Status.LEFT,
        active=member.was_active_on(on),
        status=status,
        union_id=member.union_on(on),
    )


@router.get(
    "/cards/{card_number}",
    tags=["members"],
    response_model=CardHolder,
    summary="The member holding a card, and whether the card is valid",
)
async def by_card(
    card_number: Annotated[
        str, Path(max_length=32, description="As printed on the card", examples=["GH00000000132"])
    ],
    pool: Pool,
    caller: Caller = Depends(require_scope("members:read")),
) -> CardHolder:
    """For service points that scan or type a member card. `card_valid` is true only for the
    latest card of an active member: a replaced card still finds its member, but is not valid.
    422 `invalid_format`, `not_digits`, `check_character_mismatch` for a number that cannot be a
    card (a typo); 404 `card_not_found`."""
    number = normalise_card_number(card_number)
    problem = card_number_problem(number)
    if problem:
        raise DomainError("card_number", *problem)
    async with pool.acquire() as conn:
        member_id = await Members(conn).id_of(card_number=number)
        if member_id is None:
            raise NotFound("card_number", "card_not_found", "no member has this card")
        member = await Members(conn).get(member_id)
    return CardHolder(**member_fields(member, caller), card_valid=member.card_is_valid(number))


@router.post(
    "/members/lookup",
    tags=["members"],
    response_model=MemberView,
    summary="Find a member by resident ID number",
)
async def by_id_number(
    body: c.IdNumberLookup, pool: Pool, caller: Caller = Depends(require_scope(PERSONAL))
) -> MemberView:
    """The ID number travels in the body so it never lands in an access log. Needs
    `members:read_personal`, so the answer is unmasked. Changes nothing; 404
    `member_not_found` when nobody has this number."""
    number = normalise_id_number(body.id_number)
    async with pool.acquire() as conn:
        member_id = await Members(conn).id_of(id_number=number)
    if member_id is None:
        raise NotFound("id_number", "member_not_found", "no member has this ID number")
    return await _member(pool, member_id, caller)


@router.patch(
    "/members/{member_id}",
    tags=["members"],
    response_model=CorrectedMember,
    summary="Correct a member's details",
)
async def correct(
    member_id: MemberId,
    cmd: c.CorrectDetails,
    uow: Uow,
    pool: Pool,
    caller: Caller = Depends(require_scope("members:write")),
) -> CorrectedMember:
    """Corrects the name, mobile, categories or employer (fields left out stay as they are);
    `changed_fields` lists what changed, so a retry answers with an empty list. The ID number
    never changes: a wrong one means a wrong person. Errors as for joining (422); 404
    `member_not_found`."""
    changed = await handlers.correct_details(cmd.about(member_id=member_id), uow)
    member = await _member(pool, member_id, caller)
    return CorrectedMember(**member.model_dump(), changed_fields=changed)


def _member_action(
    path: str, command: type[c.Command], handler: Any, summary: str, doc: str
) -> None:
    action(
        router,
        f"/members/{{member_id}}/{path}",
        command=command,
        handler=handler,
        uow=Uow,
        subject=MemberId,
        scope="members:write",
        answer=_member,
        response_model=MemberView,
        tags=["members"],
        name=path,
        summary=summary,
        description=doc
        + " The date may not be in the future, before joining or before the last change (422"
        " `date_in_future`, `before_joining`, `before_last_change`); 409 `member_left` for a"
        " member who left; 404 `member_not_found`. Answers the member as they are now.",
    )


_member_action(
    "transfer",
    c.Transfer,
    handlers.transfer,
    "Move a member to another union",
    "From `transferred_on` the member belongs to `to_union_id`; a suspended member stays"
    " suspended there. 409 `already_in_union` if it is their union already (a retry),"
    " `union_dissolved`; 422 `not_a_grassroots_union`; 404 `organisation_not_found`.",
)
_member_action(
    "suspend",
    c.Suspend,
    handlers.suspend,
    "Suspend a member",
    "The union suspends the member from `suspended_on`, with a reason; a suspended member is"
    " still a member but not active. 409 `already_suspended` (a retry).",
)
_member_action(
    "reinstate",
    c.Reinstate,
    handlers.reinstate,
    "Reinstate a suspended member",
    "The member is active again from `reinstated_on`. 409 `not_suspended` (a retry).",
)
_member_action(
    "leave",
    c.Leave,
    handlers.leave,
    "A member leaves the union",
    "From `left_on` the person is no longer a member; they may join again later (the same"
    " member and card). A retry answers 409 `member_left`.",
)
_member_action(
    "card/reissue",
    c.ReissueCard,
    handlers.reissue_card,
    "Issue a new card for a lost one",
    "A new card number from `issued_on`; the old card stops being valid that day. Not"
    " idempotent: each call issues another card. 422 `before_current_card`.",
)
