"""Who is an active union member, and when: the service's own view built from membership events.

Mutual aid never asks the membership service; it keeps each member's active periods so cover can be
decided when membership is down. Suspension and leaving both end an active period; joining and
reinstatement open one. Applying the same event twice changes nothing (events may be redelivered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from shared.consumer import Run, Statement
from shared.events.base import EventData
from shared.events.membership import MemberJoined, MemberLeft, MemberReinstated, MemberSuspended


@dataclass(frozen=True)
class ActivePeriod:
    starts_on: date
    # The first day no longer active (exclusive); None while still active.
    ends_on: date | None = None

    def includes(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day < self.ends_on)


@dataclass
class MemberStanding:
    member_id: str
    periods: list[ActivePeriod] = field(default_factory=list)

    def active_on(self, day: date) -> bool:
        return any(period.includes(day) for period in self.periods)

    @property
    def is_open(self) -> bool:
        return bool(self.periods) and self.periods[-1].ends_on is None

    def start(self, on: date) -> None:
        """Joined or reinstated: a new active period, unless one is open already."""
        if not self.is_open:
            self.periods.append(ActivePeriod(on))

    def stop(self, on: date) -> None:
        """Suspended or left: the open period ends the day before ``on``."""
        if self.is_open:
            current = self.periods[-1]
            self.periods[-1] = ActivePeriod(current.starts_on, max(on, current.starts_on))

    def apply(self, event: EventData) -> None:
        match event:
            case MemberJoined(joined_on=on) | MemberReinstated(reinstated_on=on):
                self.start(on)
            case MemberSuspended(suspended_on=on) | MemberLeft(left_on=on):
                self.stop(on)
            case _:
                pass  # transfers and detail changes do not change whether a member is active


class EligibilityView:
    """All members' standings, keyed by member id: what enrolment asks "active on that day?"."""

    def __init__(self, standings: dict[str, MemberStanding] | None = None) -> None:
        self.standings = standings or {}

    def apply(self, event: EventData) -> None:
        member_id = getattr(event, "member_id", None)
        if member_id is None:
            return
        standing = self.standings.setdefault(member_id, MemberStanding(member_id))
        standing.apply(event)

    def active_on(self, member_id: str, day: date) -> bool:
        standing = self.standings.get(member_id)
        return standing is not None and standing.active_on(day)


def _joins(run: Run) -> list[list[str]]:
    joins = [(e, envelope.id) for e, envelope in run if isinstance(e, MemberJoined)]
    return [
        [event_id for _, event_id in joins],
        [e.member_id for e, _ in joins],
        [e.union_id for e, _ in joins],
        [e.joined_on.isoformat() for e, _ in joins],
    ]


# A run of joins (a roster's, or an online join alone) as one statement: joining opens an active
# period unless one is open (MemberStanding.start) and ends no cover, so nothing but the members
# is written and no event follows. Periods are stored as [[starts_on, ends_on or null], ...].
# Rows are written in member id order, the order every other batch locks members in.
JOINED = Statement(
    "INSERT INTO members (member_id, union_id, periods)"
    " SELECT j.member_id, j.union_id, jsonb_build_array(jsonb_build_array(j.joined_on, null))"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
    " AS j(event_id, member_id, union_id, joined_on)"
    " WHERE j.event_id IN (SELECT event_id FROM fresh) ORDER BY j.member_id"
    " ON CONFLICT (member_id) DO UPDATE SET"
    " union_id = coalesce(excluded.union_id, members.union_id),"
    # The last period's end is JSON null while it is open (SQL NULL when there is none).
    " periods = CASE WHEN members.periods -> -1 -> 1 = 'null'::jsonb THEN members.periods"
    " ELSE members.periods || excluded.periods END, updated_at = now()",
    _joins,
)
