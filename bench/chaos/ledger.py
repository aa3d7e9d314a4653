"""The ledger checker: every source of truth against every consumer's effect, once all caught up.

Sources are the services' own tables and outboxes (the events each committed with its change);
effects are what the others made of those events (their inboxes and read models), what Kafka
holds, and what the WeChat simulator received. Each check counts violations in one category:

- ``lost``: a source's event or acknowledged write whose effect is missing (not in Kafka, not in
  a consumer's inbox or only dead-lettered, not in a read model, a message never received);
- ``duplicate``: an effect applied twice (two events for one change, a counter off, a change
  logged twice, an event caused twice by one cause);
- ``wechat duplicate``: one member received one template for one source event twice;
- ``order``: a key's final state downstream differs from its source's, or Kafka holds a key's
  events out of their outbox order;
- ``balance``: the fund's balances disagree with its journal or with what it records;
- ``seats``: a class holds more seats than it has, or leaves one empty while members wait.

Checks named ``info`` are figures, never violations.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.chaos.load import Acknowledged
from bench.chaos.probe import Db
from services.notifications.domain import RenderError, recipient_of
from services.notifications.main import RULES
from services.notifications.rules import RuleSet, load_rules
from tests.support.servers import SERVICES

log = logging.getLogger(__name__)
CATEGORIES = ("lost", "duplicate", "wechat duplicate", "order", "balance", "seats")
SENT = ("sent", "delivered")
STATUS_EVENTS = {
    "gonghui.membership.member.joined": "active",
    "gonghui.membership.member.transferred": None,  # status unchanged, union changes
    "gonghui.membership.member.left": "left",
    "gonghui.membership.member.suspended": "suspended",
    "gonghui.membership.member.reinstated": "active",
}
ENROLMENT_STATUS = {
    "gonghui.training.enrolment.awaiting_approval": "pending_approval",
    "gonghui.training.enrolment.confirmed": "confirmed",
    "gonghui.training.enrolment.waitlisted": "waitlisted",
    "gonghui.training.enrolment.offered": "offered",
    "gonghui.training.enrolment.rejected": "rejected",
    "gonghui.training.enrolment.cancelled": "cancelled",
}
HELD = ("confirmed", "pending_approval", "offered")
DELIVERED = "gonghui.notifications.message.delivered"


@dataclass
class Event:
    id: int
    event_id: str
    service: str
    topic: str
    key: str
    type: str
    causation: str | None
    correlation: str | None
    published: bool
    data: dict[str, Any]
    written: str = ""  # when its transaction began (created_at), and when it was marked sent


@dataclass
class Finding:
    category: str
    check: str
    count: int
    examples: list[str]


@dataclass
class Ledger:
    findings: list[Finding] = field(default_factory=list)
    events_by_type: Counter[str] = field(default_factory=Counter)
    backlog: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    figures: dict[str, int] = field(default_factory=dict)
    unordered: list[str] = field(default_factory=list)  # examples for the figure of that name

    def add(self, category: str, check: str, bad: Iterable[Any]) -> None:
        items = list(bad)
        self.findings.append(Finding(category, check, len(items), [str(i) for i in items[:3]]))

    def info(self, check: str, value: int) -> None:
        self.figures[check] = value

    @property
    def violations(self) -> dict[str, int]:
        totals = dict.fromkeys(CATEGORIES, 0)
        for f in self.findings:
            totals[f.category] += f.count
        return totals

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())


async def check(
    db: Db,
    bootstrap: str,
    namespace: str,
    groups: dict[str, dict[str, set[str]]],
    simulator_url: str,
    ack: Acknowledged,
) -> Ledger:
    ledger = Ledger()
    events = {s: await _outbox(db, s) for s in SERVICES}
    everything = [e for s in SERVICES for e in events[s]]
    by_id = {e.event_id: e for e in everything}
    for e in everything:
        ledger.events_by_type[e.type] += 1
    for s in SERVICES:
        ledger.backlog[s] = sum(not e.published for e in events[s])
    ledger.add(
        "lost",
        "outbox rows never published",
        [f"{e.service} {e.type} {e.event_id}" for e in everything if not e.published],
    )

    await _kafka(ledger, bootstrap, namespace, events)
    await _inboxes(ledger, db, namespace, groups, events)
    _caused_twice(ledger, everything, by_id)
    await _membership(ledger, db, events["membership"], ack)
    await _mutual_aid(ledger, db, events["mutual_aid"], events["membership"], ack)
    await _training(ledger, db, events["training"], ack)
    await _notifications(ledger, db, events, simulator_url, ack)
    return ledger


async def _outbox(db: Db, schema: str) -> list[Event]:
    rows = await db.fetch(
        "SELECT id, event_id::text AS event_id, topic, key, type,"
        " headers->>'ce_causationid' AS causation, headers->>'ce_correlationid' AS correlation,"
        " published_at IS NOT NULL AS published, payload,"
        " to_char(created_at, 'HH24:MI:SS.US') || ', marked sent '"
        " || coalesce(to_char(published_at, 'HH24:MI:SS.US'), 'never') || ', xmin '"
        f" || xmin::text AS written FROM {schema}.outbox ORDER BY id"
    )
    return [
        Event(
            r["id"],
            r["event_id"],
            schema,
            r["topic"],
            r["key"],
            r["type"],
            r["causation"],
            r["correlation"],
            r["published"],
            orjson.loads(r["payload"]),
            r["written"],
        )
        for r in rows
    ]


# ---------------------------------------------------------------------------- Kafka


async def read_topic(bootstrap: str, topic: str) -> list[tuple[int, int, str, dict[str, str]]]:
    """Every message of ``topic``: (partition, offset, key, headers)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(topic, p) for p in cluster.partitions_for_topic(topic) or []]
        if not parts:
            return []
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        # Not seek_to_beginning: it can lose a race with the reset to "latest" that assign()
        # starts, and the partition then reads as empty.
        begins = await consumer.beginning_offsets(parts)
        for tp in parts:
            consumer.seek(tp, begins[tp])
        out: list[tuple[int, int, str, dict[str, str]]] = []
        left = {tp for tp in parts if ends[tp] > 0}
        while left:
            batches = await consumer.getmany(*left, timeout_ms=1000, max_records=10_000)
            for tp, records in batches.items():
                for r in records:
                    headers = {k: v.decode(errors="replace") for k, v in r.headers or []}
                    out.append((tp.partition, r.offset, (r.key or b"").decode(), headers))
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
        return out
    finally:
        await consumer.stop()


