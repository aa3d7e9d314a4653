"""SQL for the mutual_aid schema: plans, the eligibility view and enrolments.

Claims are in ``claims_repository``, the fund (journal, payments, backstop requests) in
``ledger_repository``, read-only reports in ``reports``. Aggregates are loaded whole and saved as
the difference from what was loaded, so a save writes only what the use case changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

import asyncpg
import orjson

from services.mutual_aid.eligibility import ActivePeriod, MemberStanding
from services.mutual_aid.enrolment import Contribution, Coverage, Enrolment
from services.mutual_aid.plans import BenefitRules, Plan, PlanStatus
from services.mutual_aid.search import Page, Period
from shared.errors import NotFound

REJECTED = ("auto_rejected", "rejected")
A = TypeVar("A")
# A unit of work's ``track``: the aggregate's events go out when the unit of work commits.
Track = Callable[[A], A]


def read_only(aggregate: A) -> A:
    """For reads outside a unit of work (views, reports): nothing loaded there is saved."""
    return aggregate


# Plans -----------------------------------------------------------------------------------------


def _plan(row: asyncpg.Record) -> Plan:
    return Plan(
        plan_id=row["plan_id"],
        scheme_year=row["scheme_year"],
        version=row["version"],
        effective_from=row["effective_from"],
        effective_to=row["effective_to"],
        contribution_per_member=row["contribution_per_member_fen"],
        rules=BenefitRules.model_validate(row["rules"]),
        status=PlanStatus(row["status"]),
        published_on=row["published_on"],
    )


class Plans:
    def __init__(self, conn: asyncpg.Connection, track: Track[Plan] = read_only) -> None:
        self.conn = conn
        self.track = track

    def _plan(self, row: asyncpg.Record) -> Plan:
        return self.track(_plan(row))

    async def next_version(self, scheme_year: int) -> int:
        found = await self.conn.fetchval(
            "SELECT max(version) FROM plans WHERE scheme_year = $1", scheme_year
        )
        return (found or 0) + 1

    async def add(self, plan: Plan) -> None:
        await self.conn.execute(
            "INSERT INTO plans (plan_id, scheme_year, version, effective_from, effective_to,"
            " contribution_per_member_fen, rules, status, published_on)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            plan.plan_id,
            plan.scheme_year,
            plan.version,
            plan.effective_from,
            plan.effective_to,
            plan.contribution_per_member,
            plan.rules.model_dump(mode="json"),
            plan.status.value,
            plan.published_on,
        )
        self.track(plan)

    async def save_status(self, plan: Plan) -> None:
        # A plan's terms never change once drafted (a new version is drafted instead).
        await self.conn.execute(
            "UPDATE plans SET status = $2, published_on = $3 WHERE plan_id = $1",
            plan.plan_id,
            plan.status.value,
            plan.published_on,
        )

    async def get(self, plan_id: str, *, lock: bool = False, field: str = "plan_id") -> Plan:
        row = await self.conn.fetchrow(
            "SELECT * FROM plans WHERE plan_id = $1" + (" FOR UPDATE" if lock else ""), plan_id
        )
        if row is None:
            raise NotFound(field, "unknown_plan", "no such plan", plan_id=plan_id)
        return self._plan(row)

    async def search(
        self,
        scheme_year: int | None = None,
        status: PlanStatus | None = None,
        *,
        page: Page,
    ) -> list[Plan]:
        rows = await self.conn.fetch(
            "SELECT * FROM plans WHERE ($1::int IS NULL OR scheme_year = $1)"
            " AND ($2::text IS NULL OR status = $2)"
            f" ORDER BY scheme_year, version {page.sql(3)}",
            scheme_year,
            None if status is None else status.value,
            *page.args,
        )
        return [self._plan(r) for r in rows]

    async def published_of_year(self, scheme_year: int) -> list[Plan]:
        rows = await self.conn.fetch(
            "SELECT * FROM plans WHERE scheme_year = $1 AND status = 'published'", scheme_year
        )
        return [self._plan(r) for r in rows]

    async def published_on_day(self, day: date) -> list[Plan]:
        rows = await self.conn.fetch(
            "SELECT * FROM plans WHERE status = 'published'"
            " AND effective_from <= $1 AND effective_to >= $1",
            day,
        )
        return [self._plan(r) for r in rows]


# The eligibility view --------------------------------------------------------------------------


def _periods(standing: MemberStanding) -> list[list[str | None]]:
    return [
        [p.starts_on.isoformat(), p.ends_on.isoformat() if p.ends_on else None]
        for p in standing.periods
    ]


def _standing(member_id: str, periods: list[list[str | None]]) -> MemberStanding:
    return MemberStanding(
        member_id,
        [
            ActivePeriod(date.fromisoformat(str(start)), date.fromisoformat(end) if end else None)
            for start, end in periods
        ],
    )


@dataclass(frozen=True)
class MemberView:
    standing: MemberStanding
    union_id: str | None


def _member_view(row: asyncpg.Record) -> MemberView:
    return MemberView(_standing(row["member_id"], row["periods"]), row["union_id"])


class Members:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, member_id: str, *, lock: bool = False) -> MemberView | None:
        row = await self.conn.fetchrow(
            "SELECT member_id, union_id, periods FROM members WHERE member_id = $1"
            + (" FOR UPDATE" if lock else ""),
            member_id,
        )
        return None if row is None else _member_view(row)

    async def save(self, standing: MemberStanding, union_id: str | None) -> None:
        await self.save_many([(standing, union_id)])

    async def save_many(self, members: Sequence[tuple[MemberStanding, str | None]]) -> None:
        """One statement for all; each member at most once (a row cannot be upserted twice)."""
        await self.conn.execute(
            "INSERT INTO members (member_id, union_id, periods)"
            # As JSON text: asyncpg would take a list of lists for a two-dimensional array.
            " SELECT m.id, m.union_id, m.periods::jsonb"
            " FROM unnest($1::text[], $2::text[], $3::text[]) AS m(id, union_id, periods)"
            " ON CONFLICT (member_id) DO UPDATE SET"
            " union_id = coalesce(excluded.union_id, members.union_id),"
            " periods = excluded.periods, updated_at = now()",
            [standing.member_id for standing, _ in members],
            [union_id for _, union_id in members],
            [orjson.dumps(_periods(standing)).decode() for standing, _ in members],
        )

    async def standings(self, member_ids: Sequence[str]) -> dict[str, MemberStanding]:
        rows = await self.conn.fetch(
            "SELECT member_id, periods FROM members WHERE member_id = ANY($1)", list(member_ids)
        )
        return {r["member_id"]: _standing(r["member_id"], r["periods"]) for r in rows}


# Enrolments ------------------------------------------------------------------------------------


def _coverage(row: asyncpg.Record) -> Coverage:
    return Coverage(
        member_id=row["member_id"],
        starts_on=row["starts_on"],
        ends_on=row["ends_on"],
        waiting_from=row["waiting_from"],
        ended_reason=row["ended_reason"],
    )


@dataclass(frozen=True)
class _Loaded:
    coverages: dict[str, Coverage]
    not_covered: dict[str, str]
    contributions: int


@dataclass(frozen=True)
class MemberCoverage:
    enrolment_id: str
    unit_id: str
    scheme_year: int
    plan_id: str
    coverage: Coverage


class Enrolments:
    def __init__(self, conn: asyncpg.Connection, track: Track[Enrolment] = read_only) -> None:
        self.conn = conn
        self.track = track
        self._loaded: dict[str, _Loaded] = {}

    async def next_id(self, scheme_year: int) -> str:
        n = await self.conn.fetchval("SELECT nextval('enrolment_numbers')")
        return f"EN-{scheme_year}-{n:05d}"

    async def find(self, unit_id: str, scheme_year: int) -> str | None:
        found: str | None = await self.conn.fetchval(
            "SELECT enrolment_id FROM enrolments WHERE unit_id = $1 AND scheme_year = $2",
            unit_id,
            scheme_year,
        )
        return found

    async def unit_of(self, enrolment_id: str) -> str:
        unit_id: str | None = await self.conn.fetchval(
            "SELECT unit_id FROM enrolments WHERE enrolment_id = $1", enrolment_id
        )
        if unit_id is None:
            raise NotFound(
                "enrolment_id", "unknown_enrolment", "no such enrolment", enrolment_id=enrolment_id
            )
        return unit_id

    async def get(self, enrolment_id: str, *, lock: bool = False) -> Enrolment:
        row = await self.conn.fetchrow(
            "SELECT * FROM enrolments WHERE enrolment_id = $1" + (" FOR UPDATE" if lock else ""),
            enrolment_id,
        )
        if row is None:
            raise NotFound(
                "enrolment_id", "unknown_enrolment", "no such enrolment", enrolment_id=enrolment_id
            )
        coverages = await self.conn.fetch(
            "SELECT * FROM coverages WHERE enrolment_id = $1 ORDER BY member_id", enrolment_id
        )
        not_covered = await self.conn.fetch(
            "SELECT member_id, reason FROM not_covered WHERE enrolment_id = $1 ORDER BY member_id",
            enrolment_id,
        )
        contributions = await self.conn.fetch(
            "SELECT * FROM contributions WHERE enrolment_id = $1 ORDER BY recorded_at, "
            "receipt_number",
            enrolment_id,
        )
        enrolment = Enrolment(
            enrolment_id=enrolment_id,
            unit_id=row["unit_id"],
            plan_id=row["plan_id"],
            scheme_year=row["scheme_year"],
            enrolled_on=row["enrolled_on"],
            plan_starts_on=row["plan_starts_on"],
            plan_ends_on=row["plan_ends_on"],
            contribution_per_member=row["contribution_per_member_fen"],
            coverages={r["member_id"]: _coverage(r) for r in coverages},
            not_covered={r["member_id"]: r["reason"] for r in not_covered},
            contributions=[
                Contribution(
                    r["receipt_number"], r["amount_fen"], r["payer"], r["received_on"], r["period"]
                )
                for r in contributions
            ],
        )
        self._remember(enrolment)
        return self.track(enrolment)

    def _remember(self, enrolment: Enrolment) -> None:
        self._loaded[enrolment.enrolment_id] = _Loaded(
            dict(enrolment.coverages), dict(enrolment.not_covered), len(enrolment.contributions)
        )

    async def add(self, enrolment: Enrolment) -> None:
        await self.conn.execute(
            "INSERT INTO enrolments (enrolment_id, unit_id, plan_id, scheme_year, enrolled_on,"
            " plan_starts_on, plan_ends_on, contribution_per_member_fen)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            enrolment.enrolment_id,
            enrolment.unit_id,
            enrolment.plan_id,
            enrolment.scheme_year,
            enrolment.enrolled_on,
            enrolment.plan_starts_on,
            enrolment.plan_ends_on,
            enrolment.contribution_per_member,
        )
        self._loaded[enrolment.enrolment_id] = _Loaded({}, {}, 0)
        self.track(enrolment)
        await self.save(enrolment)

    async def save(self, enrolment: Enrolment) -> None:
        before = self._loaded[enrolment.enrolment_id]
        changed = [c for m, c in enrolment.coverages.items() if before.coverages.get(m) != c]
        await self.conn.executemany(
            "INSERT INTO coverages (enrolment_id, member_id, starts_on, ends_on, waiting_from,"
            " ended_reason) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (enrolment_id, member_id)"
            " DO UPDATE SET ends_on = $4, ended_reason = $6",
            [
                (
                    enrolment.enrolment_id,
                    c.member_id,
                    c.starts_on,
                    c.ends_on,
                    c.waiting_from,
                    c.ended_reason,
                )
                for c in changed
            ],
        )
        if enrolment.not_covered != before.not_covered:
            await self.conn.execute(
                "DELETE FROM not_covered WHERE enrolment_id = $1", enrolment.enrolment_id
            )
            await self.conn.executemany(
                "INSERT INTO not_covered (enrolment_id, member_id, reason) VALUES ($1, $2, $3)",
                [(enrolment.enrolment_id, m, r) for m, r in enrolment.not_covered.items()],
            )
        await self.conn.executemany(
            "INSERT INTO contributions (receipt_number, enrolment_id, amount_fen, payer,"
            " received_on, period) VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (
                    c.receipt_number,
                    enrolment.enrolment_id,
                    c.amount,
                    c.payer,
                    c.received_on,
                    c.period,
                )
                for c in enrolment.contributions[before.contributions :]
            ],
        )
        self._remember(enrolment)

    async def receipt_taken(self, receipt_number: str) -> str | None:
        found: str | None = await self.conn.fetchval(
            "SELECT enrolment_id FROM contributions WHERE receipt_number = $1", receipt_number
        )
        return found

    async def covering(self, member_id: str, *, lock: bool = False) -> list[Enrolment]:
        ids = await self.conn.fetch(
            "SELECT enrolment_id FROM coverages WHERE member_id = $1 ORDER BY enrolment_id",
            member_id,
        )
        return [await self.get(r["enrolment_id"], lock=lock) for r in ids]

    async def coverages_of(
        self, member_id: str, scheme_year: int | None = None
    ) -> list[MemberCoverage]:
        rows = await self.conn.fetch(
            "SELECT c.*, e.unit_id, e.scheme_year, e.plan_id FROM coverages c"
            " JOIN enrolments e USING (enrolment_id)"
            " WHERE c.member_id = $1 AND ($2::int IS NULL OR e.scheme_year = $2)"
            " ORDER BY e.scheme_year, c.starts_on",
            member_id,
            scheme_year,
        )
        return [
            MemberCoverage(
                r["enrolment_id"], r["unit_id"], r["scheme_year"], r["plan_id"], _coverage(r)
            )
            for r in rows
        ]

    async def continuous_since(
        self, member_ids: Sequence[str], plan_starts_on: date
    ) -> dict[str, date]:
        """Members whose cover ran unbroken up to the day before this plan starts: their
        waiting period runs from their earlier start, so renewing does not mean waiting again."""
        rows = await self.conn.fetch(
            "SELECT member_id, min(waiting_from) AS since FROM coverages"
            " WHERE member_id = ANY($1) AND ends_on = $2 GROUP BY member_id",
            list(member_ids),
            plan_starts_on - timedelta(days=1),
        )
        return {r["member_id"]: r["since"] for r in rows}

    async def summaries(
        self,
        *,
        scheme_year: int | None,
        units: Iterable[str] | None,
        plan_id: str | None,
        page: Page,
    ) -> list[asyncpg.Record]:
        """Enrolments with their counts and money (as ``Enrolment`` computes them), by year and
        unit; ``units`` None means every unit."""
        return await self.conn.fetch(
            "SELECT e.enrolment_id, e.unit_id, e.plan_id, e.scheme_year, e.enrolled_on,"
            " e.contribution_per_member_fen,"
            " (SELECT count(*) FROM coverages c WHERE c.enrolment_id = e.enrolment_id)"
            "   AS covered_count,"
            " (SELECT count(*) FROM not_covered n WHERE n.enrolment_id = e.enrolment_id)"
            "   AS not_covered_count,"
            " (SELECT coalesce(sum(amount_fen), 0)::bigint FROM contributions x"
            "   WHERE x.enrolment_id = e.enrolment_id) AS received_fen"
            " FROM enrolments e WHERE ($1::int IS NULL OR e.scheme_year = $1)"
            " AND ($2::text[] IS NULL OR e.unit_id = ANY($2))"
            " AND ($3::text IS NULL OR e.plan_id = $3)"
            f" ORDER BY e.scheme_year, e.unit_id {page.sql(4)}",
            scheme_year,
            None if units is None else list(units),
            plan_id,
            *page.args,
        )

    async def covered(
        self, enrolment_id: str, *, covered_on: date | None, page: Page
    ) -> list[Coverage]:
        """The enrolment's cover, by member id; ``covered_on``: only those covered that day."""
        rows = await self.conn.fetch(
            "SELECT * FROM coverages WHERE enrolment_id = $1"
            " AND ($2::date IS NULL OR $2 BETWEEN starts_on AND ends_on)"
            f" ORDER BY member_id {page.sql(3)}",
            enrolment_id,
            covered_on,
            *page.args,
        )
        return [_coverage(r) for r in rows]

    async def contributions(
        self,
        *,
        units: Iterable[str] | None,
        enrolment_id: str | None,
        scheme_year: int | None,
        receipt_number: str | None,
        days: Period,
        page: Page,
    ) -> list[asyncpg.Record]:
        """Contributions across enrolments, in the order they were recorded."""
        return await self.conn.fetch(
            "SELECT x.receipt_number, x.amount_fen, x.payer, x.received_on, x.period,"
            " x.recorded_at, x.enrolment_id, e.unit_id, e.scheme_year"
            " FROM contributions x JOIN enrolments e USING (enrolment_id)"
            " WHERE ($1::text[] IS NULL OR e.unit_id = ANY($1))"
            " AND ($2::text IS NULL OR x.enrolment_id = $2)"
            " AND ($3::int IS NULL OR e.scheme_year = $3)"
            " AND ($4::text IS NULL OR x.receipt_number = $4)"
            f" AND {days.sql('x.received_on', 5)}"
            f" ORDER BY x.recorded_at, x.receipt_number {page.sql(7)}",
            None if units is None else list(units),
            enrolment_id,
            scheme_year,
            receipt_number,
            *days.args,
            *page.args,
        )
