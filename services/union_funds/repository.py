"""SQL for union funds' own schema: the view of unions kept from membership's events, the tax
bureau's remittance batches and records, finance's subsidies. Never membership's tables."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from services.union_funds.periods import Period
from services.union_funds.remittances import Remittance
from services.union_funds.unions import Union
from shared.errors import NotFound

# "For a period" means overlapping it: a quarterly remittance counts for each of its months, and
# monthly ones for their quarter (services.union_funds.periods.uncovered_months decides).
# "Standing" means not dissolved by the day asked for (Union.standing_on).
_STANDING = "(dissolved_on IS NULL OR dissolved_on > {day})"


def _union(row: asyncpg.Record) -> Union:
    return Union(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        path=tuple(row["path"]),
        credit_code=row["credit_code"],
        employer_name=row["employer_name"],
        founded_on=row["founded_on"],
        dissolved_on=row["dissolved_on"],
    )


class Unions:
    """The projection of membership's organisations (see services.union_funds.unions)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, union_id: str, *, field: str = "union_id") -> Union:
        """The union, or 404 ``organisation_not_found`` naming ``field``."""
        row = await self.conn.fetchrow("SELECT * FROM unions WHERE id = $1", union_id)
        if row is None:
            raise NotFound(field, "organisation_not_found", f"no organisation {union_id}")
        return _union(row)

    async def known(self, union_id: str) -> tuple[Union, datetime] | None:
        """The union and the time of the last event applied to it, its row locked, if any."""
        row = await self.conn.fetchrow("SELECT * FROM unions WHERE id = $1 FOR UPDATE", union_id)
        return None if row is None else (_union(row), row["as_of"])

    async def save(self, union: Union, as_of: datetime) -> None:
        await self.conn.execute(
            """
            INSERT INTO unions (id, name, kind, path, credit_code, employer_name, founded_on,
                                dissolved_on, as_of)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (id) DO UPDATE SET
                name = excluded.name, kind = excluded.kind, path = excluded.path,
                credit_code = excluded.credit_code, employer_name = excluded.employer_name,
                founded_on = excluded.founded_on, dissolved_on = excluded.dissolved_on,
                as_of = excluded.as_of
            """,
            union.id,
            union.name,
            union.kind,
            list(union.path),
            union.credit_code,
            union.employer_name,
            union.founded_on,
            union.dissolved_on,
            as_of,
        )

    async def holders(self, credit_codes: Collection[str], today: date) -> dict[str, str]:
        """Credit code -> the union standing today whose employer it is.

        Membership lets one standing union hold a code; should the view briefly show two (a new
        union's event applied before the old one's dissolution), the latest founded wins.
        """
        rows = await self.conn.fetch(
            "SELECT credit_code, id FROM unions WHERE credit_code = ANY($1) AND "
            + _STANDING.format(day="$2")
            + " ORDER BY founded_on NULLS FIRST, id",
            list(credit_codes),
            today,
        )
        return {r["credit_code"]: r["id"] for r in rows}

    async def owing_for(
        self, period: Period, under: str | None, today: date
    ) -> list[asyncpg.Record]:
        """Unions standing today with an employer, in the subtree (``under`` included), that
        existed by the end of the period: the ones whose employer should have remitted for it."""
        return await self.conn.fetch(
            "SELECT id, name, credit_code, employer_name, founded_on FROM unions"
            " WHERE credit_code IS NOT NULL AND "
            + _STANDING.format(day="$3")
            + " AND (founded_on IS NULL OR founded_on <= $1)"
            " AND ($2::text IS NULL OR id = $2 OR $2 = ANY(path))"
            " ORDER BY id",
            period.end,
            under,
            today,
        )