async def _kafka(
    ledger: Ledger, bootstrap: str, namespace: str, events: dict[str, list[Event]]
) -> None:
    """Every published event is in its topic; a key's events come in their outbox order."""
    missing: list[str] = []
    out_of_order: list[str] = []
    unordered: list[str] = []
    republished = 0
    for service in SERVICES:
        topic = f"{namespace}{service}.events"
        messages = await read_topic(bootstrap, topic)
        ledger.info(f"messages in {service}.events", len(messages))
        mine = {e.event_id: e for e in events[service]}
        seen: set[str] = set()
        last: dict[str, Event] = {}  # key -> the event of highest outbox id seen so far
        for _, _, key, headers in sorted(messages, key=lambda m: (m[0], m[1])):
            event_id = headers.get("ce_id", "")
            if event_id in seen:
                republished += 1  # at-least-once: the inboxes absorb it
                continue
            seen.add(event_id)
            event = mine.get(event_id)
            if event is None:
                continue
            before = last.get(key)
            if before is not None and event.id < before.id:
                pair = (
                    f"{topic} key {key}: #{event.id} {event.type} {event_id} (written"
                    f" {event.written}) after #{before.id} {before.type} {before.event_id}"
                    f" (written {before.written})"
                )
                # Two messages' outcomes, recorded by concurrent sender loops: the source sets
                # no order between them, and they reach Kafka in the order they committed.
                if event.type == before.type == DELIVERED:
                    unordered.append(pair)
                else:
                    out_of_order.append(pair)
            if before is None or event.id > before.id:
                last[key] = event
        missing += [
            f"{topic} {e.type} {e.event_id}"
            for e in events[service]
            if e.published and e.event_id not in seen
        ]
        ledger.dead_letters[service] = [
            {k: v for k, v in h.items() if k.startswith("dlq_") or k in ("ce_type", "ce_id")}
            for _, _, _, h in await read_topic(bootstrap, f"{namespace}{service}.dlq")
        ]
    ledger.add("lost", "published events missing from Kafka", missing)
    ledger.add("order", "a key's events out of outbox order in Kafka", out_of_order)
    ledger.info("MessageDelivered of one member in commit, not outbox, order", len(unordered))
    ledger.unordered = unordered
    ledger.info("events published more than once (absorbed by inboxes)", republished)
    ledger.info("dead letters", sum(len(v) for v in ledger.dead_letters.values()))


