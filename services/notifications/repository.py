"""SQL for the notifications schema."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from services.notifications.domain import Binding, Preferences
from shared.consumer import Run, Statement
from shared.events.membership import MemberJoined
from shared.uow import Track, untracked

# Events from other topics can overtake membership's (no order across topics), so a message may be
# rendered before its member is known here: it then says "member" and "your union", not nothing.
UNKNOWN_CONTEXT = {"member_name": "会员", "union_name": "所在工会"}


@dataclass(frozen=True)
class Recipient:
    """What this service knows of a message's recipient."""

    member_id: str
    binding: Binding | None
    preferences: Preferences | None
    context: dict[str, str]


# NOTIFYed when deliveries are waiting, so idle senders start at once instead of at their next poll.
# Channels are per database; each service has its own schema there, and this name is the schema's.
WAKE_CHANNEL = "notifications_deliveries"


def _joins(run: Run) -> list[list[str]]:
    joins = [(e, envelope.id) for e, envelope in run if isinstance(e, MemberJoined)]
    return [
        [event_id for _, event_id in joins],
        [j.member_id for j, _ in joins],
        [j.name for j, _ in joins],
        [j.union_id for j, _ in joins],
        [orjson.dumps(j.union_path).decode() for j, _ in joins],
        [orjson.dumps(j.categories).decode() for j, _ in joins],
        [j.card_number for j, _ in joins],
    ]


# The directory's rows of a run of joins, one statement for all (each member at most once: a row
# cannot be upserted twice), only for the events in ``fresh`` (see shared.consumer.Statement).
JOINED = Statement(
    "INSERT INTO members (member_id, name, union_id, union_path, categories, card_number,"
    " status) SELECT j.id, j.name, j.union_id,"
    # Lists as JSON text: asyncpg would take a list of lists for a two-dimensional array.
    " ARRAY(SELECT jsonb_array_elements_text(j.path::jsonb)),"
    " ARRAY(SELECT jsonb_array_elements_text(j.categories::jsonb)), j.card_number,"
    " 'active' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::text[], $7::text[])"
    " AS j(event_id, id, name, union_id, path, categories, card_number)"
    " WHERE j.event_id IN (SELECT event_id FROM fresh)"
    " ON CONFLICT (member_id) DO UPDATE SET name = excluded.name,"
    " union_id = excluded.union_id, union_path = excluded.union_path,"
    " categories = excluded.categories, card_number = excluded.card_number,"
    " status = 'active', updated_at = now()",
    _joins,
)


class MemberDirectory:
    """Members as this service knows them from membership events."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def update(self, member_id: str, **fields: object) -> None:
        assigns = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=2))
        await self.conn.execute(
            f"UPDATE members SET {assigns}, updated_at = now() WHERE member_id = $1",
            member_id,
            *fields.values(),
        )

    async def get(self, member_id: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow("SELECT * FROM members WHERE member_id = $1", member_id)

    async def knows(self, member_id: str) -> bool:
        """Whether membership's events have told this service of the member (any status)."""
        return bool(
            await self.conn.fetchval("SELECT true FROM members WHERE member_id = $1", member_id)
        )

    async def recipients(self, member_ids: Collection[str]) -> dict[str, Recipient]:
        """Binding, choices and what a message may say (name, union) of each member, in one
        round trip: asked for every followed event, a roster import's and each online join's."""
        rows = await self.conn.fetch(
            "SELECT m.id, b.member_id, b.openid, b.unreachable_errcode, b.bound_at, p.opted_out,"
            " d.name, o.name AS union_name FROM unnest($1::text[]) AS m(id)"
            " LEFT JOIN bindings b ON b.member_id = m.id"
            " LEFT JOIN preferences p ON p.member_id = m.id"
            " LEFT JOIN members d ON d.member_id = m.id"
            " LEFT JOIN organisations o ON o.organisation_id = d.union_id",
            list(member_ids),
        )
        found: dict[str, Recipient] = {}
        for row in rows:
            member_id, opted_out = row["id"], row["opted_out"]
            context = dict(UNKNOWN_CONTEXT)
            if row["name"] is not None:
                context["member_name"] = row["name"]
            if row["union_name"]:
                context["union_name"] = row["union_name"]
            found[member_id] = Recipient(
                member_id,
                _binding(row) if row["member_id"] is not None else None,
                None if opted_out is None else Preferences(member_id, frozenset(opted_out)),
                context,
            )
        return found


