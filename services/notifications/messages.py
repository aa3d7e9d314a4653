"""Messages for followed events: for every rule of an event's type in the rules in force, one
delivery (pending, waiting for a binding, or why not), recorded inside the consumer's transaction
without any HTTP. The sender worker does the sending."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.notifications.domain import (
    Binding,
    RenderError,
    Skip,
    SkipReason,
    client_msg_id,
    recipient_of,
    render,
    should_send,
)
from services.notifications.live_rules import LiveRules
from services.notifications.repository import Deliveries, MemberDirectory, NewDelivery, Recipient
from services.notifications.rules import Rule, RuleSet
from shared.clock import Clock
from shared.consumer import Batched, Handler, Run
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.telemetry import current_trace_headers

log = logging.getLogger(__name__)


def notifier(rules: LiveRules, clock: Clock, binding_grace: timedelta) -> Batched:
    """The one handler for every followed event: its rules come from the rules in force, so a rule
    added to rules.yaml for a catalogued event needs no code. A run of events (a roster's joins,
    a lecture's completions and certificates) reads its recipients' bindings, choices and names
    once and records its deliveries at once: so it stays a batched consumer handler on the
    consumer's connection, not one unit of work per event (a roster of thousands would cost a
    savepoint and three round trips each). Each event is matched with its own type's rules, so a
    run may mix types: an event's messages are its own rows, read from rows no followed event
    of this handler writes, and so do not depend on the other events of the run."""

    async def notify(conn: asyncpg.Connection, events: Run) -> None:
        asked = _asked(rules.current(), events)
        if not asked:
            return
        now = clock.now()
        current = current_trace_headers() or None
        members = {r for *_, r in asked if isinstance(r, str)}
        recipients = await MemberDirectory(conn).recipients(members)
        planned = [
            plan_delivery(
                rule,
                data,
                envelope,
                recipient if isinstance(recipient, RenderError) else recipients[recipient],
                now + binding_grace,
                # The event's own trace: a run's span is only the first event's.
                envelope.trace_headers or current,
            )
            for rule, data, envelope, recipient in asked
        ]
        await Deliveries(conn).add(planned, now)

    # Independent: a run is every consecutive followed event (a lecture's completions and
    # certificates share one subject, the class, and alternate: else each was a run of one).
    return Batched(notify, independent=True)


Asked = tuple[Rule, dict[str, Any], Envelope, str | RenderError]


def _asked(ruleset: RuleSet, events: Run) -> list[Asked]:
    """Each rule in force for each event of the run, with the member it names (or why none)."""
    asked: list[Asked] = []
    for e, envelope in events:
        matching = ruleset.for_event(envelope.type)
        if not matching:
            continue  # most followed events (a completion, a payment's ledger) send nothing
        data = e.model_dump()
        for rule in matching:
            try:
                asked.append((rule, data, envelope, recipient_of(rule, data)))
            except RenderError as err:
                asked.append((rule, data, envelope, err))
    return asked


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
    A first declared as one statement stays so (its rows and the inbox's in one round trip).
    """
    if isinstance(first, Batched) and isinstance(second, Batched):
        if first.statement is not None and first.rest is None:
            return Batched.of(first.statement, second.apply)

        async def both_runs(conn: asyncpg.Connection, events: Run) -> None:
            await first.apply(conn, events)
            await second.apply(conn, events)

        return Batched(both_runs)

    async def both(conn: asyncpg.Connection, e: EventData, envelope: Envelope) -> None:
        await first(conn, e, envelope)
        await second(conn, e, envelope)

    return both