# ---------------------------------------------------------------------------- inboxes


async def _inboxes(
    ledger: Ledger,
    db: Db,
    namespace: str,
    groups: dict[str, dict[str, set[str]]],
    events: dict[str, list[Event]],
) -> None:
    """Every event a consumer handles is in its inbox, applied, once."""
    by_topic: dict[str, list[Event]] = defaultdict(list)
    for service_events in events.values():
        for e in service_events:
            by_topic[e.topic].append(e)
    lost: list[str] = []
    dead: list[str] = []
    twice: list[str] = []
    for group, topics in groups.items():
        schema = group.removeprefix(namespace)
        rows = await db.fetch(
            f"SELECT event_id, outcome FROM {schema}.inbox WHERE consumer = $1", group
        )
        outcome: dict[str, str] = {}
        for r in rows:
            if r["event_id"] in outcome:
                twice.append(f"{group} {r['event_id']}")
            outcome[r["event_id"]] = r["outcome"]
        applied = 0
        for topic, types in topics.items():
            for e in by_topic.get(topic, []):
                if e.type not in types:
                    continue
                state = outcome.get(e.event_id)
                if state is None:
                    lost.append(f"{group} never applied {e.type} {e.event_id}")
                elif state != "applied":
                    dead.append(f"{group} {state} {e.type} {e.event_id}")
                else:
                    applied += 1
        ledger.info(f"events applied by {group.removeprefix(namespace)}", applied)
    ledger.add("lost", "events a consumer never applied", lost)
    ledger.add("lost", "events a consumer dead-lettered (effect missing)", dead)
    ledger.add("duplicate", "inbox rows twice for one event", twice)


def _caused_twice(ledger: Ledger, everything: list[Event], by_id: dict[str, Event]) -> None:
    """A consumed event causes each of its effects once: no two events of one type for one
    subject (member, enrolment) with the same cause."""
    caused: Counter[tuple[Any, ...]] = Counter()
    for e in everything:
        if e.causation and e.causation in by_id:
            caused[
                (e.causation, e.type, e.key, e.data.get("member_id"), e.data.get("enrolment_id"))
            ] += 1
    ledger.add(
        "duplicate",
        "events caused twice by one consumed event",
        [f"{k[1]} {k[2]} caused by {k[0]} x{n}" for k, n in caused.items() if n > 1],
    )
    ledger.info("events caused by consumed events", sum(caused.values()))


# ---------------------------------------------------------------------------- membership


@dataclass
class Derived:
    status: str = ""
    union: str = ""
    name: str = ""
    spells: int = 0
    left: bool = False


def _derive(events: list[Event]) -> dict[str, Derived]:
    """Each member's state as its events, in outbox order, say."""
    members: dict[str, Derived] = defaultdict(Derived)
    for e in events:
        member_id = e.data.get("member_id")
        if not member_id:
            continue
        d = members[member_id]
        if e.type in STATUS_EVENTS:
            d.spells += 1
            d.status = STATUS_EVENTS[e.type] or d.status
        if e.type == "gonghui.membership.member.joined":
            d.union, d.name = e.data["union_id"], e.data["name"]
        elif e.type == "gonghui.membership.member.transferred":
            d.union = e.data["to_union_id"]
        elif e.type == "gonghui.membership.member.details_changed":
            d.name = e.data["name"]
        elif e.type == "gonghui.membership.member.left":
            d.left = True
    return members


