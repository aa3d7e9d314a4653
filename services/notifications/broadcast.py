"""Broadcasts: one announcement to a segment of members, sent at the rate WeChat's quotas allow.

Pure: the rule a broadcast sends by, who is in a segment, who of them gets the message and what
it says, and how far along a broadcast is. The fan-out (``fanout.py``) walks the segment in
member-id order a batch at a time and applies this to each batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from services.notifications.domain import (
    Binding,
    Preferences,
    RenderError,
    Send,
    SkipReason,
    client_msg_id,
    render,
    should_send,
)
from services.notifications.patterns import PatternError, parse_pattern
from services.notifications.repository import NewDelivery
from services.notifications.rules import CONTEXT_FIELDS, Rule, Template
from shared.errors import DomainError

EVENT_TYPE = "gonghui.notifications.broadcast"
CATEGORY = "announcements"
# Deliveries of broadcasts go behind messages caused by events (priority 0), at the shared pace.
PRIORITY = 1


class BroadcastStatus(StrEnum):
    PLANNING = "planning"  # the fan-out is turning the segment into deliveries
    SENDING = "sending"  # every delivery is planned; some are still to go
    COMPLETED = "completed"  # every delivery is settled
    CANCELLED = "cancelled"  # staff cancelled it; what had not gone never will


@dataclass(frozen=True)
class Audience:
    """What the notifications service knows of a member, from membership's events."""

    member_id: str
    union_id: str
    # Unions above the member's own, from the city federation down (as in MemberJoined).
    union_path: tuple[str, ...]
    # The member's categories (MemberJoined.categories), e.g. women workers, migrant workers.
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Segment:
    """Who a broadcast is for. Both filters must hold; neither set means everyone."""

    # A union and every union below it.
    union_id: str | None = None
    # A member category, as membership records it.
    member_category: str | None = None

    @classmethod
    def everyone(cls) -> Segment:
        return cls()

    def includes(self, member: Audience) -> bool:
        if self.union_id is not None and not (
            member.union_id == self.union_id or self.union_id in member.union_path
        ):
            return False
        return self.member_category is None or self.member_category in member.categories

    def describe(self) -> str:
        parts = []
        if self.union_id is not None:
            parts.append(f"union {self.union_id} and below")
        if self.member_category is not None:
            parts.append(f"category {self.member_category}")
        return ", ".join(parts) or "everyone"


OPEN = (BroadcastStatus.PLANNING, BroadcastStatus.SENDING)
SENT = ("sent", "delivered")
FAILED = ("failed", "undeliverable", "invalid", "unconfirmed")


def broadcast_rule(
    template: Template, data: Mapping[str, str], url: str | None, mandatory: bool
) -> Rule:
    """The rule a broadcast sends by; a DomainError names the key whose text is wrong."""
    problems = [k for k in template.keys if k not in data]
    if problems:
        raise DomainError(
            "data",
            "missing_template_keys",
            f"template {template.name} also needs {', '.join(problems)}",
            missing=problems,
        )
    undeclared = [k for k in data if k not in template.keys]
    if undeclared:
        raise DomainError(
            "data",
            "unknown_template_keys",
            f"template {template.name} has no key {', '.join(undeclared)}",
            unknown=undeclared,
        )
    patterns = {}
    sources = {f"data.{k}": v for k, v in data.items()} | ({"url": url} if url else {})
    for where, source in sources.items():
        try:
            pattern = parse_pattern(source)
        except PatternError as e:
            raise DomainError(where, "invalid_pattern", str(e)) from None
        unknown = [p.name for p in pattern.placeholders if p.name not in CONTEXT_FIELDS]
        if unknown:
            raise DomainError(
                where,
                "unknown_placeholder",
                f"only {', '.join(sorted(CONTEXT_FIELDS))} can be filled in, not {unknown[0]}",
            )
        patterns[where.removeprefix("data.")] = pattern
    return Rule(
        name="broadcast",
        event_type=EVENT_TYPE,
        recipient="member_id",
        category=CATEGORY,
        template=template,
        data={k: patterns[k] for k in template.keys},
        url=patterns.get("url"),
        mandatory=mandatory,
    )


