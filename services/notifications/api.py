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
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Path, Query, Request, Response

from services.notifications import broadcasts, handlers, queue
from services.notifications.broadcast import BroadcastStatus, Segment
from services.notifications.broadcasts import BroadcastSearch, Pace
from services.notifications.commands import BindWeChat, ChoosePreferences, StartBroadcast
from services.notifications.domain import DeliveryStatus
from services.notifications.gate import SendGate
from services.notifications.handlers import NotificationsUnitOfWork
from services.notifications.live_rules import LiveRules
from services.notifications.reports import ReportWriter
from services.notifications.repository import Bindings, Deliveries, DeliverySearch
from services.notifications.rules import Category
from services.notifications.views import (
    BindingPage,
    BindingView,
    BroadcastPage,
    BroadcastView,
    DeliveryPage,
    DeliveryView,
    PreferencesView,
    RulesView,
    SendingView,
    binding_view,
    delivery_view,
    preferences_view,
    rules_view,
)
from shared.auth import require_scope
from shared.errors import DomainError, NotFound
from shared.http import router as new_router
from shared.inputs import IsoDateTime, Limit, Offset, RowId
from shared.runtime import ServiceRuntime

router = new_router()


@dataclass
class Wiring:
    runtime: ServiceRuntime
    rules: LiveRules
    clock: Callable[[], datetime]
    reports: ReportWriter
    callback_token: str
    send_rate: float

    def uow(self) -> NotificationsUnitOfWork:
        return NotificationsUnitOfWork(self.runtime.pool, self.runtime.settings.events_topic)

    def gate(self) -> SendGate:
        return SendGate(self.runtime.pool, self.send_rate, self.clock)

    async def pace(self) -> Pace:
        pause = await self.gate().current_pause()
        return Pace(self.clock(), self.send_rate, pause.until if pause else None)


def _wiring(request: Request) -> Wiring:
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
Since = Annotated[IsoDateTime | None, Query(description="From this moment on (inclusive).")]
Until = Annotated[IsoDateTime | None, Query(description="Before this moment (exclusive).")]


def _text(max_length: int, description: str, example: str) -> Any:
    return Query(min_length=1, max_length=max_length, description=description, examples=[example])


def _next_offset(offset: int, limit: int, found: int) -> int | None:
    return offset + limit if found == limit else None


# ---------------------------------------------------------------- bindings and preferences


@router.put(
    "/members/{member_id}/binding",
    tags=["members"],
    dependencies=BINDINGS,
    summary="Bind a member's WeChat openid",
)
async def bind(member_id: MemberId, body: BindWeChat, w: Wired) -> BindingView:
    """Called by the official account's web app once its OAuth login knows which member holds
    the openid. Messages that were waiting for this member's binding go at once. Binding again
    replaces the openid; an openid bound to another member moves to this one (the latest login is
    the latest word on who holds it). Idempotent: the same call again changes nothing.

    The member must be known here: notifications learns members from membership's events, within
    seconds of the join. An id it has not heard of is refused with 404 `unknown_member` and
    nothing is stored: retry a few seconds later (a member who has just joined), or check the id.
    """
    return binding_view(await handlers.bind(w.uow(), member_id, body.openid, w.clock()))


@router.get(
    "/members/{member_id}/binding",
    tags=["members"],
    dependencies=READ,
    summary="A member's WeChat binding",
)
async def get_binding(member_id: MemberId, w: Wired) -> BindingView:
    """The member's openid (masked) and whether WeChat can reach them. 404 `no_binding` when the
    member has not bound WeChat (or unbound)."""
    return binding_view(await handlers.binding_of(w.uow(), member_id))


@router.delete(
    "/members/{member_id}/binding",
    status_code=204,
    tags=["members"],
    dependencies=BINDINGS,
    summary="Remove a member's WeChat binding",
)
async def unbind(member_id: MemberId, w: Wired) -> Response:
    """The member no longer gets WeChat messages until they bind again; messages caused later
    are recorded undeliverable (`no_binding`). 404 `no_binding` when there is none to remove."""
    await handlers.unbind(w.uow(), member_id)
    return Response(status_code=204)


@router.get("/bindings", tags=["members"], dependencies=READ, summary="Find WeChat bindings")
async def list_bindings(
    w: Wired,
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
    async with w.runtime.pool.acquire() as conn:
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
        items=[binding_view(b) for b in found], next_offset=_next_offset(offset, limit, len(found))
    )


@router.get(
    "/members/{member_id}/preferences",
    tags=["members"],
    dependencies=READ,
    summary="What a member chose to hear about",
)
async def get_preferences(member_id: MemberId, w: Wired) -> PreferencesView:
    """Every category is on until the member opts out; `always_sent` lists the mandatory rules
    that still reach them in a category they opted out of."""
    preferences = await handlers.preferences_of(w.uow(), member_id)
    return preferences_view(preferences, w.rules.current())