async def _membership(ledger: Ledger, db: Db, events: list[Event], ack: Acknowledged) -> None:
    source = {
        r["id"]: r
        for r in await db.fetch(
            "SELECT id, status, union_id, name, card_number, jsonb_array_length(timeline) AS spells"
            " FROM membership.members"
        )
    }
    derived = _derive(events)
    ledger.info("members", len(source))
    ledger.add(
        "lost",
        "acknowledged members missing from membership",
        [f"serial {s} {m}" for s, m in ack.members.items() if m not in source],
    )
    more, fewer, differs = [], [], []
    for member_id, row in source.items():
        d = derived.get(member_id, Derived())
        if d.spells > row["spells"]:
            more.append(f"{member_id}: {d.spells} status events, {row['spells']} spells")
        elif d.spells < row["spells"]:
            fewer.append(f"{member_id}: {d.spells} status events, {row['spells']} spells")
        if (d.status, d.union, d.name) != (row["status"], row["union_id"], row["name"]):
            differs.append(f"{member_id}: events say {d.status}/{d.union}, row {row['status']}")
    ledger.add("duplicate", "membership events for a change made once", more)
    ledger.add("lost", "membership changes without their event", fewer)
    ledger.add("order", "membership's events replayed differ from its members", differs)

    for schema, columns in (
        ("notifications", "status, union_id, name"),
        ("training", "status, union_id, name"),
        ("mutual_aid", "union_id, periods->-1->>1 IS NULL AND periods->-1 IS NOT NULL AS open"),
    ):
        rows = {
            r["member_id"]: r
            for r in await db.fetch(f"SELECT member_id, {columns} FROM {schema}.members")
        }
        missing = [m for m in source if m not in rows]
        phantom = [m for m in rows if m not in source]
        wrong = []
        for member_id, row in rows.items():
            want = source.get(member_id)
            if want is None:
                continue
            if schema == "mutual_aid":
                ok = row["union_id"] == want["union_id"] and row["open"] == (
                    want["status"] == "active"
                )
            else:
                ok = (row["status"], row["union_id"], row["name"]) == (
                    want["status"],
                    want["union_id"],
                    want["name"],
                )
            if not ok:
                wrong.append(f"{member_id}: {dict(row)} vs membership {dict(want)}")
        ledger.add("lost", f"members missing from {schema}'s read model", missing)
        ledger.add("duplicate", f"members in {schema}'s read model membership lacks", phantom)
        ledger.add("order", f"{schema}'s members differ from membership's final state", wrong)

    jobs = await db.fetch("SELECT * FROM membership.roster_jobs")
    changes = await db.fetch(
        "SELECT job_id, change, count(*) AS n, count(DISTINCT member_id) AS members"
        " FROM membership.roster_changes GROUP BY job_id, change"
    )
    by_job: dict[str, Counter[str]] = defaultdict(Counter)
    logged_twice = []
    for r in changes:
        by_job[r["job_id"]][r["change"]] += r["n"]
        if r["members"] != r["n"]:
            logged_twice.append(
                f"{r['job_id']} {r['change']}: {r['n']} rows, {r['members']} members"
            )
    written = Counter(e.correlation for e in events)
    counters = []
    for job in jobs:
        c = by_job[job["id"]]
        submitted = ack.rosters.get(job["id"], (None, job["rows_read"]))[1]
        want = {
            "rows_read": submitted,
            "accepted+rejected": job["rows_read"],
            "joined": c["joined"],
            "changed": c["corrected"] + c["transferred"] + c["rejoined"],
            "left_union": c["left"],
            "events_written": written[job["id"]],
        }
        have = {
            "rows_read": job["rows_read"],
            "accepted+rejected": job["accepted"] + job["rejected"],
            "joined": job["joined"],
            "changed": job["changed"],
            "left_union": job["left_union"],
            "events_written": job["events_written"],
        }
        counters += [
            f"job {job['id']} {k}: {have[k]}, expected {v}" for k, v in want.items() if have[k] != v
        ]
        if job["state"] != "done":
            counters.append(f"job {job['id']} {job['state']}: {job['failure']}")
    ledger.add("duplicate", "roster changes logged twice", logged_twice)
    ledger.add("duplicate", "roster job counters off (or job not done)", counters)


