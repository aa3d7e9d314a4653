"""HTTP API of the notifications service: thin routes over the handlers.

Every route here takes signed calls (docs/departments.md) with a scope: ``bindings:write`` for
the official account's web app (OAuth binding, a member's preferences), ``notifications:read``
for looking, ``notifications:manage`` for broadcasts. WeChat's callback (``api_wechat``) is
signed WeChat's way instead. Openids are personal data: no answer carries one unmasked. Error
codes: docs/errors/notifications.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.notifications import handlers, queue
from services.notifications.broadcast import BroadcastStatus
from services.notifications.broadcast_repository import Broadcasts, BroadcastSearch
from services.notifications.commands import (
    BindWeChat,
    CancelBroadcast,
    ChoosePreferences,
    StartBroadcast,
    Unbind,
)
from services.notifications.delivery_reports import ReportWriter
from services.notifications.domain import DeliveryStatus, Preferences
from services.notifications.gate import SendGate
from services.notifications.live_rules import LiveRules
from services.notifications.repository import Bindings, Deliveries, DeliverySearch, PreferenceStore
from services.notifications.rules import Category
from services.notifications.unit_of_work import NotificationsUnitOfWork
from services.notifications.views import (
    BindingPage,
    BindingView,
    BroadcastPage,
    BroadcastView,
    DeliveryPage,
    DeliveryView,
    Pace,
    PreferencesView,
    RulesView,
    SendingView,
    broadcast_view,
    preferences_view,
    rules_view,
)
from shared.auth import Caller, require_scope
from shared.clock import Clock
from shared.errors import NotFound
from shared.http import router as new_router
from shared.inputs import IsoDateTime, Limit, Offset, RowId
from shared.routes import Pool, action, unit_of_work

router = new_router()
Uow = Annotated[NotificationsUnitOfWork, Depends(unit_of_work)]


@dataclass
class Wiring:
    """What this app's routes read besides the database: the rules in force, the clock, and
    the shared sending pace."""

    rules: LiveRules
    clock: Clock
    gate: Callable[[], SendGate]
    reports: ReportWriter
    callback_token: str
    send_rate: float

    async def pace(self) -> Pace:
        pause = await self.gate().current_pause()
        return Pace(self.clock.now(), self.send_rate, pause.until if pause else None)


async def _wiring(request: Request) -> Wiring:
    wiring: Wiring = request.app.state.wiring
    return wiring


Wired = Annotated[Wiring, Depends(_wiring)]
BINDINGS = [Depends(require_scope("bindings:write"))]
READ = [Depends(require_scope("notifications:read"))]
MANAGE = [Depends(require_scope("notifications:manage"))]

MEMBER_EXAMPLE = "m-5f0c2a9e8b7d4c3aa1e2f3b4c5d6e7f8"
MemberId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The member's id in membership.",
        examples=[MEMBER_EXAMPLE],
    ),
]
BroadcastId = Annotated[UUID, Path(description="The broadcast's id.")]
Since = Annotated[IsoDateTime | None, Query(description="From this moment on (inclusive).")]
Until = Annotated[IsoDateTime | None, Query(description="Before this moment (exclusive).")]


def _text(max_length: int, description: str, example: str) -> Any:
    return Query(min_length=1, max_length=max_length, description=description, examples=[example])


def _next_offset(offset: int, limit: int, found: int) -> int | None:
    return offset + limit if found == limit else None


async def _binding(pool: Any, member_id: str) -> BindingView:
    async with pool.acquire() as conn:
        binding = await Bindings(conn).get(member_id)
    if binding is None:
        raise NotFound("member_id", "no_binding", f"member {member_id} has no WeChat binding")
    return BindingView.model_validate(binding)


async def _preferences(pool: Any, member_id: str) -> Preferences:
    async with pool.acquire() as conn:
        return await PreferenceStore(conn).get(member_id) or Preferences(member_id)


async def _broadcasts(pool: Any, found: list[Any], pace: Pace) -> list[BroadcastView]:
    async with pool.acquire() as conn:
        counts = await Broadcasts(conn).counts([b["id"] for b in found])
    return [broadcast_view(b, counts[b["id"]], pace) for b in found]


async def _broadcast(pool: Any, broadcast_id: UUID, pace: Pace) -> BroadcastView:
    async with pool.acquire() as conn:
        b = await Broadcasts(conn).get(broadcast_id)
    if b is None:
        raise NotFound("broadcast_id", "unknown_broadcast", f"no broadcast {broadcast_id}")
    return (await _broadcasts(pool, [b], pace))[0]


BIND = (
    "Called by the official account's web app once its OAuth login knows which member holds\n"
    "the openid. Messages that were waiting for this member's binding go at once. Binding again\n"
    "replaces the openid; an openid bound to another member moves to this one (the latest login"
    " is\n"
    "the latest word on who holds it). Idempotent: the same call again changes nothing.\n"
    "\n"
    "The member must be known here: notifications learns members from membership's events,"
    " within\n"
    "seconds of the join. An id it has not heard of is refused with 404 `unknown_member` and\n"
    "nothing is stored: retry a few seconds later (a member who has just joined), or check the id."
)
PREFERENCES = (
    "Called by the official account's web app when the member changes their choices. The list\n"
    "replaces the previous one (idempotent); an empty list turns every category back on.\n"
    "Mandatory messages (e.g. a decision on their claim) are sent regardless.\n"
    "\n"
    "The member must be known here: notifications learns members from membership's events,"
    " within\n"
    "seconds of the join. An id it has not heard of is refused with 404 `unknown_member` and\n"
    "nothing is stored: retry a few seconds later, or check the id."
)


def actions(w: Wiring) -> APIRouter:
    """The actions on one thing, each answering the thing as it is now. Declared per app: a
    member's preferences are answered with this app's rules in force, and ``action``'s answer
    sees only the pool."""
    actions = new_router()

    async def binding(pool: Any, member_id: str, _: Caller) -> BindingView:
        return await _binding(pool, member_id)

    async def preferences(pool: Any, member_id: str, _: Caller) -> PreferencesView:
        return preferences_view(await _preferences(pool, member_id), w.rules.current())

    def member_action(what: str, answer: Any, response_model: Any, **declared: Any) -> None:
        """A PUT on something of the member's, made by the official account's web app."""
        action(
            actions,
            f"/members/{{member_id}}/{what}",
            method="PUT",
            uow=Uow,
            subject=MemberId,
            scope="bindings:write",
            answer=answer,
            response_model=response_model,
            tags=["members"],
            **declared,
        )

    member_action(
        "binding",
        binding,
        BindingView,
        command=BindWeChat,
        handler=handlers.bind,
        summary="Bind a member's WeChat openid",
        description=BIND,
    )
    member_action(
        "preferences",
        preferences,
        PreferencesView,
        name="put_preferences",
        command=ChoosePreferences,
        handler=handlers.choose_preferences,
        summary="Set the categories a member opts out of",
        description=PREFERENCES,
    )
    return actions


# ---------------------------------------------------------------- bindings and preferences


@router.get(
    "/members/{member_id}/binding",
    tags=["members"],
    dependencies=READ,
    summary="A member's WeChat binding",
)
async def get_binding(member_id: MemberId, pool: Pool) -> BindingView:
    """The member's openid (masked) and whether WeChat can reach them. 404 `no_binding` when the
    member has not bound WeChat (or unbound)."""
    return await _binding(pool, member_id)


@router.delete(
    "/members/{member_id}/binding",
    status_code=204,
    tags=["members"],
    dependencies=BINDINGS,
    summary="Remove a member's WeChat binding",
)
async def unbind(member_id: MemberId, uow: Uow) -> Response:
    """The member no longer gets WeChat messages until they bind again; messages caused later
    are recorded undeliverable (`no_binding`). 404 `no_binding` when there is none to remove."""
    await handlers.unbind(Unbind().about(member_id=member_id), uow)
    return Response(status_code=204)


@router.get("/bindings", tags=["members"], dependencies=READ, summary="Find WeChat bindings")
async def list_bindings(
    pool: Pool,
    member_id: Annotated[str | None, _text(64, "Only this member.", MEMBER_EXAMPLE)] = None,
    openid: Annotated[
        str | None, _text(128, "Only the member bound to this openid.", "oK3Ws5Ns2dGxN0u3X")
    ] = None,
    reachable: Annotated[
        bool | None,
        Query(description="true: WeChat can reach them; false: the channel is closed."),
    ] = None,
    bound_since: Since = None,
    bound_until: Until = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> BindingPage:
    """Bindings in member-id order, each with its openid masked, for staff looking at who can be
    reached on WeChat (e.g. `reachable=false`: members who unfollowed or blocked the account).
    Page with `offset` and `limit`; `next_offset` is null on the last page."""
    async with pool.acquire() as conn:
        found = await Bindings(conn).find(
            member_id=member_id,
            openid=openid,
            reachable=reachable,
            bound_since=bound_since,
            bound_until=bound_until,
            offset=offset,
            limit=limit,
        )
    return BindingPage(
        items=[BindingView.model_validate(b) for b in found],
        next_offset=_next_offset(offset, limit, len(found)),
    )


@router.get(
    "/members/{member_id}/preferences",
    tags=["members"],
    dependencies=READ,
    summary="What a member chose to hear about",
)
async def get_preferences(member_id: MemberId, pool: Pool, w: Wired) -> PreferencesView:
    """Every category is on until the member opts out; `always_sent` lists the mandatory rules
    that still reach them in a category they opted out of."""
    return preferences_view(await _preferences(pool, member_id), w.rules.current())


# ---------------------------------------------------------------- deliveries


@router.get(
    "/deliveries", tags=["deliveries"], dependencies=READ, summary="Find messages and their fate"
)
async def list_deliveries(
    pool: Pool,
    member_id: Annotated[str | None, _text(64, "Only to this member.", MEMBER_EXAMPLE)] = None,
    status: DeliveryStatus | None = None,
    broadcast_id: Annotated[UUID | None, Query(description="Only of this broadcast.")] = None,
    event_type: Annotated[
        str | None,
        _text(200, "Only caused by this event type.", "gonghui.membership.member.joined"),
    ] = None,
    template_id: Annotated[
        str | None, _text(128, "Only of this WeChat template.", "gh-tpl-member-welcome")
    ] = None,
    rule: Annotated[str | None, _text(64, "Only sent by this rule.", "member_welcome")] = None,
    category: Category | None = None,
    created_since: Since = None,
    created_until: Until = None,
    after_id: Annotated[
        Offset, Query(description="Deliveries after this id: the previous page's next_after_id.")
    ] = 0,
    limit: Limit = 100,
) -> DeliveryPage:
    """One delivery per message and member, oldest first, from the event that caused it to
    WeChat's delivery report, openids masked. Filters combine. New deliveries keep arriving, so
    pages go by id: pass `next_after_id` as `after_id` (null on the last page)."""
    search = DeliverySearch(
        member_id=member_id,
        status=status,
        broadcast_id=broadcast_id,
        event_type=event_type,
        template_id=template_id,
        rule=rule,
        category=category,
        created_since=created_since,
        created_until=created_until,
    )
    async with pool.acquire() as conn:
        rows = await Deliveries(conn).find(search, after_id=after_id, limit=limit)
    items = [DeliveryView.model_validate(r) for r in rows]
    return DeliveryPage(items=items, next_after_id=items[-1].id if len(items) == limit else None)


@router.get(
    "/deliveries/{delivery_id}", tags=["deliveries"], dependencies=READ, summary="One delivery"
)
async def get_delivery(
    delivery_id: Annotated[RowId, Path(description="The delivery's id.")], pool: Pool
) -> DeliveryView:
    """A message to one member and where it stands. 404 `unknown_delivery` if there is none."""
    async with pool.acquire() as conn:
        row = await Deliveries(conn).get(delivery_id)
    if row is None:
        raise NotFound("delivery_id", "unknown_delivery", f"no delivery {delivery_id}")
    return DeliveryView.model_validate(row)


# ---------------------------------------------------------------- broadcasts


@router.post(
    "/broadcasts",
    status_code=202,
    tags=["broadcasts"],
    dependencies=MANAGE,
    summary="Send an announcement to a segment of members",
)
async def create_broadcast(body: StartBroadcast, uow: Uow, pool: Pool, w: Wired) -> BroadcastView:
    """Accepted at once (202) and fanned out in the background into one message per active
    member of the segment who bound WeChat and did not opt out of announcements (unless
    `mandatory`); they go behind messages caused by events, at the account's shared pace. Poll
    GET /broadcasts/{broadcast_id} for progress and the expected finish. Each call starts a new
    broadcast: not idempotent.

    Refusals (422): `unknown_template` (no such template in rules.yaml, see GET /rules),
    `missing_template_keys` / `unknown_template_keys` (`data` must fill exactly the template's
    keys), `invalid_pattern` and `unknown_placeholder` (text may only say {member_name} and
    {union_name})."""
    broadcast_id = await handlers.start_broadcast(body, uow)
    return await _broadcast(pool, broadcast_id, await w.pace())


@router.get("/broadcasts", tags=["broadcasts"], dependencies=READ, summary="Find broadcasts")
async def list_broadcasts(
    pool: Pool,
    w: Wired,
    status: BroadcastStatus | None = None,
    template: Annotated[str | None, _text(64, "Only from this template.", "announcement")] = None,
    created_since: Since = None,
    created_until: Until = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> BroadcastPage:
    """Broadcasts newest first, each with its progress. Page with `offset` and `limit`;
    `next_offset` is null on the last page."""
    search = BroadcastSearch(status, template, created_since, created_until)
    async with pool.acquire() as conn:
        found = await Broadcasts(conn).find(search, offset, limit)
    items = await _broadcasts(pool, found, await w.pace())
    return BroadcastPage(items=items, next_offset=_next_offset(offset, limit, len(found)))


@router.get(
    "/broadcasts/{broadcast_id}",
    tags=["broadcasts"],
    dependencies=READ,
    summary="A broadcast's progress",
)
async def get_broadcast(broadcast_id: BroadcastId, pool: Pool, w: Wired) -> BroadcastView:
    """How many were queued, sent, failed and skipped (and why), and when the rest will have
    gone at the shared pace. 404 `unknown_broadcast` if there is none."""
    return await _broadcast(pool, broadcast_id, await w.pace())


@router.post(
    "/broadcasts/{broadcast_id}/cancel",
    tags=["broadcasts"],
    dependencies=MANAGE,
    summary="Cancel a broadcast",
)
async def cancel_broadcast(
    broadcast_id: BroadcastId, uow: Uow, pool: Pool, w: Wired
) -> BroadcastView:
    """Stops the fan-out and withdraws every message not yet sent; those a sender already holds
    still go. 409 `broadcast_closed` if it has completed or was cancelled already (so a repeated
    cancel is harmless); 404 `unknown_broadcast` if there is none."""
    # Written out, not with shared.routes.action: the answer needs this app's sending pace
    # (its wiring), and an action's answer sees only the pool, the ids and the caller.
    await handlers.cancel_broadcast(CancelBroadcast().about(broadcast_id=str(broadcast_id)), uow)
    return await _broadcast(pool, broadcast_id, await w.pace())


# ---------------------------------------------------------------- configuration and state


@router.get(
    "/rules", tags=["configuration"], dependencies=READ, summary="The notification rules in force"
)
async def get_rules(w: Wired) -> RulesView:
    """rules.yaml as the service runs it: which event sends which template to whom, the templates
    broadcasts may use, and the last edit that was refused (the rules shown stay in force)."""
    return rules_view(w.rules)


@router.get(
    "/sending",
    tags=["configuration"],
    dependencies=READ,
    summary="The shared sending pace, its pause, and what is waiting",
)
async def sending(pool: Pool, w: Wired) -> SendingView:
    """All sender workers share one pace (below the account's quota) and one pause, set when
    WeChat answers a quota or configuration errcode; `pending` and `sending` count messages that
    have yet to go."""
    pause = await w.gate().current_pause()
    counts = await queue.waiting(pool)
    return SendingView(
        rate_per_second=w.send_rate,
        paused_until=pause.until if pause else None,
        pause_errcode=pause.errcode if pause else None,
        pause_reason=pause.reason if pause else None,
        pending=counts.get("pending", 0),
        sending=counts.get("sending", 0),
    )
