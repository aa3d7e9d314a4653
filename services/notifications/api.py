"""HTTP API of the notifications service: thin routes over the handlers.

Every route but WeChat's callback takes signed calls (docs/departments.md) with a scope:
``bindings:write`` for the official account's web app (OAuth binding, a member's preferences),
``notifications:read`` for looking, ``notifications:manage`` for broadcasts. WeChat's callback
is signed WeChat's way instead. Openids are personal data: no answer carries one unmasked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from services.notifications import broadcasts, handlers, queue
from services.notifications.broadcast import Segment
from services.notifications.callback import BadPush, parse_push, signed
from services.notifications.domain import Binding, Preferences, mask_openid
from services.notifications.gate import SendGate
from services.notifications.handlers import NotificationsUnitOfWork
from services.notifications.live_rules import LiveRules
from services.notifications.reports import Report, ReportWriter
from services.notifications.repository import Deliveries
from services.notifications.rules import CATEGORIES
from shared.auth import require_scope
from shared.errors import DomainError, Forbidden, NotFound
from shared.runtime import ServiceRuntime

router = APIRouter()
STATUSES = (
    "awaiting_binding",
    "pending",
    "sending",
    "sent",
    "delivered",
    "failed",
    "undeliverable",
    "skipped",
    "invalid",
    "unconfirmed",
    "cancelled",
)


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


def _wiring(request: Request) -> Wiring:
    wiring: Wiring = request.app.state.wiring
    return wiring


Wired = Annotated[Wiring, Depends(_wiring)]
BINDINGS = [Depends(require_scope("bindings:write"))]
READ = [Depends(require_scope("notifications:read"))]
MANAGE = [Depends(require_scope("notifications:manage"))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- bindings and preferences


class BindingRequest(Strict):
    openid: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")


def _binding(b: Binding) -> dict[str, Any]:
    return {
        "member_id": b.member_id,
        "openid": mask_openid(b.openid),
        "reachable": b.reachable,
        "unreachable_errcode": b.unreachable_errcode,
    }


@router.put("/members/{member_id}/binding", tags=["members"], dependencies=BINDINGS)
async def bind(member_id: str, body: BindingRequest, w: Wired) -> dict[str, Any]:
    """Called by the official account's OAuth callback once it knows who the member is."""
    return _binding(await handlers.bind(w.uow(), member_id, body.openid, w.clock()))


@router.get("/members/{member_id}/binding", tags=["members"], dependencies=READ)
async def get_binding(member_id: str, w: Wired) -> dict[str, Any]:
    return _binding(await handlers.binding_of(w.uow(), member_id))


@router.delete(
    "/members/{member_id}/binding", status_code=204, tags=["members"], dependencies=BINDINGS
)
async def unbind(member_id: str, w: Wired) -> Response:
    await handlers.unbind(w.uow(), member_id)
    return Response(status_code=204)


class PreferencesRequest(Strict):
    # Categories the member does not want; mandatory messages come regardless.
    opted_out: list[str] = Field(default_factory=list, max_length=len(CATEGORIES))


def _preferences(p: Preferences, w: Wiring) -> dict[str, Any]:
    mandatory = sorted(
        {r.name for r in w.rules.current().rules if r.mandatory and r.category in p.opted_out}
    )
    return {
        "member_id": p.member_id,
        "opted_out": sorted(p.opted_out),
        "receives": {c: p.allows(c) for c in sorted(CATEGORIES)},
        # What is sent anyway although its category is opted out (e.g. claim decisions).
        "always_sent": mandatory,
    }


@router.get("/members/{member_id}/preferences", tags=["members"], dependencies=READ)
async def get_preferences(member_id: str, w: Wired) -> dict[str, Any]:
    return _preferences(await handlers.preferences_of(w.uow(), member_id), w)