# ---------------------------------------------------------------------------- mutual aid


async def _mutual_aid(
    ledger: Ledger, db: Db, events: list[Event], membership: list[Event], ack: Acknowledged
) -> None:
    by_type: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_type[e.type.rpartition("mutual_aid.")[2]].append(e)

    coverages = {
        (r["enrolment_id"], r["member_id"]): r
        for r in await db.fetch(
            "SELECT enrolment_id, member_id, ended_reason FROM mutual_aid.coverages"
        )
    }
    covered = Counter(
        (e.data["enrolment_id"], e.data["member_id"]) for e in by_type["member.covered"]
    )
    ended = Counter(
        (e.data["enrolment_id"], e.data["member_id"]) for e in by_type["coverage.ended"]
    )
    ledger.add("duplicate", "members covered twice", [k for k, n in covered.items() if n > 1])
    ledger.add("duplicate", "cover ended twice", [k for k, n in ended.items() if n > 1])
    ledger.add(
        "lost", "MemberCovered without its cover", [k for k in covered if k not in coverages]
    )
    ledger.add(
        "lost", "cover without its MemberCovered", [k for k in coverages if k not in covered]
    )
    leavers = {e.data["member_id"] for e in membership if e.type.endswith("member.left")}
    ledger.add(
        "lost",
        "cover of members who left never ended (MemberLeft lost on its way)",
        [k for k, r in coverages.items() if k[1] in leavers and r["ended_reason"] is None],
    )
    ledger.add(
        "lost",
        "cover ended without its CoverageEnded",
        [k for k, r in coverages.items() if r["ended_reason"] is not None and k not in ended],
    )

    contributions = {
        r["receipt_number"]: r["amount_fen"]
        for r in await db.fetch("SELECT receipt_number, amount_fen FROM mutual_aid.contributions")
    }
    entries = Counter(
        (r["kind"], r["reference"])
        for r in await db.fetch("SELECT kind, reference FROM mutual_aid.journal_entries")
    )
    received = Counter(e.data["receipt_number"] for e in by_type["contribution.received"])
    ledger.add(
        "lost",
        "acknowledged contributions missing",
        [r for r in ack.contributions if r not in contributions],
    )
    ledger.add(
        "duplicate",
        "contributions journaled or announced other than once",
        [
            f"{r}: {entries['contribution', r]} entries, {received[r]} events"
            for r in contributions
            if entries["contribution", r] != 1 or received[r] != 1
        ],
    )

    claims = {
        r["claim_id"]: r
        for r in await db.fetch(
            "SELECT claim_id, state, approved_amount_fen FROM mutual_aid.claims"
        )
    }
    payments = Counter(
        r["claim_id"] for r in await db.fetch("SELECT claim_id FROM mutual_aid.payments")
    )
    counts = {
        kind: Counter(e.data["claim_id"] for e in by_type[f"claim.{kind}"])
        for kind in ("submitted", "approved", "paid")
    }
    wrong, unpaid = [], []
    for claim_id, c in claims.items():
        approved = c["state"] in ("approved", "awaiting_funds", "paid")
        paid = c["state"] == "paid"
        want = {
            "ClaimSubmitted": (counts["submitted"][claim_id], 1),
            "ClaimApproved": (counts["approved"][claim_id], int(approved)),
            "ClaimPaid": (counts["paid"][claim_id], int(paid)),
            "payments": (payments[claim_id], int(paid)),
            "approval entries": (entries["benefit_approved", claim_id], int(approved)),
            "payout entries": (entries["payout", claim_id], int(paid)),
        }
        wrong += [
            f"{claim_id} ({c['state']}) {k}: {h}, expected {w}"
            for k, (h, w) in want.items()
            if h != w
        ]
        if c["state"] == "approved":
            unpaid.append(claim_id)
    ledger.info("claims", len(claims))
    ledger.info("claims paid", sum(c["state"] == "paid" for c in claims.values()))
    ledger.add("lost", "acknowledged claims missing", [c for c in ack.claims if c not in claims])
    ledger.add("duplicate", "claims' events, payments or entries other than once", wrong)
    ledger.add("lost", "approved claims the payout worker never paid", unpaid)

    balances = {
        r["account"]: r["balance_fen"]
        for r in await db.fetch("SELECT account, balance_fen FROM mutual_aid.account_balances")
    }
    journal = {
        r["account"]: r["movement"]
        for r in await db.fetch(
            "SELECT l.account, sum(CASE WHEN b.debit_normal THEN l.debit_fen - l.credit_fen"
            " ELSE l.credit_fen - l.debit_fen END) AS movement FROM mutual_aid.journal_lines l"
            " JOIN mutual_aid.account_balances b USING (account) GROUP BY l.account"
        )
    }
    grants = await db.fetchval(
        "SELECT coalesce(sum(amount_fen), 0) FROM mutual_aid.backstop_grants"
    )
    paid_out = await db.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM mutual_aid.payments")
    owed = sum(
        c["approved_amount_fen"] or 0
        for c in claims.values()
        if c["state"] in ("approved", "awaiting_funds")
    )
    expensed = sum(
        c["approved_amount_fen"] or 0
        for c in claims.values()
        if c["state"] in ("approved", "awaiting_funds", "paid")
    )
    records = {
        "fund_cash": sum(contributions.values()) + grants - paid_out,
        "contributions_income": sum(contributions.values()),
        "claims_payable": owed,
        "benefits_expense": expensed,
        "backstop_income": grants,
    }
    off = [
        f"{account}: balance {balance}, journal {journal.get(account, 0)}"
        for account, balance in balances.items()
        if balance != journal.get(account, 0)
    ] + [
        f"{account}: balance {balances.get(account)}, records say {amount}"
        for account, amount in records.items()
        if balances.get(account) != amount
    ]
    ledger.add("balance", "fund balances against the journal and the records", off)
    ledger.info("fund cash (fen)", balances.get("fund_cash", 0))


