"""Broadcasts: one announcement to a segment of members, sent at the rate WeChat's quotas allow.

Pure: who is in a segment, who of them gets the message, and how far along a broadcast is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from services.notifications.domain import Binding, Preferences, Send, SkipReason, should_send
from services.notifications.rules import Rule


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