@router.put("/members/{member_id}/preferences", tags=["members"], dependencies=BINDINGS)
async def put_preferences(member_id: str, body: PreferencesRequest, w: Wired) -> dict[str, Any]:
    for i, category in enumerate(body.opted_out):
        if category not in CATEGORIES:
            raise DomainError(
                f"opted_out[{i}]",
                f"unknown category {category!r} (known: {', '.join(sorted(CATEGORIES))})",
            )
    return _preferences(await handlers.set_preferences(w.uow(), member_id, set(body.opted_out)), w)


# ---------------------------------------------------------------- WeChat's pushes


def _check_signature(request: Request, w: Wiring) -> None:
    q = request.query_params
    if not signed(w.callback_token, q.get("signature"), q.get("timestamp"), q.get("nonce")):
        raise Forbidden("signature", "the push is not signed with the account's token")


@router.get("/wechat/callback", tags=["wechat"], response_class=PlainTextResponse)
async def verify_callback(request: Request, w: Wired, echostr: str = "") -> str:
    """WeChat's check of the server URL: echo ``echostr`` when the signature holds."""
    _check_signature(request, w)
    return echostr


# The delivery report of a message the member blocked: later sends to them would fail too.
USER_BLOCK = "failed:user block"


@router.post("/wechat/callback", tags=["wechat"], response_class=PlainTextResponse)
async def callback(request: Request, w: Wired) -> str:
    _check_signature(request, w)
    try:
        push = parse_push(await request.body())
    except BadPush as e:
        raise DomainError("body", str(e)) from None
    if push.event == "subscribe":
        await handlers.followed(w.uow(), push.openid)
    elif push.event == "unsubscribe":
        await handlers.channel_closed(w.uow(), push.openid, w.clock())
    elif push.event == "TEMPLATESENDJOBFINISH" and push.msgid is not None:
        await w.reports.write(Report(push.msgid, push.openid, push.status or "unknown"))
        if push.status == USER_BLOCK:
            await handlers.channel_closed(
                w.uow(), push.openid, w.clock(), handlers.REFUSED, "user block"
            )
    return "success"  # what WeChat expects; anything else makes it push again


# ---------------------------------------------------------------- deliveries


def _delivery(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["id"],
        "event_id": r["event_id"],
        "event_type": r["event_type"],
        "rule": r["rule"],
        "category": r["category"],
        "member_id": r["recipient"],
        "template_id": r["template_id"],
        "client_msg_id": r["client_msg_id"],
        "broadcast_id": str(r["broadcast_id"]) if r["broadcast_id"] else None,
        "status": r["status"],
        "reason": r["reason"],
        # WeChat refused the message itself (template id, data): rules.yaml needs fixing.
        "configuration_error": r["status"] == "invalid",
        "errcode": r["errcode"],
        "errmsg": r["errmsg"],
        "attempts": r["attempts"],
        "openid": mask_openid(r["openid"]) if r["openid"] else None,
        "msgid": r["msgid"],
        "report_status": r["report_status"],
        "created_at": r["created_at"],
        "attempted_at": r["attempted_at"],
        "sent_at": r["sent_at"],
        "reported_at": r["reported_at"],
        "next_attempt_at": r["next_attempt_at"] if r["status"] == "pending" else None,
    }