# ---------------------------------------------------------------------------- training


async def _training(ledger: Ledger, db: Db, events: list[Event], ack: Acknowledged) -> None:
    rows = {
        r["enrolment_id"]: r
        for r in await db.fetch(
            "SELECT e.enrolment_id, e.class_id, e.member_id, e.status, m.status AS member"
            " FROM training.enrolments e LEFT JOIN training.members m USING (member_id)"
        )
    }
    last: dict[str, str] = {}
    repeated = []
    previous: dict[str, str] = {}
    for e in events:
        enrolment_id = e.data.get("enrolment_id")
        if not enrolment_id:
            continue
        status = ENROLMENT_STATUS.get(e.type)
        if e.type == "gonghui.training.enrolment.promoted":
            status = e.data["status"]
        if status is None:
            continue
        if previous.get(enrolment_id) == e.type:
            repeated.append(f"{enrolment_id}: {e.type} twice in a row")
        previous[enrolment_id] = e.type
        last[enrolment_id] = status
    ledger.add("duplicate", "an enrolment's event repeated", repeated)
    ledger.add(
        "order",
        "enrolments whose status is not what their last event says",
        [
            f"{i}: {r['status']}, last event says {last.get(i)}"
            for i, r in rows.items()
            if last.get(i) != r["status"]
        ],
    )
    ledger.add(
        "lost",
        "acknowledged enrolments missing",
        [i for i in ack.enrolments if i not in rows],
    )
    ledger.add(
        "lost",
        "acknowledged cancellations not cancelled",
        [i for i in ack.cancelled if rows.get(i, {}).get("status") != "cancelled"],
    )
    ledger.add(
        "lost",
        "enrolments still holding a place for a member who left",
        [
            i
            for i, r in rows.items()
            if r["member"] == "left" and r["status"] in (*HELD, "waitlisted")
        ],
    )
    classes = await db.fetch(
        "SELECT c.class_id, c.capacity, c.waitlist_enabled,"
        " count(*) FILTER (WHERE e.status = ANY($1)) AS held,"
        " count(*) FILTER (WHERE e.status = 'waitlisted') AS waiting"
        " FROM training.classes c LEFT JOIN training.enrolments e USING (class_id)"
        " GROUP BY c.class_id",
        list(HELD),
    )
    ledger.add(
        "seats",
        "classes holding more seats than they have, or one empty while members wait",
        [
            f"{c['class_id']}: {c['held']} held of {c['capacity']}, {c['waiting']} waiting"
            for c in classes
            if c["capacity"] is not None
            and (c["held"] > c["capacity"] or (c["waiting"] and c["held"] < c["capacity"]))
        ],
    )
    ledger.info("enrolments", len(rows))
    ledger.info("seats held", sum(c["held"] for c in classes))