@router.put(
    "/members/{member_id}/preferences",
    tags=["members"],
    dependencies=BINDINGS,
    summary="Set the categories a member opts out of",
)
async def put_preferences(
    member_id: MemberId, body: ChoosePreferences, w: Wired
) -> PreferencesView:
    """Called by the official account's web app when the member changes their choices. The list
    replaces the previous one (idempotent); an empty list turns every category back on.
    Mandatory messages (e.g. a decision on their claim) are sent regardless.

    The member must be known here: notifications learns members from membership's events, within
    seconds of the join. An id it has not heard of is refused with 404 `unknown_member` and
    nothing is stored: retry a few seconds later, or check the id.
    """
    chosen = await handlers.set_preferences(w.uow(), member_id, set(body.opted_out))
    return preferences_view(chosen, w.rules.current())


# ---------------------------------------------------------------- deliveries


@router.get(
    "/deliveries", tags=["deliveries"], dependencies=READ, summary="Find messages and their fate"
)
async def list_deliveries(
    w: Wired,
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
    async with w.runtime.pool.acquire() as conn:
        rows = await Deliveries(conn).find(search, after_id=after_id, limit=limit)
    items = [delivery_view(r) for r in rows]
    return DeliveryPage(items=items, next_after_id=items[-1].id if len(items) == limit else None)


@router.get(
    "/deliveries/{delivery_id}", tags=["deliveries"], dependencies=READ, summary="One delivery"
)
async def get_delivery(
    delivery_id: Annotated[RowId, Path(description="The delivery's id.")], w: Wired
) -> DeliveryView:
    """A message to one member and where it stands. 404 `unknown_delivery` if there is none."""
    async with w.runtime.pool.acquire() as conn:
        row = await Deliveries(conn).get(delivery_id)
    if row is None:
        raise NotFound("delivery_id", "unknown_delivery", f"no delivery {delivery_id}")
    return delivery_view(row)


# ---------------------------------------------------------------- broadcasts

BroadcastId = Annotated[UUID, Path(description="The broadcast's id.")]


@router.post(
    "/broadcasts",
    status_code=202,
    tags=["broadcasts"],
    dependencies=MANAGE,
    summary="Send an announcement to a segment of members",
)
async def create_broadcast(body: StartBroadcast, w: Wired) -> BroadcastView:
    """Accepted at once (202) and fanned out in the background into one message per active
    member of the segment who bound WeChat and did not opt out of announcements (unless
    `mandatory`); they go behind messages caused by events, at the account's shared pace. Poll
    GET /broadcasts/{broadcast_id} for progress and the expected finish. Each call starts a new
    broadcast: not idempotent.

    Refusals (422): `unknown_template` (no such template in rules.yaml, see GET /rules),
    `missing_template_keys` / `unknown_template_keys` (`data` must fill exactly the template's
    keys), `invalid_pattern` and `unknown_placeholder` (text may only say {member_name} and
    {union_name})."""
    template = w.rules.current().templates.get(body.template)
    if template is None:
        raise DomainError(
            "template",
            "unknown_template",
            f"no template {body.template!r} in rules.yaml (see GET /rules)",
        )
    segment = Segment(body.segment.union_id, body.segment.member_category)
    async with w.runtime.pool.acquire() as conn:
        broadcast_id = await broadcasts.create(
            conn, template, body.data, body.url, segment, body.mandatory, w.clock()
        )
        return await broadcasts.progress(conn, broadcast_id, await w.pace())


@router.get("/broadcasts", tags=["broadcasts"], dependencies=READ, summary="Find broadcasts")
async def list_broadcasts(
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
    async with w.runtime.pool.acquire() as conn:
        found = await broadcasts.find(conn, search, offset, limit, await w.pace())
    return BroadcastPage(items=found, next_offset=_next_offset(offset, limit, len(found)))


@router.get(
    "/broadcasts/{broadcast_id}",
    tags=["broadcasts"],
    dependencies=READ,
    summary="A broadcast's progress",
)
async def get_broadcast(broadcast_id: BroadcastId, w: Wired) -> BroadcastView:
    """How many were queued, sent, failed and skipped (and why), and when the rest will have
    gone at the shared pace. 404 `unknown_broadcast` if there is none."""
    async with w.runtime.pool.acquire() as conn:
        return await broadcasts.progress(conn, broadcast_id, await w.pace())


@router.post(
    "/broadcasts/{broadcast_id}/cancel",
    tags=["broadcasts"],
    dependencies=MANAGE,
    summary="Cancel a broadcast",
)
async def cancel_broadcast(broadcast_id: BroadcastId, w: Wired) -> BroadcastView:
    """Stops the fan-out and withdraws every message not yet sent; those a sender already holds
    still go. 409 `broadcast_closed` if it has completed or was cancelled already (so a repeated
    cancel is harmless); 404 `unknown_broadcast` if there is none."""
    async with w.runtime.pool.acquire() as conn:
        await broadcasts.cancel(conn, broadcast_id, w.clock())
        return await broadcasts.progress(conn, broadcast_id, await w.pace())


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
async def sending(w: Wired) -> SendingView:
    """All sender workers share one pace (below the account's quota) and one pause, set when
    WeChat answers a quota or configuration errcode; `pending` and `sending` count messages that
    have yet to go."""
    pause = await w.gate().current_pause()
    counts = await queue.waiting(w.runtime.pool)
    return SendingView(
        rate_per_second=w.send_rate,
        paused_until=pause.until if pause else None,
        pause_errcode=pause.errcode if pause else None,
        pause_reason=pause.reason if pause else None,
        pending=counts.get("pending", 0),
        sending=counts.get("sending", 0),
    )