@dataclass(frozen=True)
class SegmentMember:
    """A member of a broadcast's segment as the fan-out reads them: who, how to reach them, what
    they chose, and what a message may say of them (member_name, union_name)."""

    audience: Audience
    binding: Binding | None
    preferences: Preferences | None
    context: Mapping[str, str]


@dataclass(frozen=True)
class Batch:
    """What one batch of a segment comes to: a delivery per member reached, the rest counted."""

    deliveries: list[NewDelivery]
    skipped: Mapping[SkipReason, int]


def fan_out(
    broadcast_id: UUID, segment: Segment, rule: Rule, members: Iterable[SegmentMember]
) -> Batch:
    """One delivery for each member of the batch the broadcast reaches."""
    members = list(members)
    plan = plan_broadcast(
        segment,
        (m.audience for m in members),
        rule,
        {m.audience.member_id: m.preferences for m in members if m.preferences is not None},
        {m.audience.member_id: m.binding for m in members if m.binding is not None},
    )
    contexts = {m.audience.member_id: m.context for m in members}
    event_id = f"broadcast:{broadcast_id}"
    deliveries = [
        _delivery(rule, event_id, broadcast_id, member_id, openid, contexts[member_id])
        for member_id, openid in plan.sends
    ]
    return Batch(deliveries, plan.skipped)


def _delivery(
    rule: Rule,
    event_id: str,
    broadcast_id: UUID,
    member_id: str,
    openid: str,
    context: Mapping[str, str],
) -> NewDelivery:
    template_id = rule.template.template_id
    base: dict[str, Any] = {
        "event_id": event_id,
        "event_type": EVENT_TYPE,
        "rule": rule.name,
        "category": rule.category,
        "recipient": member_id,
        "template_id": template_id,
        "client_msg_id": client_msg_id(event_id, member_id, template_id),
        "broadcast_id": broadcast_id,
        "priority": PRIORITY,
    }
    try:
        msg = render(rule, {"member_id": member_id}, context, event_id=event_id, openid=openid)
    except RenderError as e:
        return NewDelivery(**base, status="invalid", reason="render_error", errmsg=str(e))
    return NewDelivery(**base, status="pending", message={"data": msg.data, "url": msg.url})


@dataclass(frozen=True)
class BroadcastPlan:
    # (member_id, openid) to send to, in a stable order so a resumed broadcast picks up its place.
    sends: tuple[tuple[str, str], ...]
    skipped: Mapping[SkipReason, int] = field(default_factory=dict)


def plan_broadcast(
    segment: Segment,
    members: Iterable[Audience],
    rule: Rule,
    preferences: Mapping[str, Preferences],
    bindings: Mapping[str, Binding],
) -> BroadcastPlan:
    sends: list[tuple[str, str]] = []
    skipped: Counter[SkipReason] = Counter()
    for member in sorted(members, key=lambda m: m.member_id):
        if not segment.includes(member):
            continue
        decision = should_send(
            rule, preferences.get(member.member_id), bindings.get(member.member_id)
        )
        if isinstance(decision, Send):
            sends.append((member.member_id, decision.openid))
        else:
            skipped[decision.reason] += 1
    return BroadcastPlan(tuple(sends), dict(skipped))


@dataclass(frozen=True)
class BroadcastProgress:
    queued: int
    sent: int = 0
    failed: int = 0

    def __post_init__(self) -> None:
        if min(self.queued, self.sent, self.failed) < 0 or self.sent + self.failed > self.queued:
            raise ValueError(f"inconsistent progress {self}")

    @property
    def remaining(self) -> int:
        return self.queued - self.sent - self.failed

    @property
    def finished(self) -> bool:
        return self.remaining == 0

    def record_sent(self, n: int = 1) -> BroadcastProgress:
        return BroadcastProgress(self.queued, self.sent + n, self.failed)

    def record_failed(self, n: int = 1) -> BroadcastProgress:
        return BroadcastProgress(self.queued, self.sent, self.failed + n)

    def expected_finish(self, now: datetime, per_minute: float) -> datetime | None:
        """When the rest will have gone at ``per_minute`` messages a minute; None if paused."""
        if self.finished:
            return now
        if per_minute <= 0:
            return None
        return now + timedelta(minutes=self.remaining / per_minute)
