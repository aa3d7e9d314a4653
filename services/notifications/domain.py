"""The notifications domain: whether to send, and what to send. Pure, no I/O.

A domain event arrives; each ``Rule`` for its type (see ``rules.py``) names the member to notify.
``should_send`` weighs the member's WeChat binding and preferences; ``render`` turns the event into
the template message WeChat expects, with a ``client_msg_id`` that makes a redelivered event
harmless (WeChat drops a second message with the same id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from services.notifications.patterns import FILTERS, Pattern, Placeholder
from services.notifications.rules import CATEGORIES, Rule
from shared.events.base import EventData
from shared.events.notifications import RecipientUnreachable

# WeChat rejects over-long template values (47003); 200 characters keeps every value well inside
# what the account's templates accept, and a cut-off message still reads as a message.
VALUE_LIMIT = 200
ELLIPSIS = "…"


@dataclass
class Binding:
    """A member's WeChat identity on the federation's official account: an aggregate (not frozen,
    so a unit of work can take the events it records); changes make a new one."""

    member_id: str
    openid: str
    # Set when WeChat said the member cannot be reached (unfollowed, refused, bad openid), so we
    # stop trying until the member binds again.
    unreachable_errcode: int | None = None
    # When the member bound this openid (their OAuth login); None for one not read from the store.
    bound_at: datetime | None = None
    unreachable_reason: str | None = None
    # What closing the channel tells other services; the unit of work that saves it sends them.
    events: list[EventData] = field(default_factory=list, compare=False, repr=False)

    @property
    def reachable(self) -> bool:
        return self.unreachable_errcode is None

    def unreachable(self, errcode: int, errmsg: str = "") -> Binding:
        """The binding marked "no channel", recording the RecipientUnreachable that tells other
        services so. ``errcode`` is what WeChat answered (or a send would have answered)."""
        reason = UNREACHABLE_REASONS.get(errcode, errmsg or f"errcode {errcode}")
        event = RecipientUnreachable(
            member_id=self.member_id,
            openid_masked=mask_openid(self.openid),
            errcode=errcode,
            reason=reason,
        )
        return replace(
            self,
            unreachable_errcode=errcode,
            unreachable_reason=reason,
            events=[*self.events, event],
        )


@dataclass(frozen=True)
class Preferences:
    """What a member chose to hear about. Everything is on until the member opts out."""

    member_id: str
    opted_out: frozenset[str] = frozenset()

    def allows(self, category: str) -> bool:
        return category not in self.opted_out

    def opt_out(self, category: str) -> Preferences:
        _check_category(category)
        return replace(self, opted_out=self.opted_out | {category})

    def opt_in(self, category: str) -> Preferences:
        _check_category(category)
        return replace(self, opted_out=self.opted_out - {category})


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")


class SkipReason(StrEnum):
    # Never bound a WeChat account: undeliverable, recorded, not retried.
    NO_BINDING = "no_binding"
    # Bound, but WeChat said the member cannot be reached.
    NO_CHANNEL = "no_channel"
    OPTED_OUT = "opted_out"


class DeliveryStatus(StrEnum):
    """Where one message to one member stands."""

    # Rendered, waiting a while for the member to bind WeChat (they often join and bind at once).
    AWAITING_BINDING = "awaiting_binding"
    PENDING = "pending"  # due to be sent, at the shared pace
    SENDING = "sending"  # a sender worker holds it
    SENT = "sent"  # WeChat accepted it and gave a msgid
    DELIVERED = "delivered"  # WeChat's delivery report says it arrived
    FAILED = "failed"  # retries exhausted, or WeChat's report says it did not arrive
    UNDELIVERABLE = "undeliverable"  # no binding, or no channel (unfollowed, blocked)
    SKIPPED = "skipped"  # the member opted out of its category
    INVALID = "invalid"  # WeChat refused the message itself: rules.yaml needs fixing
    UNCONFIRMED = "unconfirmed"  # a worker stopped after sending: a person should look
    CANCELLED = "cancelled"  # its broadcast was cancelled before it went


@dataclass(frozen=True)
class Send:
    openid: str


@dataclass(frozen=True)
class Skip:
    reason: SkipReason


def should_send(
    rule: Rule, preferences: Preferences | None, binding: Binding | None
) -> Send | Skip:
    if binding is None:
        return Skip(SkipReason.NO_BINDING)
    if not binding.reachable:
        return Skip(SkipReason.NO_CHANNEL)
    if not rule.mandatory and preferences is not None and not preferences.allows(rule.category):
        return Skip(SkipReason.OPTED_OUT)
    return Send(binding.openid)


@dataclass(frozen=True)
class TemplateMessage:
    """One WeChat template message, ready for /cgi-bin/message/template/send."""

    touser: str
    template_id: str
    data: dict[str, dict[str, str]]
    client_msg_id: str
    url: str | None = None
    # Data keys whose value was cut to VALUE_LIMIT: worth a warning, since the rule wrote too much.
    truncated: tuple[str, ...] = field(default=())

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "touser": self.touser,
            "template_id": self.template_id,
            "client_msg_id": self.client_msg_id,
            "data": self.data,
        }
        if self.url:
            body["url"] = self.url
        return body


class RenderError(ValueError):
    """The event lacks what the rule needs: a configuration problem, not worth retrying."""


def client_msg_id(event_id: str, recipient: str, template_id: str) -> str:
    """WeChat dedups on client_msg_id (at most 64 characters): the same event, member and template
    always give the same id, so a redelivered event cannot notify a member twice."""
    digest = hashlib.sha256("\x1f".join((event_id, recipient, template_id)).encode()).hexdigest()
    return f"gh-{digest[:40]}"


def recipient_of(rule: Rule, event_data: Mapping[str, Any]) -> str:
    """The member id the rule's recipient path points at in the event."""
    value: Any = event_data
    for step in rule.recipient.split("."):
        if not isinstance(value, Mapping) or value.get(step) is None:
            raise RenderError(f"rule {rule.name!r}: the event has no recipient at {rule.recipient}")
        value = value[step]
    return str(value)