# ---------------------------------------------------------------------------- notifications


async def _notifications(
    ledger: Ledger,
    db: Db,
    events: dict[str, list[Event]],
    simulator_url: str,
    ack: Acknowledged,
) -> None:
    bindings = {
        r["member_id"]: r["openid"]
        for r in await db.fetch("SELECT member_id, openid FROM notifications.bindings")
    }
    ledger.add(
        "lost",
        "acknowledged bindings missing",
        [m for m, o in ack.bindings.items() if bindings.get(m) != o],
    )
    deliveries = {
        (r["event_id"], r["recipient"], r["template_id"]): r
        for r in await db.fetch(
            "SELECT event_id, recipient, template_id, client_msg_id, status, openid"
            " FROM notifications.deliveries"
        )
    }
    rules: RuleSet = load_rules(RULES.read_text(encoding="utf-8"))
    never_planned = []
    for service in ("membership", "mutual_aid", "training"):
        for e in events[service]:
            for rule in rules.for_event(e.type):
                try:
                    member = recipient_of(rule, e.data)
                except RenderError:
                    continue
                if (
                    member in bindings
                    and (e.event_id, member, rule.template.template_id) not in deliveries
                ):
                    never_planned.append(f"{e.type} {e.event_id} for {member}")
    ledger.add("lost", "events for bound members without their delivery", never_planned)

    messages = await _simulator_messages(simulator_url)
    received: Counter[tuple[str, str, str]] = Counter(
        (m["openid"], m["template_id"], m.get("client_msg_id") or f"msgid {m['msgid']}")
        for m in messages
    )
    ledger.add(
        "wechat duplicate",
        "a member received one template for one event twice",
        [f"{k} x{n}" for k, n in received.items() if n > 1],
    )
    bound_deliveries = [d for k, d in deliveries.items() if k[1] in bindings]
    statuses = Counter(d["status"] for d in bound_deliveries)
    for status, n in sorted(statuses.items()):
        ledger.info(f"deliveries to bound members {status}", n)
    ledger.add(
        "lost",
        "messages to bound members never received by WeChat",
        [
            f"{d['event_id']} {d['template_id']} for {d['recipient']} ({d['status']})"
            for d in bound_deliveries
            if (bindings[d["recipient"]], d["template_id"], d["client_msg_id"]) not in received
        ],
    )
    ours = {
        (bindings.get(d["recipient"]), d["template_id"], d["client_msg_id"])
        for d in deliveries.values()
    }
    ledger.add(
        "duplicate",
        "WeChat messages no delivery explains",
        [k for k in received if k not in ours],
    )
    ledger.info("WeChat messages received", len(messages))
    async with httpx.AsyncClient(base_url=simulator_url, timeout=30) as sim:
        stats = (await sim.get("/_sim/stats")).json()
    ledger.info("WeChat sends deduplicated by client_msg_id", stats.get("duplicates_suppressed", 0))


async def _simulator_messages(url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since: int | None = None
    async with httpx.AsyncClient(base_url=url, timeout=60) as sim:
        while True:
            params: dict[str, Any] = {"limit": 10_000}
            if since is not None:
                params["since_id"] = since
            page = (await sim.get("/_sim/messages", params=params)).json()
            out += page["items"]
            if not page["has_more"]:
                return out
            since = page["next_since_id"]
