"""SQL for the membership schema: organisations, members, roster jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from services.membership.domain import (
    Card,
    Category,
    Channel,
    Employer,
    HeadcountBand,
    Member,
    Organisation,
    OrgKind,
    Spell,
    Status,
)
from services.membership.identity import ResidentId
from services.membership.roster import MemberSnapshot
from shared.errors import NotFound
from shared.uow import Track, untracked

MEMBER_COLUMNS = (
    "id",
    "id_number",
    "name",
    "sex",
    "birth_date",
    "mobile",
    "categories",
    "employer_name",
    "union_id",
    "channel",
    "status",
    "joined_on",
    "card_number",
    "cards",
    "timeline",
)


_PLACEHOLDERS = ", ".join(f"${i}" for i in range(1, len(MEMBER_COLUMNS) + 1))
_ADD_MEMBER = (
    f"INSERT INTO members ({', '.join(MEMBER_COLUMNS)}) VALUES ({_PLACEHOLDERS})"
    " ON CONFLICT (id_number) DO NOTHING RETURNING true"
)


@dataclass(frozen=True)
class Joining:
    """For a join: the member already holding the ID number, the union, a fresh card serial."""

    holder: str | None
    union: Organisation | None
    card_serial: int | None


def member_row(m: Member) -> tuple[Any, ...]:
    return (
        m.id,
        m.resident_id.number,
        m.name,
        m.resident_id.sex.value,
        m.resident_id.birth_date,
        m.mobile,
        sorted(m.declared_categories),
        m.employer_name,
        m.union_id,
        m.channel.value,
        m.status.value,
        m.joined_on,
        m.card_number,
        # Dates as they are: the jsonb codec (orjson) writes them as ISO text, faster than here.
        [
            {"number": c.number, "issued_on": c.issued_on, "revoked_on": c.revoked_on}
            for c in m.cards
        ],
        [{"start": s.start, "status": s.status, "union_id": s.union_id} for s in m.timeline],
    )


def member_of(r: asyncpg.Record) -> Member:
    return Member(
        id=r["id"],
        name=r["name"],
        resident_id=ResidentId.of(r["id_number"]),
        mobile=r["mobile"],
        categories=frozenset(Category(c) for c in r["categories"]),
        employer_name=r["employer_name"],
        channel=Channel(r["channel"]),
        cards=[
            Card(
                c["number"],
                date.fromisoformat(c["issued_on"]),
                date.fromisoformat(c["revoked_on"]) if c["revoked_on"] else None,
            )
            for c in r["cards"]
        ],
        timeline=[
            Spell(date.fromisoformat(s["start"]), Status(s["status"]), s["union_id"])
            for s in r["timeline"]
        ],
    )


def organisation_of(r: asyncpg.Record) -> Organisation:
    e = r["employer"]
    return Organisation(
        id=r["id"],
        name=r["name"],
        kind=OrgKind(r["kind"]),
        parent_id=r["parent_id"],
        path=list(r["path"]),
        employer=Employer(
            e["name"], e["credit_code"], HeadcountBand(e["headcount_band"]), e["address"]
        )
        if e
        else None,
        founded_on=r["founded_on"],
        dissolved_on=r["dissolved_on"],
    )


class Organisations:
    def __init__(self, conn: asyncpg.Connection, track: Track = untracked) -> None:
        self.conn = conn
        self.track = track  # a unit of work's: what is loaded or added publishes its events

    async def get(
        self, org_id: str, *, field: str = "organisation_id", lock: bool = False
    ) -> Organisation:
        row = await self.conn.fetchrow(
            "SELECT * FROM organisations WHERE id = $1" + (" FOR UPDATE" if lock else ""), org_id
        )
        if row is None:
            raise NotFound(field, "organisation_not_found", f"no organisation {org_id}")
        return self.track(organisation_of(row))

    async def add(self, org: Organisation) -> None:
        self.track(org)
        await self.conn.execute(
            "INSERT INTO organisations (id, name, kind, parent_id, path, employer, founded_on)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            org.id,
            org.name,
            org.kind.value,
            org.parent_id,
            org.path,
            _employer(org.employer),
            org.founded_on,
        )

    async def save(self, org: Organisation) -> None:
        await self.conn.execute(
            "UPDATE organisations SET name = $2, parent_id = $3, path = $4, dissolved_on = $5"
            " WHERE id = $1",
            org.id,
            org.name,
            org.parent_id,
            org.path,
            org.dissolved_on,
        )

    async def credit_code_taken(self, code: str) -> str | None:
        return await self.conn.fetchval(
            "SELECT id FROM organisations WHERE employer ->> 'credit_code' = $1"
            " AND dissolved_on IS NULL",
            code,
        )

    async def descendants(self, org_id: str) -> list[Organisation]:
        """Every organisation below ``org_id``, parents before children."""
        rows = await self.conn.fetch(
            "SELECT * FROM organisations WHERE $1 = ANY(path) ORDER BY cardinality(path), id",
            org_id,
        )
        return [self.track(organisation_of(r)) for r in rows]

    async def children_count(self, org_id: str) -> int:
        return await self.conn.fetchval(
            "SELECT count(*) FROM organisations WHERE parent_id = $1 AND dissolved_on IS NULL",
            org_id,
        )

    async def search(
        self,
        *,
        parent_id: str | None,
        under: str | None,
        kind: OrgKind | None,
        name: str | None,
        credit_code: str | None,
        dissolved: bool | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Organisation]]:
        """(how many match, the page ``offset``/``limit`` of them by id). ``name`` is a part of
        the name in any case; ``under`` is a subtree without its root."""
        where = (
            " FROM organisations WHERE ($1::text IS NULL OR parent_id = $1)"
            " AND ($2::text IS NULL OR $2 = ANY(path))"
            " AND ($3::text IS NULL OR kind = $3)"
            " AND ($4::text IS NULL OR strpos(lower(name), lower($4)) > 0)"
            " AND ($5::text IS NULL OR employer ->> 'credit_code' = $5)"
            " AND ($6::boolean IS NULL OR (dissolved_on IS NOT NULL) = $6)"
        )
        args = (parent_id, under, kind.value if kind else None, name, credit_code, dissolved)
        total = await self.conn.fetchval("SELECT count(*)" + where, *args)
        rows = await self.conn.fetch(
            "SELECT *" + where + " ORDER BY id OFFSET $7 LIMIT $8", *args, offset, limit
        )
        return total, [organisation_of(r) for r in rows]

    async def tree(self, root_id: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT id, parent_id, founded_on FROM organisations WHERE id = $1 OR $1 = ANY(path)",
            root_id,
        )


def _employer(e: Employer | None) -> dict[str, str] | None:
    if e is None:
        return None
    return {
        "name": e.name,
        "credit_code": e.credit_code,
        "headcount_band": e.headcount_band.value,
        "address": e.address,
    }


class Members:
    def __init__(self, conn: asyncpg.Connection, track: Track = untracked) -> None:
        self.conn = conn
        self.track = track  # a unit of work's: what is loaded or added publishes its events

    async def get(self, member_id: str, *, lock: bool = False) -> Member:
        row = await self.conn.fetchrow(
            "SELECT * FROM members WHERE id = $1" + (" FOR UPDATE" if lock else ""), member_id
        )
        if row is None:
            raise NotFound("member_id", "member_not_found", f"no member {member_id}")
        return self.track(member_of(row))

    async def by_ids(self, member_ids: Sequence[str]) -> list[Member]:
        rows = await self.conn.fetch(
            "SELECT * FROM members WHERE id = ANY($1) ORDER BY id FOR UPDATE", list(member_ids)
        )
        return [self.track(member_of(r)) for r in rows]

    async def id_of(
        self, *, id_number: str | None = None, card_number: str | None = None
    ) -> str | None:
        if id_number is not None:
            return await self.conn.fetchval(
                "SELECT id FROM members WHERE id_number = $1", id_number
            )
        return await self.conn.fetchval(
            "SELECT id FROM members WHERE card_number = $1 OR cards @> $2",
            card_number,
            [{"number": card_number}],
        )

    async def joining(self, id_number: str, union_id: str) -> Joining:
        """What a join needs, in one round trip; a card serial only when it may go ahead."""
        row = await self.conn.fetchrow(
            "SELECT o.*, m.id AS holder, CASE WHEN m.id IS NULL AND o.id IS NOT NULL"
            " THEN nextval('card_serial') END AS card_serial FROM (SELECT) AS one"
            " LEFT JOIN members m ON m.id_number = $1 LEFT JOIN organisations o ON o.id = $2",
            id_number,
            union_id,
        )
        assert row is not None
        union = organisation_of(row) if row["id"] is not None else None
        return Joining(row["holder"], union, row["card_serial"])

    def adding(self, member: Member) -> tuple[str, *tuple[Any, ...]]:
        """The statement inserting a new member, for :meth:`UnitOfWork.commit_with`: it returns
        nothing when the ID number is taken. A join racing another with the same number waits
        for it there, then sees it has lost."""
        self.track(member)
        return _ADD_MEMBER, *member_row(member)

    async def add_many(self, members: Iterable[Member]) -> None:
        # COPY: the roster import adds thousands per chunk.
        await self.conn.copy_records_to_table(
            "members",
            records=[member_row(self.track(m)) for m in members],
            columns=MEMBER_COLUMNS,
        )

    async def save(self, member: Member) -> None:
        await self.save_many([member])

    async def save_many(self, members: Sequence[Member]) -> None:
        assigns = ", ".join(f"{c} = ${i}" for i, c in enumerate(MEMBER_COLUMNS[1:], start=2))
        await self.conn.executemany(
            f"UPDATE members SET {assigns}, updated_at = now() WHERE id = $1",
            [member_row(m) for m in members],
        )

    async def snapshots(self, id_numbers: Sequence[str]) -> dict[str, MemberSnapshot]:
        rows = await self.conn.fetch(
            "SELECT id_number, id, name, mobile, categories, status, union_id FROM members"
            " WHERE id_number = ANY($1)",
            list(id_numbers),
        )
        return {
            r["id_number"]: MemberSnapshot(
                r["id"],
                r["name"],
                r["mobile"],
                frozenset(Category(c) for c in r["categories"]),
                Status(r["status"]),
                r["union_id"],
            )
            for r in rows
        }

    async def current_id_numbers(
        self, union_id: str, *, batch: int = 10_000
    ) -> AsyncIterator[list[str]]:
        """The union's current members' ID numbers, a batch at a time: a union may have 657,000.

        Needs a transaction (a cursor).
        """
        cursor = await self.conn.cursor(
            "SELECT id_number FROM members WHERE union_id = $1 AND status <> 'left'", union_id
        )
        while rows := await cursor.fetch(batch):
            yield [r["id_number"] for r in rows]

    async def ids_by_id_number(self, id_numbers: Sequence[str]) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT id FROM members WHERE id_number = ANY($1)", list(id_numbers)
        )
        return [r["id"] for r in rows]

    async def not_left_in(self, union_id: str) -> int:
        return await self.conn.fetchval(
            "SELECT count(*) FROM members WHERE union_id = $1 AND status <> 'left'", union_id
        )

    async def roster(
        self,
        union_id: str,
        *,
        status: str | None,
        category: str | None,
        name: str | None,
        after: str | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        """A page of a union's roster, by member id (keyset: stable under concurrent joins);
        ``name`` is a part of the name."""
        return await self.conn.fetch(
            "SELECT * FROM members WHERE union_id = $1"
            " AND ($2::text IS NULL OR status = $2)"
            " AND ($3::text IS NULL OR $3 = ANY(categories) OR ($3 = 'woman' AND sex = 'female'))"
            " AND ($4::text IS NULL OR strpos(name, $4) > 0)"
            " AND ($5::text IS NULL OR id > $5)"
            " ORDER BY id LIMIT $6",
            union_id,
            status,
            category,
            name,
            after,
            limit,
        )

    async def card_serials(self, count: int) -> list[int]:
        # One array, not a row per serial: a roster chunk takes thousands.
        serials: list[int] | None = await self.conn.fetchval(
            "SELECT array_agg(nextval('card_serial')) FROM generate_series(1, $1)", count
        )
        return serials or []

    async def counts_by_union(
        self, union_ids: Sequence[str], start: date, end: date
    ) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            """
            SELECT union_id,
                   count(*) FILTER (WHERE status = 'active') AS members,
                   count(*) FILTER (WHERE status = 'active' AND 'migrant_worker' = ANY(categories))
                       AS migrant_worker,
                   count(*) FILTER (WHERE status = 'active'
                                    AND 'new_employment_form' = ANY(categories))
                       AS new_employment_form,
                   count(*) FILTER (WHERE status = 'active' AND sex = 'female') AS woman,
                   count(*) FILTER (WHERE joined_on BETWEEN $2 AND $3) AS new_members
            FROM members WHERE union_id = ANY($1) GROUP BY union_id
            """,
            list(union_ids),
            start,
            end,
        )
