"""Commands and events of the notifications service.

Followed events do two things, both inside the consumer's transaction and without any HTTP: keep
the service's read models (members, unions) and, for every rule of the event's type in the rules
in force, record one delivery (pending, or why not). The sender worker does the sending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.notifications.domain import (
    Binding,
    Preferences,
    RenderError,
    Skip,
    SkipReason,
    client_msg_id,
    mask_openid,
    recipient_of,
    recipient_unreachable,
    render,
    should_send,
)
from services.notifications.live_rules import LiveRules
from services.notifications.repository import (
    Bindings,
    Deliveries,
    MemberDirectory,
    NewDelivery,
    Organisations,
    PreferenceStore,
)
from services.notifications.rules import Rule
from shared.consumer import Batched, Handler, Run
from shared.errors import NotFound
from shared.events import membership as m
from shared.events.base import CATALOGUE, EventData
from shared.events.envelope import Envelope
from shared.telemetry import current_trace_headers
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
UNSUBSCRIBED = 43004  # what WeChat answers a send to a member who unfollowed
REFUSED = 43101  # what WeChat answers a send to a member who refuses the account's messages


class NotificationsUnitOfWork(UnitOfWork):
    def on_enter(self) -> None:
        self.bindings = Bindings(self.conn)
        self.preferences = PreferenceStore(self.conn)
        self.deliveries = Deliveries(self.conn)
        self.members = MemberDirectory(self.conn)


# ---------------------------------------------------------------- read models (membership events)


async def members_joined(conn: asyncpg.Connection, events: Run) -> None:
    joins = [e for e, _ in events if isinstance(e, m.MemberJoined)]
    await MemberDirectory(conn).joined(joins)


async def member_changed(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
    assert isinstance(e, m.MemberDetailsChanged)
    await MemberDirectory(conn).update(e.member_id, name=e.name, categories=e.categories)


async def member_transferred(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
    assert isinstance(e, m.MemberTransferred)
    await MemberDirectory(conn).update(e.member_id, union_id=e.to_union_id, union_path=e.union_path)


async def card_issued(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
    assert isinstance(e, m.CardIssued)
    await MemberDirectory(conn).update(e.member_id, card_number=e.card_number)


def status_becomes(status: str) -> Handler:
    async def handle(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
        assert isinstance(e, m.MemberEvent)
        await MemberDirectory(conn).update(e.member_id, status=status)

    return handle


async def organisation_named(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
    assert isinstance(e, m.OrganisationEstablished | m.OrganisationChanged)
    await Organisations(conn).put(e.organisation_id, e.name, e.parent_id, e.path)


async def organisation_dissolved(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
    assert isinstance(e, m.OrganisationDissolved)
    await Organisations(conn).dissolved(e.organisation_id, e.dissolved_on)


MEMBERSHIP: dict[str, Handler] = {
    m.MemberJoined.type: Batched(members_joined),
    m.MemberDetailsChanged.type: member_changed,
    m.MemberTransferred.type: member_transferred,
    m.CardIssued.type: card_issued,
    m.MemberSuspended.type: status_becomes("suspended"),
    m.MemberReinstated.type: status_becomes("active"),
    m.MemberLeft.type: status_becomes("left"),
    m.OrganisationEstablished.type: organisation_named,
    m.OrganisationChanged.type: organisation_named,
    m.OrganisationDissolved.type: organisation_dissolved,
}


# ---------------------------------------------------------------- messages (any followed event)


def notifier(rules: LiveRules, clock: Clock, binding_grace: timedelta) -> Batched:
    """The one handler for every followed event: its rules come from the rules in force, so a rule
    added to rules.yaml for a catalogued event needs no code. A run of events (a roster's joins)
    reads its recipients' bindings, choices and names once and records its deliveries at once."""

    async def notify(conn: asyncpg.Connection, events: Run) -> None:
        matching = rules.current().for_event(events[0][1].type)
        if not matching:
            return
        now = clock()
        current = current_trace_headers() or None
        asked: list[tuple[Rule, dict[str, Any], Envelope, str | RenderError]] = []
        for e, envelope in events:
            data = e.model_dump()
            for rule in matching:
                try:
                    asked.append((rule, data, envelope, recipient_of(rule, data)))
                except RenderError as err:
                    asked.append((rule, data, envelope, err))
        members = {r for *_, r in asked if isinstance(r, str)}
        bindings = await Bindings(conn).with_preferences(members)
        contexts = await MemberDirectory(conn).contexts(members)
        planned = [
            plan_delivery(
                rule,
                data,
                envelope,
                recipient
                if isinstance(recipient, RenderError)
                else Recipient(recipient, *bindings[recipient], contexts[recipient]),
                now + binding_grace,
                # The event's own trace: a run's span is only the first event's.
                envelope.trace_headers or current,
            )
            for rule, data, envelope, recipient in asked
        ]
        await Deliveries(conn).add(planned, now)

    return Batched(notify)


@dataclass(frozen=True)
class Recipient:
    """What this service knows of a message's recipient."""

    member_id: str
    binding: Binding | None
    preferences: Preferences | None
    context: dict[str, str]


def plan_delivery(
    rule: Rule,
    data: dict[str, Any],
    envelope: Envelope,
    recipient: Recipient | RenderError,
    wait_for_binding_until: datetime,
    trace: dict[str, str] | None,
) -> NewDelivery:
    template_id = rule.template.template_id

    def delivery(member_id: str, status: str, **extra: Any) -> NewDelivery:
        return NewDelivery(
            event_id=envelope.id,
            event_type=envelope.type,
            rule=rule.name,
            category=rule.category,
            recipient=member_id,
            template_id=template_id,
            client_msg_id=client_msg_id(envelope.id, member_id, template_id),
            status=status,
            trace_headers=trace,
            **extra,
        )

    if isinstance(recipient, RenderError):  # the rule names no recipient in this event
        log.error("configuration error: %s (event %s)", recipient, envelope.id)
        return delivery("", "invalid", reason="render_error", errmsg=str(recipient))
    member_id, binding = recipient.member_id, recipient.binding
    # Judged as if bound: a member who opted out is skipped whether or not they bind later.
    decision = should_send(rule, recipient.preferences, binding or Binding(member_id, "?"))
    if isinstance(decision, Skip):
        status = "skipped" if decision.reason is SkipReason.OPTED_OUT else "undeliverable"
        errcode = binding.unreachable_errcode if binding else None
        return delivery(member_id, status, reason=decision.reason.value, errcode=errcode)
    try:
        msg = render(rule, data, recipient.context, event_id=envelope.id, openid=decision.openid)
    except RenderError as err:
        log.error("configuration error: %s (event %s)", err, envelope.id)
        return delivery(member_id, "invalid", reason="render_error", errmsg=str(err))
    if msg.truncated:
        log.warning("rule %s: values of %s were cut to fit WeChat", rule.name, msg.truncated)
    message = {"data": msg.data, "url": msg.url}
    if binding is None:
        # Members often join and bind in one sitting (the OAuth login follows the join): the
        # message waits a while for the binding, then is recorded undeliverable, never retried.
        return delivery(
            member_id,
            "awaiting_binding",
            reason=SkipReason.NO_BINDING.value,
            message=message,
            next_attempt_at=wait_for_binding_until,
        )
    return delivery(member_id, "pending", message=message)


def then(first: Handler, second: Handler) -> Handler:
    """Both handlers, in order. Two batch handlers stay one: the run's read-model rows first, then
    its messages (a run never holds one member twice, so each message reads its own event's row).
    """
    if isinstance(first, Batched) and isinstance(second, Batched):

        async def both_runs(conn: asyncpg.Connection, events: Run) -> None:
            await first.apply(conn, events)
            await second.apply(conn, events)

        return Batched(both_runs)

    async def both(conn: asyncpg.Connection, e: EventData, envelope: Envelope) -> None:
        await first(conn, e, envelope)
        await second(conn, e, envelope)

    return both


def follows(
    rules: LiveRules, clock: Clock, binding_grace: timedelta
) -> dict[str, dict[str, Handler]]:
    """Topic -> handlers for every catalogued event of the other services. The read models are
    updated first, so a welcome message can name the member it welcomes."""
    notify = notifier(rules, clock, binding_grace)
    topics: dict[str, dict[str, Handler]] = {}
    for event_type, model in CATALOGUE.items():
        producer = model.source.rpartition("/")[2]
        if producer == "notifications":
            continue
        own = MEMBERSHIP.get(event_type)
        topics.setdefault(f"{producer}.events", {})[event_type] = (
            then(own, notify) if own else notify
        )
    return topics


# ---------------------------------------------------------------- members' channels and choices


async def _ensure_known(uow: NotificationsUnitOfWork, member_id: str) -> None:
    """Refuse a member membership has not announced: a binding or a choice stored for an id
    nobody holds would wait for ever, and a mistyped id would never be noticed."""
    if not await uow.members.knows(member_id):
        raise NotFound(
            "member_id",
            "unknown_member",
            f"notifications does not know member {member_id}: it learns a new member from"
            " membership's events within seconds of the join; retry then",
        )


async def bind(uow: NotificationsUnitOfWork, member_id: str, openid: str, now: datetime) -> Binding:
    async with uow:
        await _ensure_known(uow, member_id)
        binding, previous = await uow.bindings.bind(member_id, openid, now)
        await uow.deliveries.release_awaiting(member_id, now)
        await uow.commit()
    if previous is not None:
        log.info("openid %s moved from member %s to %s", mask_openid(openid), previous, member_id)
    return binding


async def unbind(uow: NotificationsUnitOfWork, member_id: str) -> None:
    async with uow:
        if not await uow.bindings.unbind(member_id):
            raise NotFound("member_id", "no_binding", f"member {member_id} has no WeChat binding")
        await uow.commit()


async def binding_of(uow: NotificationsUnitOfWork, member_id: str) -> Binding:
    async with uow:
        binding = await uow.bindings.get(member_id)
    if binding is None:
        raise NotFound("member_id", "no_binding", f"member {member_id} has no WeChat binding")
    return binding


async def preferences_of(uow: NotificationsUnitOfWork, member_id: str) -> Preferences:
    async with uow:
        return await uow.preferences.get(member_id) or Preferences(member_id)


async def set_preferences(
    uow: NotificationsUnitOfWork, member_id: str, opted_out: set[str]
) -> Preferences:
    preferences = Preferences(member_id)
    for category in sorted(opted_out):
        preferences = preferences.opt_out(category)
    async with uow:
        await _ensure_known(uow, member_id)
        await uow.preferences.put(preferences)
        await uow.commit()
    return preferences


async def followed(uow: NotificationsUnitOfWork, openid: str) -> None:
    """WeChat's subscribe event: a member who unfollowed and follows again can be reached again."""
    async with uow:
        if await uow.bindings.mark_reachable(openid):
            log.info("openid %s follows the account again", mask_openid(openid))
        await uow.commit()


async def channel_closed(
    uow: NotificationsUnitOfWork,
    openid: str,
    now: datetime,
    errcode: int = UNSUBSCRIBED,
    errmsg: str = "unsubscribed",
) -> None:
    """WeChat says the member cannot be reached (an unsubscribe event, or a delivery report that
    they block the account's messages): no channel to this member until they follow or bind
    again, and the other services hear so once. ``errcode`` is what a send would have answered."""
    async with uow:
        binding = await uow.bindings.by_openid(openid, lock=True)
        if binding is None or not binding.reachable:
            return
        marked, event = recipient_unreachable(binding, errcode, errmsg)
        assert marked.unreachable_errcode is not None
        await uow.bindings.mark_unreachable(
            binding.member_id, openid, marked.unreachable_errcode, event.reason, now
        )
        uow.publish(event)
        await uow.commit()
