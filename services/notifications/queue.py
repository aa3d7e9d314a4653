"""The delivery queue's SQL: claiming due rows under a lease, and recording what became of them.

A claim moves rows from ``pending`` to ``sending`` with ``FOR UPDATE SKIP LOCKED`` (workers never
wait on each other or take the same row) and a lease: a row still ``sending`` when its lease ends
belonged to a worker that died, and is claimed again as "in doubt". A result is recorded only by
the lease that claimed the row, so a worker that was merely slow cannot overwrite a newer attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications.repository import WAKE_CHANNEL
from shared.db import lock_key

_CLAIMED = (
    "d.id, d.event_id, d.event_type, d.rule, d.category, d.recipient, d.template_id,"
    " d.client_msg_id, d.message, d.trace_headers, d.broadcast_id, d.attempts,"
    " b.openid AS binding_openid,"
    " b.unreachable_errcode"
)
_TAKE = (
    " UPDATE deliveries d SET status = 'sending', lease_id = $3, lease_until = $4,"
    " attempts = d.attempts + 1, attempted_at = $1, updated_at = $1, openid = b.openid"
    " FROM due LEFT JOIN bindings b ON b.member_id = due.recipient WHERE d.id = due.id"
)


@dataclass(frozen=True)
class Claimed:
    id: int
    event_id: str
    event_type: str
    rule: str
    category: str
    recipient: str
    template_id: str
    client_msg_id: str
    message: dict[str, Any]
    trace_headers: dict[str, str] | None
    broadcast_id: UUID | None
    attempts: int
    # The member's binding now (not when the event came): a member who unbound or unfollowed
    # since is not written to.
    binding_openid: str | None
    unreachable_errcode: int | None
    # Set when a crashed worker had claimed the row: when it tried, and the openid it used.
    in_doubt_since: datetime | None = None
    previous_openid: str | None = None


async def claim_in_doubt(
    conn: asyncpg.Connection, now: datetime, limit: int, lease: UUID, lease_until: datetime
) -> list[Claimed]:
    rows = await conn.fetch(
        "WITH due AS (SELECT id, recipient, attempted_at, openid FROM deliveries"
        " WHERE status = 'sending' AND lease_until < $1 ORDER BY lease_until LIMIT $2"
        " FOR UPDATE SKIP LOCKED)"
        + _TAKE
        + f" RETURNING {_CLAIMED}, due.attempted_at AS in_doubt_since,"
        " due.openid AS previous_openid",
        now,
        limit,
        lease,
        lease_until,
    )
    return [Claimed(**dict(r)) for r in rows]


async def claim_due(
    conn: asyncpg.Connection, now: datetime, limit: int, lease: UUID, lease_until: datetime
) -> list[Claimed]:
    rows = await conn.fetch(
        "WITH due AS (SELECT id, recipient FROM deliveries"
        " WHERE status = 'pending' AND next_attempt_at <= $1"
        " ORDER BY priority, next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)"
        + _TAKE
        + f" RETURNING {_CLAIMED}",
        now,
        limit,
        lease,
        lease_until,
    )
    return sorted((Claimed(**dict(r)) for r in rows), key=lambda c: c.id)


@dataclass(frozen=True)
class Outcome:
    """What to record for one claimed row."""

    id: int
    status: str
    reason: str | None = None
    errcode: int | None = None
    errmsg: str | None = None
    msgid: int | None = None
    next_attempt_at: datetime | None = None
    # -1 for a row given back unsent (a pause, no channel): the claim counted an attempt.
    attempts_delta: int = 0
    # WeChat has just said the member cannot be reached: mark the binding, tell other services.
    newly_unreachable: bool = False


@dataclass(frozen=True)
class Recorded:
    id: int
    status: str
    recipient: str
    openid: str | None
    broadcast_id: UUID | None
    event_id: str
    rule: str
    category: str
    template_id: str
    msgid: int | None


async def record(
    conn: asyncpg.Connection, lease: UUID, outcomes: Sequence[Outcome], now: datetime
) -> list[Recorded]:
    """Write every outcome in one statement; then apply delivery reports that arrived before
    the msgid was known (WeChat can report faster than we record)."""
    if not outcomes:
        return []
    await lock_msgids(conn, [o.msgid for o in outcomes if o.msgid is not None])
    columns = list(
        zip(
            *(
                (
                    o.id,
                    o.status,
                    o.reason,
                    o.errcode,
                    o.errmsg,
                    o.msgid,
                    o.next_attempt_at,
                    o.attempts_delta,
                )
                for o in outcomes
            ),
            strict=True,
        )
    )
    rows = await conn.fetch(
        "UPDATE deliveries d SET status = u.status, reason = coalesce(u.reason, d.reason),"
        " errcode = coalesce(u.errcode, d.errcode), errmsg = coalesce(u.errmsg, d.errmsg),"
        " msgid = coalesce(u.msgid, d.msgid),"
        " next_attempt_at = coalesce(u.next_at, d.next_attempt_at),"
        " attempts = d.attempts + u.delta, lease_id = NULL, lease_until = NULL,"
        " sent_at = CASE WHEN u.status = 'sent' THEN $10 ELSE d.sent_at END, updated_at = $10"
        " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[],"
        " $7::timestamptz[], $8::int[]) AS u(id, status, reason, errcode, errmsg, msgid, next_at,"
        " delta) WHERE d.id = u.id AND d.lease_id = $9"
        " RETURNING d.id, d.status, d.recipient, d.openid, d.broadcast_id, d.event_id, d.rule,"
        " d.category, d.template_id, d.msgid",
        *columns,
        lease,
        now,
    )
    sent = [r["id"] for r in rows if r["status"] == "sent"]
    if sent:
        await apply_reports(conn, sent)
    return [Recorded(**dict(r)) for r in rows]


async def lock_msgids(conn: asyncpg.Connection, msgids: Sequence[int]) -> None:
    """Take turns with the report writer on these msgids, until the transaction ends.

    Recording a msgid and recording its report are two transactions that may run at once: each
    would miss the other's uncommitted row, the report would match no delivery and the delivery
    would wait for a report already received. Holding the msgid's lock, whichever commits second
    sees the first. Sorted, so two holders of several never deadlock.
    """
    if msgids:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k ORDER BY k",
            sorted({lock_key(f"wechat msgid {m}") for m in msgids}),  # the one derivation
        )


async def apply_reports(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute(
        "UPDATE deliveries d SET report_status = r.status, reported_at = r.received_at,"
        " status = CASE WHEN r.status = 'success' THEN 'delivered' ELSE 'failed' END"
        " FROM delivery_reports r WHERE d.id = ANY($1) AND r.msgid = d.msgid",
        ids,
    )


async def orphan_report(
    conn: asyncpg.Connection, openid: str, since: datetime, taken: Sequence[int] = ()
) -> tuple[int, str] | None:
    """A delivery report for this openid, received since ``since``, that no delivery claims: what
    WeChat says became of a send whose worker died before it recorded the msgid."""
    row = await conn.fetchrow(
        "SELECT r.msgid, r.status FROM delivery_reports r WHERE r.openid = $1"
        " AND r.received_at >= $2"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msgid = r.msgid)"
        " AND r.msgid <> ALL($3::bigint[]) ORDER BY r.received_at LIMIT 1",
        openid,
        since,
        list(taken),
    )
    return None if row is None else (row["msgid"], row["status"])


@dataclass(frozen=True)
class Withdrawn:
    """What changed since rows were claimed that means they must not be sent after all."""

    cancelled_broadcasts: frozenset[UUID] = frozenset()
    # Member -> errcode, for members WeChat (or an unsubscribe push) said cannot be reached.
    unreachable: Mapping[str, int] = field(default_factory=dict)


async def withdrawn_since(pool: asyncpg.Pool, since: datetime) -> Withdrawn:
    cancelled = await pool.fetch(
        "SELECT id FROM broadcasts WHERE status = 'cancelled' AND finished_at > $1", since
    )
    unreachable = await pool.fetch(
        "SELECT member_id, unreachable_errcode FROM bindings WHERE unreachable_at > $1", since
    )
    return Withdrawn(
        frozenset(r["id"] for r in cancelled),
        {r["member_id"]: r["unreachable_errcode"] for r in unreachable},
    )


async def waiting(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT status, count(*) FROM deliveries WHERE status IN ('pending', 'sending')"
        " GROUP BY status"
    )
    return {r["status"]: r["count"] for r in rows}


async def promote_bound(pool: asyncpg.Pool, now: datetime, bound_since: datetime) -> int:
    """Messages still waiting although their member has bound WeChat: the event and the binding
    came at the same moment, each transaction unable to see the other's row. Only bindings made
    within the waiting period can have such messages, so only those are looked at."""
    rows = await pool.fetch(
        "UPDATE deliveries d SET status = 'pending', next_attempt_at = $1, updated_at = $1"
        " FROM bindings b WHERE b.bound_at >= $2 AND d.recipient = b.member_id"
        " AND d.status = 'awaiting_binding' AND d.next_attempt_at > $1 RETURNING d.id",
        now,
        bound_since,
    )
    if rows:
        await pool.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
    return len(rows)


async def expire_awaiting(pool: asyncpg.Pool, now: datetime) -> int:
    """Messages whose member did not bind WeChat in time: undeliverable, never tried."""
    result: str = await pool.execute(
        "UPDATE deliveries SET status = 'undeliverable', reason = 'no_binding', updated_at = $1"
        " WHERE status = 'awaiting_binding' AND next_attempt_at <= $1",
        now,
    )
    return int(result.split()[-1])