class Remittances:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def start_batch(
        self, batch_id: str, digest: str, submitted_by: str
    ) -> asyncpg.Record | None:
        """Claim ``batch_id``; None when this call claimed it, else the earlier batch's row.

        A concurrent submission of the same id waits here on the primary key until the first
        commits, then sees its row: the batch is recorded once either way.
        """
        claimed = await self.conn.fetchval(
            "INSERT INTO remittance_batches (batch_id, digest, submitted_by) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true",
            batch_id,
            digest,
            submitted_by,
        )
        if claimed:
            return None
        return await self.conn.fetchrow(
            "SELECT digest, result FROM remittance_batches WHERE batch_id = $1", batch_id
        )

    async def finish_batch(self, batch_id: str, result: dict[str, Any]) -> None:
        await self.conn.execute(
            "UPDATE remittance_batches SET result = $2 WHERE batch_id = $1", batch_id, result
        )

    async def add_new(
        self, batch_id: str, records: Sequence[tuple[Remittance, str | None]]
    ) -> dict[tuple[str, str, str], int]:
        """Insert the records not recorded before; identity -> id of each one inserted now.

        One statement for the whole batch; a record already there (an overlapping batch, or a
        concurrent one that committed first) is skipped by the unique identity, not counted twice.
        """
        if not records:
            return {}
        columns: list[list[Any]] = [[] for _ in range(12)]
        # In identity order: two overlapping batches then wait on each other's rows in the same
        # order, never each on the other (a deadlock).
        for r, union_id in sorted(records, key=lambda each: each[0].identity):
            row = (
                r.credit_code,
                r.employer_name,
                str(r.period),
                r.period.start,
                r.period.end,
                r.key,
                r.record_id,
                r.payroll_base_fen,
                r.amount_fen,
                r.rate.expected_fen,
                r.paid_on,
                union_id,
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        rows = await self.conn.fetch(
            """
            INSERT INTO remittances (credit_code, employer_name, period, period_start, period_end,
                                     record_key, record_id, payroll_base_fen, amount_fen,
                                     expected_fen, paid_on, union_id, batch_id)
            SELECT *, $13::text
            FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[], $6::text[],
                        $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::date[],
                        $12::text[])
            ON CONFLICT (credit_code, period, record_key) DO NOTHING
            RETURNING id, credit_code, period, record_key
            """,
            *columns,
            batch_id,
        )
        return {(r["credit_code"], r["period"], r["record_key"]): r["id"] for r in rows}

    async def recorded(
        self, identities: Collection[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], asyncpg.Record]:
        """The stored records with these identities (credit code, period, record key)."""
        if not identities:
            return {}
        codes, periods, keys = (list(x) for x in zip(*identities, strict=True))
        rows = await self.conn.fetch(
            "SELECT r.* FROM remittances r"
            " JOIN unnest($1::text[], $2::text[], $3::text[]) AS i (credit_code, period, key)"
            " ON (r.credit_code, r.period, r.record_key) = (i.credit_code, i.period, i.key)",
            codes,
            periods,
            keys,
        )
        return {(r["credit_code"], r["period"], r["record_key"]): r for r in rows}

    async def periods_paid(
        self, credit_codes: Collection[str], period: Period
    ) -> dict[str, list[str]]:
        """Credit code -> the periods of its remittances that overlap ``period``."""
        rows = await self.conn.fetch(
            "SELECT credit_code, array_agg(DISTINCT period) AS periods FROM remittances"
            " WHERE credit_code = ANY($1) AND period_start <= $3 AND period_end >= $2"
            " GROUP BY credit_code",
            list(credit_codes),
            period.start,
            period.end,
        )
        return {r["credit_code"]: list(r["periods"]) for r in rows}

    async def unorganised(self, period: Period, today: date) -> list[asyncpg.Record]:
        """Employers that remitted for (part of) the period and have no union standing today."""
        return await self.conn.fetch(
            """
            SELECT r.credit_code,
                   (array_agg(r.employer_name ORDER BY r.paid_on DESC, r.id DESC))[1]
                       AS employer_name,
                   array_agg(DISTINCT r.period) AS periods,
                   count(*) AS records,
                   sum(r.payroll_base_fen)::bigint AS payroll_base_fen,
                   sum(r.amount_fen)::bigint AS amount_fen
            FROM remittances r
            WHERE r.period_start <= $2 AND r.period_end >= $1
              AND NOT EXISTS (SELECT 1 FROM unions u
                              WHERE u.credit_code = r.credit_code
                                AND (u.dissolved_on IS NULL OR u.dissolved_on > $3))
            GROUP BY r.credit_code
            ORDER BY amount_fen DESC, r.credit_code
            """,
            period.start,
            period.end,
            today,
        )

    async def of_employer(self, credit_code: str, period: Period | None) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT * FROM remittances WHERE credit_code = $1"
            " AND ($2::date IS NULL OR (period_start <= $3 AND period_end >= $2))"
            " ORDER BY period_start, paid_on, id",
            credit_code,
            period.start if period else None,
            period.end if period else None,
        )


class Subsidies:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, reference: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow("SELECT * FROM subsidies WHERE reference = $1", reference)

    async def add(
        self,
        *,
        reference: str,
        union_id: str,
        amount_fen: int,
        period: Period,
        members_covered: int,
        recorded_by: str,
    ) -> asyncpg.Record | None:
        """The new row; None when the reference was recorded meanwhile (a concurrent resend)."""
        return await self.conn.fetchrow(
            "INSERT INTO subsidies (reference, union_id, amount_fen, period, year,"
            " members_covered, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT DO NOTHING RETURNING *",
            reference,
            union_id,
            amount_fen,
            str(period),
            period.year,
            members_covered,
            recorded_by,
        )

    async def totals(self, year: int | None, under: str | None) -> list[asyncpg.Record]:
        """Per union and year: amount, records, and members covered.

        Members covered add up within one period (separate grants cover separate people) but not
        across periods (the same people are covered each month), so a year's figure is its
        largest period's.
        """
        return await self.conn.fetch(
            """
            WITH per_period AS (
                SELECT s.union_id, s.year, s.period, sum(s.amount_fen) AS amount_fen,
                       sum(s.members_covered) AS members_covered, count(*) AS records
                FROM subsidies s JOIN unions u ON u.id = s.union_id
                WHERE ($1::integer IS NULL OR s.year = $1)
                  AND ($2::text IS NULL OR u.id = $2 OR $2 = ANY(u.path))
                GROUP BY s.union_id, s.year, s.period
            )
            SELECT p.union_id, u.name, p.year, sum(p.amount_fen)::bigint AS amount_fen,
                   max(p.members_covered)::bigint AS members_covered,
                   sum(p.records)::bigint AS records
            FROM per_period p JOIN unions u ON u.id = p.union_id
            GROUP BY p.union_id, u.name, p.year
            ORDER BY p.year, p.union_id
            """,
            year,
            under,
        )