class Organisations:
    """Unions as this service knows them from membership events: for their names."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def put(
        self, organisation_id: str, name: str, parent_id: str | None, path: list[str]
    ) -> None:
        await self.conn.execute(
            "INSERT INTO organisations (organisation_id, name, parent_id, path)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (organisation_id) DO UPDATE"
            " SET name = $2, parent_id = $3, path = $4, updated_at = now()",
            organisation_id,
            name,
            parent_id,
            path,
        )

    async def dissolved(self, organisation_id: str, on: date) -> None:
        await self.conn.execute(
            "UPDATE organisations SET dissolved_on = $2, updated_at = now()"
            " WHERE organisation_id = $1",
            organisation_id,
            on,
        )


class Bindings:
    """Members' WeChat bindings: the aggregates whose events (RecipientUnreachable) the unit of
    work that saved them sends."""

    def __init__(self, conn: asyncpg.Connection, track: Track = untracked) -> None:
        self.conn = conn
        self.track = track

    async def get(self, member_id: str) -> Binding | None:
        row = await self.conn.fetchrow("SELECT * FROM bindings WHERE member_id = $1", member_id)
        return _binding(row)

    async def find(
        self,
        *,
        member_id: str | None,
        openid: str | None,
        reachable: bool | None,
        bound_since: datetime | None,
        bound_until: datetime | None,
        offset: int,
        limit: int,
    ) -> list[Binding]:
        rows = await self.conn.fetch(
            "SELECT * FROM bindings WHERE ($1::text IS NULL OR member_id = $1)"
            " AND ($2::text IS NULL OR openid = $2)"
            " AND ($3::boolean IS NULL OR (unreachable_errcode IS NULL) = $3)"
            " AND ($4::timestamptz IS NULL OR bound_at >= $4)"
            " AND ($5::timestamptz IS NULL OR bound_at < $5)"
            " ORDER BY member_id OFFSET $6 LIMIT $7",
            member_id,
            openid,
            reachable,
            bound_since,
            bound_until,
            offset,
            limit,
        )
        return [b for b in map(_binding, rows) if b is not None]

    async def by_openid(self, openid: str, *, lock: bool = False) -> Binding | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM bindings WHERE openid = $1" + (" FOR UPDATE" if lock else ""), openid
        )
        return _binding(row)

    async def bind(self, member_id: str, openid: str, now: datetime) -> tuple[Binding, str | None]:
        """Bind (or re-bind) the member; the openid moves from any member it was bound to, whose
        id is returned: the OAuth login that calls this is the latest word on who holds it."""
        previous = await self.conn.fetchval(
            "DELETE FROM bindings WHERE openid = $1 AND member_id <> $2 RETURNING member_id",
            openid,
            member_id,
        )
        row = await self.conn.fetchrow(
            "INSERT INTO bindings (member_id, openid, bound_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (member_id) DO UPDATE SET openid = $2, bound_at = $3,"
            " unreachable_errcode = NULL, unreachable_reason = NULL, unreachable_at = NULL"
            " RETURNING *",
            member_id,
            openid,
            now,
        )
        binding = _binding(row)
        assert binding is not None
        return binding, previous

    async def unbind(self, member_id: str) -> bool:
        return bool(
            await self.conn.fetchval(
                "DELETE FROM bindings WHERE member_id = $1 RETURNING true", member_id
            )
        )

    async def close(self, binding: Binding, now: datetime) -> bool:
        """Save a binding WeChat said is unreachable. True when this changed the row (it was
        reachable at that openid): only then do its events go out, so other services hear once,
        not once per failed message."""
        changed = bool(
            await self.conn.fetchval(
                "UPDATE bindings SET unreachable_errcode = $3, unreachable_reason = $4,"
                " unreachable_at = $5 WHERE member_id = $1 AND openid = $2"
                " AND unreachable_errcode IS NULL RETURNING true",
                binding.member_id,
                binding.openid,
                binding.unreachable_errcode,
                binding.unreachable_reason,
                now,
            )
        )
        if changed:
            self.track(binding)
        return changed

    async def mark_reachable(self, openid: str) -> bool:
        return bool(
            await self.conn.fetchval(
                "UPDATE bindings SET unreachable_errcode = NULL, unreachable_reason = NULL,"
                " unreachable_at = NULL WHERE openid = $1 AND unreachable_errcode IS NOT NULL"
                " RETURNING true",
                openid,
            )
        )


def _binding(row: asyncpg.Record | None) -> Binding | None:
    if row is None:
        return None
    return Binding(
        row["member_id"],
        row["openid"],
        row["unreachable_errcode"],
        row["bound_at"],
        row.get("unreachable_reason"),
    )


class PreferenceStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, member_id: str) -> Preferences | None:
        opted_out = await self.conn.fetchval(
            "SELECT opted_out FROM preferences WHERE member_id = $1", member_id
        )
        return None if opted_out is None else Preferences(member_id, frozenset(opted_out))

    async def put(self, preferences: Preferences) -> None:
        await self.conn.execute(
            "INSERT INTO preferences (member_id, opted_out) VALUES ($1, $2)"
            " ON CONFLICT (member_id) DO UPDATE SET opted_out = $2, updated_at = now()",
            preferences.member_id,
            sorted(preferences.opted_out),
        )


@dataclass(frozen=True)
class NewDelivery:
    event_id: str
    event_type: str
    rule: str
    category: str
    recipient: str
    template_id: str
    client_msg_id: str
    status: str
    reason: str | None = None
    errcode: int | None = None
    errmsg: str | None = None
    # {"data": ..., "url": ...}: what will be sent, when status is pending.
    message: dict[str, Any] | None = None
    broadcast_id: UUID | None = None
    priority: int = 0
    trace_headers: dict[str, str] | None = None
    # When it is due (pending), or when waiting for a binding ends (awaiting_binding).
    next_attempt_at: datetime | None = None


def _row(d: NewDelivery) -> tuple[Any, ...]:
    return tuple(getattr(d, name) for name in _FIELDS)


_FIELDS = tuple(f.name for f in fields(NewDelivery))
_SELECTED = ", ".join(f"u.{name}" for name in _FIELDS if name != "next_attempt_at")
_NEW_COLUMNS = ", ".join(name for name in _FIELDS if name != "next_attempt_at")


class Deliveries:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, deliveries: list[NewDelivery], now: datetime) -> int:
        """Insert the rows that are new; one already there (a redelivered event, a resumed
        fan-out) is left as it is. Returns how many are new and waiting to be sent."""
        if not deliveries:
            return 0
        # Not dataclasses.astuple: it deep-copies every message, a fan-out's largest cost.
        columns = list(zip(*(_row(d) for d in deliveries), strict=True))
        # The senders' wake-up goes in the same statement, only when something is pending: a
        # round trip of its own was one more per consumer batch (per event at online rates).
        return int(
            await self.conn.fetchval(
                f"WITH added AS (INSERT INTO deliveries ({_NEW_COLUMNS}, next_attempt_at,"
                f" created_at, updated_at) SELECT {_SELECTED}, coalesce(u.next_at, $17), $17, $17"
                " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
                " $6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[],"
                " $12::jsonb[], $13::uuid[], $14::smallint[], $15::jsonb[], $16::timestamptz[])"
                " AS u(event_id, event_type, rule, category, recipient, template_id,"
                " client_msg_id, status, reason, errcode, errmsg, message, broadcast_id, priority,"
                " trace_headers, next_at)"
                " ON CONFLICT (event_id, recipient, template_id) DO NOTHING RETURNING status),"
                " counted AS (SELECT count(*) FILTER (WHERE status = 'pending') AS pending"
                " FROM added)"
                " SELECT pending FROM counted, LATERAL (SELECT count(*) FROM"
                " (SELECT pg_notify($18, '') WHERE counted.pending > 0) AS n) AS woke",
                *columns,
                now,
                WAKE_CHANNEL,
            )
        )

    async def release_awaiting(self, member_id: str, now: datetime) -> int:
        """The member has bound WeChat: what waited for it (and has not waited too long) goes."""
        released = await self.conn.fetch(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, updated_at = $2"
            " WHERE recipient = $1 AND status = 'awaiting_binding' AND next_attempt_at > $2"
            " RETURNING id",
            member_id,
            now,
        )
        if released:
            await self.conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
        return len(released)

    async def withdraw(self, broadcast_id: UUID, now: datetime) -> None:
        """A cancelled broadcast's messages not yet sent. Rows a worker holds ('sending') finish;
        the rest never go."""
        await self.conn.execute(
            "UPDATE deliveries SET status = 'cancelled', updated_at = $2"
            " WHERE broadcast_id = $1 AND status = 'pending'",
            broadcast_id,
            now,
        )

    async def get(self, delivery_id: int) -> asyncpg.Record | None:
        return await self.conn.fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)

    async def find(
        self, search: DeliverySearch, *, after_id: int | None, limit: int
    ) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT * FROM deliveries WHERE ($1::text IS NULL OR recipient = $1)"
            " AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR broadcast_id = $3)"
            " AND ($4::text IS NULL OR event_type = $4)"
            " AND ($5::text IS NULL OR template_id = $5) AND ($6::text IS NULL OR rule = $6)"
            " AND ($7::text IS NULL OR category = $7)"
            " AND ($8::timestamptz IS NULL OR created_at >= $8)"
            " AND ($9::timestamptz IS NULL OR created_at < $9)"
            " AND ($10::bigint IS NULL OR id > $10) ORDER BY id LIMIT $11",
            search.member_id,
            search.status,
            search.broadcast_id,
            search.event_type,
            search.template_id,
            search.rule,
            search.category,
            search.created_since,
            search.created_until,
            after_id,
            limit,
        )


@dataclass(frozen=True)
class DeliverySearch:
    """What staff look for deliveries by; each filter that is set must hold."""

    member_id: str | None = None
    status: str | None = None
    broadcast_id: UUID | None = None
    event_type: str | None = None
    template_id: str | None = None
    rule: str | None = None
    category: str | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None
