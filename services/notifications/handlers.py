"""The notifications service's use cases: ``async def use_case(cmd, uow)``, and the handlers of
membership's events that keep the read models (members, unions), ``async def on_event(event,
uow)``. Messages for followed events are planned in ``messages.py``; ``follows`` wires both.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from services.notifications import commands as c
from services.notifications.broadcast import FAILED, OPEN, SENT, Segment, broadcast_rule, fan_out
from services.notifications.broadcast_repository import NewBroadcast, rule_of, segment_of
from services.notifications.domain import Binding, Preferences, mask_openid
from services.notifications.live_rules import LiveRules
from services.notifications.messages import notifier, then
from services.notifications.repository import JOINED
from services.notifications.unit_of_work import NotificationsUnitOfWork as Uow
from shared.clock import Clock
from shared.consumer import Batched, Handler
from shared.errors import Conflict, DomainError, NotFound
from shared.events import membership as m
from shared.events.base import CATALOGUE
from shared.events.notifications import BroadcastCompleted
from shared.uow import following

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- read models (membership events)


async def member_changed(e: m.MemberDetailsChanged, uow: Uow) -> None:
    async with uow:
        await uow.members.update(e.member_id, name=e.name, categories=e.categories)
        await uow.commit()


async def member_transferred(e: m.MemberTransferred, uow: Uow) -> None:
    async with uow:
        await uow.members.update(e.member_id, union_id=e.to_union_id, union_path=e.union_path)
        await uow.commit()


async def card_issued(e: m.CardIssued, uow: Uow) -> None:
    async with uow:
        await uow.members.update(e.member_id, card_number=e.card_number)
        await uow.commit()


def status_becomes(status: str) -> Callable[[m.MemberEvent, Uow], Awaitable[None]]:
    async def member_status(e: m.MemberEvent, uow: Uow) -> None:
        async with uow:
            await uow.members.update(e.member_id, status=status)
            await uow.commit()

    return member_status


async def organisation_named(
    e: m.OrganisationEstablished | m.OrganisationChanged, uow: Uow
) -> None:
    async with uow:
        await uow.organisations.put(e.organisation_id, e.name, e.parent_id, e.path)
        await uow.commit()


async def organisation_dissolved(e: m.OrganisationDissolved, uow: Uow) -> None:
    async with uow:
        await uow.organisations.dissolved(e.organisation_id, e.dissolved_on)
        await uow.commit()


def follows(
    rules: LiveRules, clock: Clock, binding_grace: timedelta, topic: str
) -> dict[str, dict[str, Handler]]:
    """Topic -> handlers for every catalogued event of the other services. The read models are
    updated first, so a welcome message can name the member it welcomes."""

    def own(handler: Callable[[Any, Uow], Awaitable[None]]) -> Handler:
        return following(Uow, topic, clock, handler)

    membership: dict[str, Handler] = {
        # Batched on the consumer's connection: a roster's joins are one statement (with the
        # inbox's rows, see then()), not a unit of work each.
        m.MemberJoined.type: Batched.of(JOINED),
        m.MemberDetailsChanged.type: own(member_changed),
        m.MemberTransferred.type: own(member_transferred),
        m.CardIssued.type: own(card_issued),
        m.MemberSuspended.type: own(status_becomes("suspended")),
        m.MemberReinstated.type: own(status_becomes("active")),
        m.MemberLeft.type: own(status_becomes("left")),
        m.OrganisationEstablished.type: own(organisation_named),
        m.OrganisationChanged.type: own(organisation_named),
        m.OrganisationDissolved.type: own(organisation_dissolved),
    }
    notify = notifier(rules, clock, binding_grace)
    topics: dict[str, dict[str, Handler]] = {}
    for event_type, model in CATALOGUE.items():
        producer = model.source.rpartition("/")[2]
        if producer == "notifications":
            continue
        first = membership.get(event_type)
        topics.setdefault(f"{producer}.events", {})[event_type] = (
            then(first, notify) if first else notify
        )
    return topics


# ---------------------------------------------------------------- members' channels and choices


async def _ensure_known(uow: Uow, member_id: str) -> None:
    """Refuse a member membership has not announced: a binding or a choice stored for an id
    nobody holds would wait for ever, and a mistyped id would never be noticed."""
    if not await uow.members.knows(member_id):
        raise NotFound(
            "member_id",
            "unknown_member",
            f"notifications does not know member {member_id}: it learns a new member from"
            " membership's events within seconds of the join; retry then",
        )


async def bind(cmd: c.BindWeChat, uow: Uow) -> Binding:
    async with uow:
        await _ensure_known(uow, cmd.member_id)
        now = uow.clock.now()
        binding, previous = await uow.bindings.bind(cmd.member_id, cmd.openid, now)
        await uow.deliveries.release_awaiting(cmd.member_id, now)
        await uow.commit()
    if previous is not None:
        log.info(
            "openid %s moved from member %s to %s",
            mask_openid(cmd.openid),
            previous,
            cmd.member_id,
        )
    return binding


async def unbind(cmd: c.Unbind, uow: Uow) -> None:
    async with uow:
        if not await uow.bindings.unbind(cmd.member_id):
            raise NotFound(
                "member_id", "no_binding", f"member {cmd.member_id} has no WeChat binding"
            )
        await uow.commit()


async def choose_preferences(cmd: c.ChoosePreferences, uow: Uow) -> Preferences:
    preferences = Preferences(cmd.member_id)
    for category in sorted(set(cmd.opted_out)):
        preferences = preferences.opt_out(category)
    async with uow:
        await _ensure_known(uow, cmd.member_id)
        await uow.preferences.put(preferences)
        await uow.commit()
    return preferences


async def reopen_channel(cmd: c.ReopenChannel, uow: Uow) -> None:
    async with uow:
        if await uow.bindings.mark_reachable(cmd.openid):
            log.info("openid %s follows the account again", mask_openid(cmd.openid))
        await uow.commit()


async def close_channel(cmd: c.CloseChannel, uow: Uow) -> None:
    """No channel to this member until they follow or bind again; the other services hear so
    once (the binding's RecipientUnreachable, sent with the change)."""
    async with uow:
        binding = await uow.bindings.by_openid(cmd.openid, lock=True)
        if binding is None or not binding.reachable:
            return
        closed = binding.unreachable(cmd.errcode, cmd.errmsg)
        await uow.bindings.close(closed, uow.clock.now())
        await uow.commit()


# ---------------------------------------------------------------- broadcasts


async def start_broadcast(cmd: c.StartBroadcast, uow: Uow) -> UUID:
    """A broadcast, planning: the fan-out worker turns it into deliveries."""
    template = uow.rules.templates.get(cmd.template)
    if template is None:
        raise DomainError(
            "template",
            "unknown_template",
            f"no template {cmd.template!r} in rules.yaml (see GET /rules)",
        )
    broadcast_rule(template, cmd.data, cmd.url, cmd.mandatory)  # refuse now what could not
    # be rendered later
    segment = Segment(cmd.segment.union_id, cmd.segment.member_category)
    new = NewBroadcast(template, cmd.data, cmd.url, segment, cmd.mandatory)
    async with uow:
        broadcast_id = await uow.broadcasts.add(new, uow.clock.now())
        await uow.commit()
    return broadcast_id


async def cancel_broadcast(cmd: c.CancelBroadcast, uow: Uow) -> None:
    broadcast_id = UUID(str(cmd.broadcast_id))
    async with uow:
        b = await uow.broadcasts.get(broadcast_id, lock=True)
        if b is None:
            raise NotFound("broadcast_id", "unknown_broadcast", f"no broadcast {broadcast_id}")
        if b["status"] not in OPEN:
            raise Conflict(
                "broadcast_id",
                "broadcast_closed",
                f"the broadcast is already {b['status']}: nothing is left to cancel",
                broadcast_status=b["status"],
            )
        now = uow.clock.now()
        await uow.broadcasts.cancel(broadcast_id, now)
        await uow.deliveries.withdraw(broadcast_id, now)
        await uow.commit()


async def fan_out_batch(cmd: c.FanOutBatch, uow: Uow) -> bool:
    """One batch of the oldest broadcast still planning: its deliveries and the broadcast's
    cursor in one commit, so a crash resumes after the last committed member and nobody is
    written twice (the deliveries' unique key would refuse it anyway). False when none is."""
    async with uow:
        b = await uow.broadcasts.next_planning()
        if b is None:
            return False
        members = await uow.broadcasts.members(b, cmd.batch_size)
        batch = fan_out(b["id"], segment_of(b), rule_of(b), members)
        now = uow.clock.now()
        await uow.deliveries.add(batch.deliveries, now)
        cursor = members[-1].audience.member_id if members else b["cursor"]
        done = len(members) < cmd.batch_size
        await uow.broadcasts.advance(b["id"], cursor, len(members), batch.skipped, done, now)
        await uow.commit()
    return True


async def close_finished_broadcasts(cmd: c.CloseFinishedBroadcasts, uow: Uow) -> bool:
    """Every broadcast whose deliveries are all settled is completed, with one
    BroadcastCompleted each. False when there was none."""
    async with uow:
        finished = await uow.broadcasts.finished()
        if not finished:
            return False
        for b in finished:
            counts, last = await uow.broadcasts.settled(b["id"])
            # It finished when its last message was settled, not when this poll noticed.
            completed_at = last or b["planned_at"] or uow.clock.now()
            await uow.broadcasts.complete(b["id"], completed_at)
            uow.publish(
                BroadcastCompleted(
                    broadcast_id=str(b["id"]),
                    segment=segment_of(b).describe(),
                    queued=sum(counts.values()),
                    sent=sum(counts.get(s, 0) for s in SENT),
                    failed=sum(counts.get(s, 0) for s in FAILED),
                    skipped=b["skipped_no_binding"]
                    + b["skipped_no_channel"]
                    + b["skipped_opted_out"],
                    completed_at=completed_at,
                )
            )
            log.info("broadcast %s completed: %s", b["id"], counts)
        await uow.commit()
    return True