def render(
    rule: Rule,
    event_data: Mapping[str, Any],
    context: Mapping[str, Any],
    *,
    event_id: str,
    openid: str,
) -> TemplateMessage:
    """The message ``rule`` sends for one event. ``context`` supplies what events do not carry
    (member_name, union_name); a field the event carries wins over the same name in context."""
    member_id = recipient_of(rule, event_data)
    data: dict[str, dict[str, str]] = {}
    truncated: list[str] = []
    for key, pattern in rule.data.items():
        value = _fill(rule, pattern, event_data, context, lambda s: s)
        if len(value) > VALUE_LIMIT:
            value = value[: VALUE_LIMIT - len(ELLIPSIS)] + ELLIPSIS
            truncated.append(key)
        data[key] = {"value": value}
    # Values go into a URL percent-encoded, so an id with '&' or '/' cannot reshape the link.
    url = _fill(rule, rule.url, event_data, context, _quote) if rule.url else None
    return TemplateMessage(
        touser=openid,
        template_id=rule.template.template_id,
        data=data,
        client_msg_id=client_msg_id(event_id, member_id, rule.template.template_id),
        url=url,
        truncated=tuple(truncated),
    )


def _quote(value: str) -> str:
    return quote(value, safe="")


def _fill(
    rule: Rule,
    pattern: Pattern,
    event_data: Mapping[str, Any],
    context: Mapping[str, Any],
    escape: Callable[[str], str],
) -> str:
    out: list[str] = []
    for part in pattern.parts:
        if isinstance(part, str):
            out.append(part)
        else:
            out.append(escape(_value(rule, part, event_data, context)))
    return "".join(out)


def _value(
    rule: Rule, placeholder: Placeholder, event_data: Mapping[str, Any], context: Mapping[str, Any]
) -> str:
    if placeholder.name in event_data:
        raw = event_data[placeholder.name]
    elif placeholder.name in context:
        raw = context[placeholder.name]
    else:
        raise RenderError(
            f"rule {rule.name!r}: {{{placeholder.name}}} is neither in the "
            f"{rule.event_type} event nor in the context"
        )
    if placeholder.filter is not None and raw is not None:
        try:
            return FILTERS[placeholder.filter](raw)
        except (TypeError, ValueError) as e:
            raise RenderError(
                f"rule {rule.name!r}: |{placeholder.filter} cannot format "
                f"{placeholder.name}={raw!r}: {e}"
            ) from None
    return _text(raw)


def _text(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, list | tuple):
        return "、".join(_text(v) for v in raw)
    if isinstance(raw, date | datetime):
        return raw.isoformat()
    return str(raw)


def mask_openid(openid: str) -> str:
    """Enough of an openid to match it in logs, not enough to address the member."""
    if len(openid) <= 8:
        return "*" * len(openid)
    return f"{openid[:4]}…{openid[-4:]}"


# Why WeChat will not deliver to a member, in words an officer can act on.
UNREACHABLE_REASONS = {
    40003: "the openid is not valid for this account",
    43004: "the member does not follow the account",
    43101: "the member refused the subscription",
    48002: "the member turned off messages from the account",
}
