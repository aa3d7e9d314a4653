"""SQL for broadcasts: the requests, their fan-out cursor and counts, and their segments' members.

A broadcast's row holds its template and texts as requested, the cursor the fan-out has reached
in member-id order, and how many members it examined and skipped (and why); its deliveries are
rows of ``deliveries`` carrying its id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.notifications.broadcast import Audience, Segment, SegmentMember, broadcast_rule
from services.notifications.domain import Binding, Preferences, SkipReason
from services.notifications.repository import UNKNOWN_CONTEXT
from services.notifications.rules import Rule, Template

_SEGMENT = (
    "m.status = 'active' AND ($1::text IS NULL OR m.union_id = $1 OR m.union_path @> ARRAY[$1])"
    " AND ($2::text IS NULL OR m.categories @> ARRAY[$2])"
)


@dataclass(frozen=True)
class BroadcastSearch:
    status: str | None = None
    template: str | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None


@dataclass(frozen=True)
class NewBroadcast:
    template: Template
    data: Mapping[str, str]
    url: str | None
    segment: Segment
    mandatory: bool


def segment_of(b: asyncpg.Record) -> Segment:
    return Segment(union_id=b["segment_union_id"], member_category=b["segment_category"])


def rule_of(b: asyncpg.Record) -> Rule:
    template = Template(b["template_name"], b["template_id"], tuple(b["template_keys"]))
    return broadcast_rule(template, b["data"], b["url"], b["mandatory"])


class Broadcasts:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, new: NewBroadcast, now: datetime) -> UUID:
        """The broadcast, planning, with the segment's size as it is now."""
        segment = new.segment
        audience = await self.conn.fetchval(
            f"SELECT count(*) FROM members m WHERE {_SEGMENT}",
            segment.union_id,
            segment.member_category,
        )
        broadcast_id: UUID = await self.conn.fetchval(
            "INSERT INTO broadcasts (segment_union_id, segment_category, template_name,"
            " template_id, template_keys, data, url, mandatory, audience, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            segment.union_id,
            segment.member_category,
            new.template.name,
            new.template.template_id,
            list(new.template.keys),
            dict(new.data),
            new.url,
            new.mandatory,
            audience,
            now,
        )
        return broadcast_id

    async def get(self, broadcast_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT * FROM broadcasts WHERE id = $1" + (" FOR UPDATE" if lock else ""),
            broadcast_id,
        )

    async def find(self, search: BroadcastSearch, offset: int, limit: int) -> list[asyncpg.Record]:
        """Newest first."""
        return await self.conn.fetch(
            "SELECT * FROM broadcasts WHERE ($1::text IS NULL OR status = $1)"
            " AND ($2::text IS NULL OR template_name = $2)"
            " AND ($3::timestamptz IS NULL OR created_at >= $3)"
            " AND ($4::timestamptz IS NULL OR created_at < $4)"
            " ORDER BY created_at DESC, id OFFSET $5 LIMIT $6",
            search.status,
            search.template,
            search.created_since,
            search.created_until,
            offset,
            limit,
        )

    async def counts(self, broadcast_ids: Sequence[UUID]) -> dict[UUID, dict[str, int]]:
        """Each broadcast's deliveries by status."""
        counts: dict[UUID, dict[str, int]] = {b: {} for b in broadcast_ids}
        for row in await self.conn.fetch(
            "SELECT broadcast_id, status, count(*) FROM deliveries WHERE broadcast_id = ANY($1)"
            " GROUP BY broadcast_id, status",
            list(broadcast_ids),
        ):
            counts[row["broadcast_id"]][row["status"]] = row["count"]
        return counts

    async def cancel(self, broadcast_id: UUID, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE broadcasts SET status = 'cancelled', finished_at = $2 WHERE id = $1",
            broadcast_id,
            now,
        )

    async def next_planning(self) -> asyncpg.Record | None:
        """The oldest broadcast still fanning out that no other worker holds, locked."""
        return await self.conn.fetchrow(
            "SELECT * FROM broadcasts WHERE status = 'planning' ORDER BY created_at"
            " LIMIT 1 FOR UPDATE SKIP LOCKED"
        )

    async def members(self, b: asyncpg.Record, limit: int) -> list[SegmentMember]:
        """The next members of the broadcast's segment after its cursor, in member-id order."""
        segment = segment_of(b)
        rows = await self.conn.fetch(
            "SELECT m.member_id, m.name, m.union_id, m.union_path, m.categories,"
            " o.name AS union_name, bd.openid, bd.unreachable_errcode, p.opted_out"
            " FROM members m LEFT JOIN bindings bd ON bd.member_id = m.member_id"
            " LEFT JOIN preferences p ON p.member_id = m.member_id"
            " LEFT JOIN organisations o ON o.organisation_id = m.union_id"
            f" WHERE {_SEGMENT} AND m.member_id > $3 ORDER BY m.member_id LIMIT $4",
            segment.union_id,
            segment.member_category,
            b["cursor"],
            limit,
        )
        return [_segment_member(m) for m in rows]

    async def advance(
        self,
        broadcast_id: UUID,
        cursor: str,
        examined: int,
        skipped: Mapping[SkipReason, int],
        done: bool,
        now: datetime,
    ) -> None:
        """Move the cursor past a batch, in the batch's transaction: a crash resumes after it."""
        await self.conn.execute(
            "UPDATE broadcasts SET cursor = $2, examined = examined + $3,"
            " skipped_no_binding = skipped_no_binding + $4,"
            " skipped_no_channel = skipped_no_channel + $5,"
            " skipped_opted_out = skipped_opted_out + $6,"
            " status = CASE WHEN $7 THEN 'sending' ELSE status END,"
            " planned_at = CASE WHEN $7 THEN $8 ELSE planned_at END WHERE id = $1",
            broadcast_id,
            cursor,
            examined,
            skipped.get(SkipReason.NO_BINDING, 0),
            skipped.get(SkipReason.NO_CHANNEL, 0),
            skipped.get(SkipReason.OPTED_OUT, 0),
            done,
            now,
        )

    async def finished(self) -> list[asyncpg.Record]:
        """Sending broadcasts with nothing left to send, locked."""
        return await self.conn.fetch(
            "SELECT * FROM broadcasts b WHERE status = 'sending' AND NOT EXISTS ("
            " SELECT 1 FROM deliveries d WHERE d.broadcast_id = b.id"
            " AND d.status IN ('pending', 'sending')) FOR UPDATE SKIP LOCKED"
        )

    async def settled(self, broadcast_id: UUID) -> tuple[dict[str, int], datetime | None]:
        """The broadcast's deliveries by status, and when the last of them was settled."""
        rows = await self.conn.fetch(
            "SELECT status, count(*), max(updated_at) AS last FROM deliveries"
            " WHERE broadcast_id = $1 GROUP BY status",
            broadcast_id,
        )
        return {r["status"]: r["count"] for r in rows}, max((r["last"] for r in rows), default=None)

    async def complete(self, broadcast_id: UUID, finished_at: datetime) -> None:
        await self.conn.execute(
            "UPDATE broadcasts SET status = 'completed', finished_at = $2 WHERE id = $1",
            broadcast_id,
            finished_at,
        )


def _segment_member(m: asyncpg.Record) -> SegmentMember:
    member_id = m["member_id"]
    binding = None
    if m["openid"] is not None:
        binding = Binding(member_id, m["openid"], m["unreachable_errcode"])
    preferences = None
    if m["opted_out"] is not None:
        preferences = Preferences(member_id, frozenset(m["opted_out"]))
    return SegmentMember(
        Audience(member_id, m["union_id"], tuple(m["union_path"]), frozenset(m["categories"])),
        binding,
        preferences,
        {
            "member_name": m["name"],
            "union_name": m["union_name"] or UNKNOWN_CONTEXT["union_name"],
        },
    )