@router.get("/deliveries", tags=["deliveries"], dependencies=READ)
async def list_deliveries(
    w: Wired,
    member_id: str | None = None,
    status: str | None = Query(default=None, pattern="^(" + "|".join(STATUSES) + ")$"),
    broadcast_id: UUID | None = None,
    after_id: int | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    async with w.runtime.pool.acquire() as conn:
        rows = await Deliveries(conn).find(
            member_id=member_id,
            status=status,
            broadcast_id=broadcast_id,
            after_id=after_id,
            limit=limit,
        )
    items = [_delivery(r) for r in rows]
    return {"items": items, "next_after_id": items[-1]["id"] if len(items) == limit else None}


@router.get("/deliveries/{delivery_id}", tags=["deliveries"], dependencies=READ)
async def get_delivery(delivery_id: int, w: Wired) -> dict[str, Any]:
    async with w.runtime.pool.acquire() as conn:
        row = await Deliveries(conn).get(delivery_id)
    if row is None:
        raise NotFound("delivery_id", f"no delivery {delivery_id}")
    return _delivery(row)


# ---------------------------------------------------------------- broadcasts


class SegmentRequest(Strict):
    union_id: str | None = Field(default=None, min_length=1)
    member_category: str | None = Field(default=None, min_length=1)


class BroadcastRequest(Strict):
    template: str = "announcement"
    # Template key -> text; may use {member_name} and {union_name}.
    data: dict[str, str]
    url: str | None = Field(default=None, max_length=1024)
    segment: SegmentRequest = Field(default_factory=SegmentRequest)
    # Sent even to members who opted out of announcements: for what they must know.
    mandatory: bool = False


async def _progress(w: Wiring, conn: asyncpg.Connection, broadcast_id: UUID) -> dict[str, Any]:
    pause = await w.gate().current_pause()
    return await broadcasts.progress(
        conn, broadcast_id, w.clock(), w.send_rate, pause.until if pause else None
    )


@router.post("/broadcasts", status_code=202, tags=["broadcasts"], dependencies=MANAGE)
async def create_broadcast(body: BroadcastRequest, w: Wired) -> dict[str, Any]:
    template = w.rules.current().templates.get(body.template)
    if template is None:
        raise DomainError("template", f"no template {body.template!r} in rules.yaml")
    segment = Segment(body.segment.union_id, body.segment.member_category)
    async with w.runtime.pool.acquire() as conn:
        broadcast_id = await broadcasts.create(
            conn, template, body.data, body.url, segment, body.mandatory, w.clock()
        )
        return await _progress(w, conn, broadcast_id)


@router.get("/broadcasts/{broadcast_id}", tags=["broadcasts"], dependencies=READ)
async def get_broadcast(broadcast_id: UUID, w: Wired) -> dict[str, Any]:
    async with w.runtime.pool.acquire() as conn:
        return await _progress(w, conn, broadcast_id)


@router.post("/broadcasts/{broadcast_id}/cancel", tags=["broadcasts"], dependencies=MANAGE)
async def cancel_broadcast(broadcast_id: UUID, w: Wired) -> dict[str, Any]:
    async with w.runtime.pool.acquire() as conn:
        await broadcasts.cancel(conn, broadcast_id, w.clock())
        return await _progress(w, conn, broadcast_id)


# ---------------------------------------------------------------- configuration and state


@router.get("/rules", tags=["configuration"], dependencies=READ)
async def get_rules(w: Wired) -> dict[str, Any]:
    rules = w.rules.current()
    rejected = w.rules.rejected
    return {
        "version": rules.version,
        "loaded_at": w.rules.loaded_at,
        "rejected_change": {"problems": list(rejected.problems)} if rejected else None,
        "templates": {
            t.name: {"template_id": t.template_id, "keys": list(t.keys)}
            for t in rules.templates.values()
        },
        "rules": [
            {
                "name": r.name,
                "event": r.event_type,
                "recipient": r.recipient,
                "category": r.category,
                "mandatory": r.mandatory,
                "template": r.template.name,
                "url": r.url.source if r.url else None,
                "data": {k: p.source for k, p in r.data.items()},
            }
            for r in rules.rules
        ],
    }


@router.get("/sending", tags=["configuration"], dependencies=READ)
async def sending(w: Wired) -> dict[str, Any]:
    """The shared pace and pause, and how much is waiting."""
    pause = await w.gate().current_pause()
    counts = await queue.waiting(w.runtime.pool)
    return {
        "rate_per_second": w.send_rate,
        "paused_until": pause.until if pause else None,
        "pause_errcode": pause.errcode if pause else None,
        "pause_reason": pause.reason if pause else None,
        "pending": counts.get("pending", 0),
        "sending": counts.get("sending", 0),
    }
