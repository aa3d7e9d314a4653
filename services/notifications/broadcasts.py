"""Broadcasts: an announcement to a segment, fanned out into deliveries in batches.

Staff name a template from rules.yaml and fill its keys (placeholders: ``{member_name}``,
``{union_name}``). The fan-out walks the segment's members in member-id order, a batch per
transaction; each batch inserts its deliveries and moves the broadcast's cursor in the same
commit, so a crash resumes after the last committed member and nobody is written twice (the
deliveries' unique key would refuse it anyway). Deliveries of broadcasts go behind messages caused
by events, at the shared pace. Cancelling stops the fan-out and withdraws what was not yet sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications.broadcast import (
    Audience,
    BroadcastProgress,
    BroadcastStatus,
    Segment,
)
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
from services.notifications.repository import UNKNOWN_CONTEXT, Deliveries, NewDelivery
from services.notifications.rules import CONTEXT_FIELDS, Rule, Template
from services.notifications.views import BroadcastView, Skipped
from shared import outbox
from shared.errors import Conflict, DomainError, NotFound
from shared.events.notifications import BroadcastCompleted

log = logging.getLogger(__name__)
EVENT_TYPE = "gonghui.notifications.broadcast"
CATEGORY = "announcements"
OPEN_BROADCAST = (BroadcastStatus.PLANNING, BroadcastStatus.SENDING)
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


_SEGMENT_SQL = (
    "m.status = 'active' AND ($1::text IS NULL OR m.union_id = $1 OR m.union_path @> ARRAY[$1])"
    " AND ($2::text IS NULL OR m.categories @> ARRAY[$2])"
)


async def create(
    conn: asyncpg.Connection,
    template: Template,
    data: Mapping[str, str],
    url: str | None,
    segment: Segment,
    mandatory: bool,
    now: datetime,
) -> UUID:
    broadcast_rule(template, data, url, mandatory)  # refuse now what could not be rendered later
    audience = await conn.fetchval(
        f"SELECT count(*) FROM members m WHERE {_SEGMENT_SQL}",
        segment.union_id,
        segment.member_category,
    )
    broadcast_id: UUID = await conn.fetchval(
        "INSERT INTO broadcasts (segment_union_id, segment_category, template_name, template_id,"
        " template_keys, data, url, mandatory, audience, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        segment.union_id,
        segment.member_category,
        template.name,
        template.template_id,
        list(template.keys),
        dict(data),
        url,
        mandatory,
        audience,
        now,
    )
    return broadcast_id


async def cancel(conn: asyncpg.Connection, broadcast_id: UUID, now: datetime) -> None:
    async with conn.transaction():
        status = await conn.fetchval(
            "SELECT status FROM broadcasts WHERE id = $1 FOR UPDATE", broadcast_id
        )
        if status is None:
            raise NotFound("broadcast_id", "unknown_broadcast", f"no broadcast {broadcast_id}")
        if status not in OPEN_BROADCAST:
            raise Conflict(
                "broadcast_id",
                "broadcast_closed",
                f"the broadcast is already {status}: nothing is left to cancel",
                broadcast_status=status,
            )
        await conn.execute(
            "UPDATE broadcasts SET status = 'cancelled', finished_at = $2 WHERE id = $1",
            broadcast_id,
            now,
        )
        # Rows a worker holds ('sending') finish; the rest never go.
        await conn.execute(
            "UPDATE deliveries SET status = 'cancelled', updated_at = $2"
            " WHERE broadcast_id = $1 AND status = 'pending'",
            broadcast_id,
            now,
        )


async def progress(conn: asyncpg.Connection, broadcast_id: UUID, pace: Pace) -> BroadcastView:
    b = await conn.fetchrow("SELECT * FROM broadcasts WHERE id = $1", broadcast_id)
    if b is None:
        raise NotFound("broadcast_id", "unknown_broadcast", f"no broadcast {broadcast_id}")
    return (await _views(conn, [b], pace))[0]


async def find(
    conn: asyncpg.Connection, search: BroadcastSearch, offset: int, limit: int, pace: Pace
) -> list[BroadcastView]:
    """Broadcasts newest first, with their progress."""
    rows = await conn.fetch(
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
    return await _views(conn, rows, pace)


@dataclass(frozen=True)
class BroadcastSearch:
    status: str | None = None
    template: str | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None


@dataclass(frozen=True)
class Pace:
    """What an expected finish is reckoned from: now, the shared rate, and any pause."""

    now: datetime
    rate_per_second: float
    resumes_at: datetime | None


async def _views(
    conn: asyncpg.Connection, broadcasts: list[asyncpg.Record], pace: Pace
) -> list[BroadcastView]:
    counts: dict[UUID, dict[str, int]] = {b["id"]: {} for b in broadcasts}
    for row in await conn.fetch(
        "SELECT broadcast_id, status, count(*) FROM deliveries WHERE broadcast_id = ANY($1)"
        " GROUP BY broadcast_id, status",
        list(counts),
    ):
        counts[row["broadcast_id"]][row["status"]] = row["count"]
    return [_view(b, counts[b["id"]], pace) for b in broadcasts]


def _view(b: asyncpg.Record, counts: Mapping[str, int], pace: Pace) -> BroadcastView:
    queued = sum(counts.values())
    # Members the fan-out has yet to reach count as queued: they are the bulk of what remains.
    unplanned = max(b["audience"] - b["examined"], 0) if b["status"] == "planning" else 0
    sent = sum(counts.get(s, 0) for s in SENT)
    failed = sum(counts.get(s, 0) for s in FAILED)
    cancelled = counts.get("cancelled", 0)
    state = BroadcastProgress(queued + unplanned, sent, failed + cancelled)
    finish = None
    if b["status"] in OPEN_BROADCAST:
        start = max(pace.now, pace.resumes_at) if pace.resumes_at else pace.now
        finish = state.expected_finish(start, pace.rate_per_second * 60)
    return BroadcastView(
        id=b["id"],
        status=b["status"],
        segment=_segment(b).describe(),
        template=b["template_name"],
        mandatory=b["mandatory"],
        audience=b["audience"],
        queued=queued + unplanned,
        sent=sent,
        failed=failed,
        cancelled=cancelled,
        remaining=state.remaining,
        skipped=Skipped(
            no_binding=b["skipped_no_binding"],
            no_channel=b["skipped_no_channel"],
            opted_out=b["skipped_opted_out"],
            total=b["skipped_no_binding"] + b["skipped_no_channel"] + b["skipped_opted_out"],
        ),
        created_at=b["created_at"],
        finished_at=b["finished_at"],
        expected_finish=finish,
        paused_until=pace.resumes_at,
    )


def _segment(b: asyncpg.Record) -> Segment:
    return Segment(union_id=b["segment_union_id"], member_category=b["segment_category"])


def _rule(b: asyncpg.Record) -> Rule:
    template = Template(b["template_name"], b["template_id"], tuple(b["template_keys"]))
    return broadcast_rule(template, b["data"], b["url"], b["mandatory"])


@dataclass
class Fanout:
    """The worker that turns broadcasts into deliveries and closes finished ones."""

    pool: asyncpg.Pool
    events_topic: str
    clock: Callable[[], datetime]
    batch_size: int = 2000
    poll_seconds: float = 1.0

    async def run(self) -> None:
        while True:
            try:
                busy = await self.step()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("broadcast fan-out: database trouble (%r); retrying", exc)
                busy = False
            except Exception:
                # The batch rolled back and is retried; a bug must not stop every broadcast.
                log.exception("broadcast fan-out: a batch failed; retrying")
                busy = False
            if not busy:
                await asyncio.sleep(self.poll_seconds)

    async def step(self) -> bool:
        """One batch of one broadcast, or closing finished ones; False when idle."""
        async with self.pool.acquire() as conn, conn.transaction():
            b = await conn.fetchrow(
                "SELECT * FROM broadcasts WHERE status = 'planning' ORDER BY created_at"
                " LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
            if b is not None:
                await self._batch(conn, b)
                return True
        return await self._close_finished()

    async def _batch(self, conn: asyncpg.Connection, b: asyncpg.Record) -> None:
        segment, rule, now = _segment(b), _rule(b), self.clock()
        members = await conn.fetch(
            "SELECT m.member_id, m.name, m.union_id, m.union_path, m.categories,"
            " o.name AS union_name, bd.openid, bd.unreachable_errcode, p.opted_out"
            " FROM members m LEFT JOIN bindings bd ON bd.member_id = m.member_id"
            " LEFT JOIN preferences p ON p.member_id = m.member_id"
            " LEFT JOIN organisations o ON o.organisation_id = m.union_id"
            f" WHERE {_SEGMENT_SQL} AND m.member_id > $3 ORDER BY m.member_id LIMIT $4",
            segment.union_id,
            segment.member_category,
            b["cursor"],
            self.batch_size,
        )
        event_id = f"broadcast:{b['id']}"
        planned: list[NewDelivery] = []
        skipped = dict.fromkeys(SkipReason, 0)
        for m in members:
            audience = Audience(
                m["member_id"], m["union_id"], tuple(m["union_path"]), frozenset(m["categories"])
            )
            if not segment.includes(audience):
                continue
            decision = should_send(rule, _preferences(m), _binding(m))
            if not isinstance(decision, Send):
                skipped[decision.reason] += 1
                continue
            planned.append(self._delivery(rule, event_id, b["id"], m, decision.openid))
        await Deliveries(conn).add(planned, now)
        done = len(members) < self.batch_size
        await conn.execute(
            "UPDATE broadcasts SET cursor = $2, examined = examined + $3,"
            " skipped_no_binding = skipped_no_binding + $4,"
            " skipped_no_channel = skipped_no_channel + $5,"
            " skipped_opted_out = skipped_opted_out + $6,"
            " status = CASE WHEN $7 THEN 'sending' ELSE status END,"
            " planned_at = CASE WHEN $7 THEN $8 ELSE planned_at END WHERE id = $1",
            b["id"],
            members[-1]["member_id"] if members else b["cursor"],
            len(members),
            skipped[SkipReason.NO_BINDING],
            skipped[SkipReason.NO_CHANNEL],
            skipped[SkipReason.OPTED_OUT],
            done,
            now,
        )

    def _delivery(
        self, rule: Rule, event_id: str, broadcast_id: UUID, m: asyncpg.Record, openid: str
    ) -> NewDelivery:
        context = {
            "member_name": m["name"],
            "union_name": m["union_name"] or UNKNOWN_CONTEXT["union_name"],
        }
        template_id = rule.template.template_id
        base: dict[str, Any] = {
            "event_id": event_id,
            "event_type": EVENT_TYPE,
            "rule": rule.name,
            "category": rule.category,
            "recipient": m["member_id"],
            "template_id": template_id,
            "client_msg_id": client_msg_id(event_id, m["member_id"], template_id),
            "broadcast_id": broadcast_id,
            "priority": 1,
        }
        try:
            msg = render(
                rule, {"member_id": m["member_id"]}, context, event_id=event_id, openid=openid
            )
        except RenderError as e:
            return NewDelivery(**base, status="invalid", reason="render_error", errmsg=str(e))
        return NewDelivery(**base, status="pending", message={"data": msg.data, "url": msg.url})

    async def _close_finished(self) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            finished = await conn.fetch(
                "SELECT * FROM broadcasts b WHERE status = 'sending' AND NOT EXISTS ("
                " SELECT 1 FROM deliveries d WHERE d.broadcast_id = b.id"
                " AND d.status IN ('pending', 'sending')) FOR UPDATE SKIP LOCKED"
            )
            if not finished:
                return False
            now = self.clock()
            events = []
            for b in finished:
                rows = await conn.fetch(
                    "SELECT status, count(*), max(updated_at) AS last FROM deliveries"
                    " WHERE broadcast_id = $1 GROUP BY status",
                    b["id"],
                )
                counts = {r["status"]: r["count"] for r in rows}
                # It finished when its last message was settled, not when this poll noticed.
                last = max((r["last"] for r in rows), default=b["planned_at"] or now)
                await conn.execute(
                    "UPDATE broadcasts SET status = 'completed', finished_at = $2 WHERE id = $1",
                    b["id"],
                    last,
                )
                events.append(
                    BroadcastCompleted(
                        broadcast_id=str(b["id"]),
                        segment=_segment(b).describe(),
                        queued=sum(counts.values()),
                        sent=sum(counts.get(s, 0) for s in SENT),
                        failed=sum(counts.get(s, 0) for s in FAILED),
                        skipped=b["skipped_no_binding"]
                        + b["skipped_no_channel"]
                        + b["skipped_opted_out"],
                        completed_at=last,
                    )
                )
                log.info("broadcast %s completed: %s", b["id"], counts)
            await outbox.record(conn, self.events_topic, events)
        return True


def _binding(m: asyncpg.Record) -> Binding | None:
    if m["openid"] is None:
        return None
    return Binding(m["member_id"], m["openid"], m["unreachable_errcode"])


def _preferences(m: asyncpg.Record) -> Preferences | None:
    if m["opted_out"] is None:
        return None
    return Preferences(m["member_id"], frozenset(m["opted_out"]))
