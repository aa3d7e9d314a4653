"""SQL for the fund: its double-entry journal, payments and backstop requests.

The fund is one aggregate. Every use case that moves money first takes the fund's row lock
(:meth:`Fund.open_ledger`), so approvals, payouts, contributions and grants are serialised and
the balance a decision sees is the balance it posts against. Balances are kept per account by a
trigger from the journal lines, inside the same transaction, with a CHECK that the fund's cash
never goes below zero: the domain refuses an overdraft first, the database refuses it anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from services.mutual_aid.backstop import CLOSED, BackstopRequest, BackstopStatus, Grant
from services.mutual_aid.ledger import LOW_BALANCE, Account, EntryKind, Ledger
from services.mutual_aid.money import Fen
from services.mutual_aid.repository import Track, read_only
from services.mutual_aid.search import Page, Period

# Entry ids say what the entry is for, so the same movement can never be posted twice: the
# journal's primary key refuses a second payout of a claim or a second posting of a receipt.


def contribution_entry(receipt_number: str) -> str:
    return f"contribution:{receipt_number}"


def approval_entry(claim_id: str) -> str:
    return f"approved:{claim_id}"


def payout_entry(claim_id: str) -> str:
    return f"payout:{claim_id}"


def grant_entry(reference: str) -> str:
    return f"grant:{reference}"


class Fund:
    def __init__(self, conn: asyncpg.Connection, track: Track[Ledger] = read_only) -> None:
        self.conn = conn
        self.track = track
        self._saved: set[str] = set()

    async def open_ledger(self) -> Ledger:
        """Lock the fund until the transaction ends and carry on its ledger from the balances."""
        await self.conn.execute(
            "SELECT 1 FROM account_balances WHERE account = 'fund_cash' FOR UPDATE"
        )
        balances = await self.balances()
        return self.track(Ledger.resume(balances, low_balance_threshold=LOW_BALANCE))

    async def balances(self) -> dict[Account, Fen]:
        rows = await self.conn.fetch("SELECT account, balance_fen FROM account_balances")
        return {Account(r["account"]): r["balance_fen"] for r in rows}

    async def derived_balances(self) -> dict[Account, Fen]:
        """Every balance summed from the journal lines alone: the audit of the kept balances."""
        rows = await self.conn.fetch(
            "SELECT b.account, coalesce(sum(CASE WHEN b.debit_normal"
            " THEN l.debit_fen - l.credit_fen ELSE l.credit_fen - l.debit_fen END), 0)::bigint"
            " AS total"
            " FROM account_balances b LEFT JOIN journal_lines l USING (account)"
            " GROUP BY b.account"
        )
        return {Account(r["account"]): r["total"] for r in rows}

    async def save(self, ledger: Ledger) -> None:
        """Store the entries posted since the ledger was opened."""
        new = [e for e in ledger.entries if e.entry_id not in self._saved]
        await self.conn.executemany(
            "INSERT INTO journal_entries (entry_id, posted_on, kind, reference, memo)"
            " VALUES ($1, $2, $3, $4, $5)",
            [(e.entry_id, e.posted_on, e.kind.value, e.reference, e.memo) for e in new],
        )
        await self.conn.executemany(
            "INSERT INTO journal_lines (entry_id, line_no, account, debit_fen, credit_fen)"
            " VALUES ($1, $2, $3, $4, $5)",
            [
                (e.entry_id, n, line.account.value, line.debit, line.credit)
                for e in new
                for n, line in enumerate(e.lines, start=1)
            ],
        )
        self._saved.update(e.entry_id for e in new)

    async def journal(
        self,
        *,
        kind: EntryKind | None,
        reference: str | None,
        days: Period,
        page: Page,
    ) -> list[asyncpg.Record]:
        """Entries in posting order with their lines; ``days`` bound ``posted_on``."""
        return await self.conn.fetch(
            "SELECT e.seq, e.entry_id, e.posted_on, e.kind, e.reference, e.memo, e.posted_at,"
            " jsonb_agg(jsonb_build_object('account', l.account, 'debit_fen', l.debit_fen,"
            " 'credit_fen', l.credit_fen) ORDER BY l.line_no) AS lines"
            " FROM journal_entries e JOIN journal_lines l USING (entry_id)"
            " WHERE ($1::text IS NULL OR e.kind = $1)"
            " AND ($2::text IS NULL OR e.reference = $2)"
            f" AND {days.sql('e.posted_on', 3)}"
            f" GROUP BY e.seq, e.entry_id ORDER BY e.seq {page.sql(5)}",
            None if kind is None else kind.value,
            reference,
            *days.args,
            *page.args,
        )


class Payments:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def next_references(self, year: int, count: int) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT nextval('payment_numbers') AS n FROM generate_series(1, $1)", count
        )
        return [f"PAY-{year}-{r['n']:06d}" for r in rows]

    async def add_many(
        self, payments: Sequence[tuple[str, str, Fen, datetime, str | None]]
    ) -> None:
        """(reference, claim id, amount, paid at, journal entry id) of each payment made."""
        await self.conn.executemany(
            "INSERT INTO payments (payment_reference, claim_id, amount_fen, paid_at, entry_id)"
            " VALUES ($1, $2, $3, $4, $5)",
            payments,
        )

    async def of_claim(self, claim_id: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow("SELECT * FROM payments WHERE claim_id = $1", claim_id)


def _request(row: asyncpg.Record, grants: list[asyncpg.Record]) -> BackstopRequest:
    return BackstopRequest(
        request_id=row["request_id"],
        amount=row["amount_fen"],
        claim_ids=tuple(row["claim_ids"]),
        fund_balance=row["fund_balance_fen"],
        requested_on=row["requested_on"],
        status=BackstopStatus(row["status"]),
        grants=[Grant(g["amount_fen"], g["reference"], g["granted_on"]) for g in grants],
        reminders=list(row["reminders"]),
        escalated_on=row["escalated_on"],
        withdrawn=row["withdrawn_fen"],
    )


class BackstopRequests:
    def __init__(self, conn: asyncpg.Connection, track: Track[BackstopRequest] = read_only) -> None:
        self.conn = conn
        self.track = track
        self._grants_saved: dict[str, int] = {}

    async def next_id(self, year: int) -> str:
        n = await self.conn.fetchval("SELECT nextval('backstop_numbers')")
        return f"BR-{year}-{n:04d}"

    async def _load(
        self,
        where: str,
        *args: object,
        lock: bool = False,
        page: Page | None = None,
    ) -> list[BackstopRequest]:
        """Requests matching ``where`` in request order, a ``page`` of them if given."""
        paging = ""
        if page is not None:
            paging = f" {page.sql(len(args) + 1)}"
            args = (*args, *page.args)
        rows = await self.conn.fetch(
            f"SELECT * FROM backstop_requests WHERE {where} ORDER BY requested_on, request_id"
            + paging
            + (" FOR UPDATE" if lock else ""),
            *args,
        )
        ids = [r["request_id"] for r in rows]
        grants = await self.conn.fetch(
            "SELECT * FROM backstop_grants WHERE request_id = ANY($1) ORDER BY recorded_at",
            ids,
        )
        by_request: dict[str, list[asyncpg.Record]] = {}
        for g in grants:
            by_request.setdefault(g["request_id"], []).append(g)
        found = [_request(r, by_request.get(r["request_id"], [])) for r in rows]
        for request in found:
            self.track(request)
            self._grants_saved[request.request_id] = len(request.grants)
        return found

    async def get(self, request_id: str, *, lock: bool = False) -> BackstopRequest | None:
        found = await self._load("request_id = $1", request_id, lock=lock)
        return found[0] if found else None

    async def open(self, *, lock: bool = False) -> list[BackstopRequest]:
        return await self._load("status <> ALL($1::text[])", sorted(CLOSED), lock=lock)

    async def search(
        self,
        *,
        status: BackstopStatus | None,
        year: int | None,
        claim_id: str | None,
        page: Page,
    ) -> list[BackstopRequest]:
        return await self._load(
            "($1::text IS NULL OR status = $1)"
            " AND ($2::int IS NULL OR extract(year FROM requested_on) = $2)"
            " AND ($3::text IS NULL OR claim_ids @> ARRAY[$3])",
            None if status is None else status.value,
            year,
            claim_id,
            page=page,
        )

    async def for_claim(self, claim_id: str) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT request_id FROM backstop_requests WHERE claim_ids @> ARRAY[$1]"
            " ORDER BY request_id",
            claim_id,
        )
        return [r["request_id"] for r in rows]

    async def grant_by_reference(self, reference: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT * FROM backstop_grants WHERE reference = $1", reference
        )

    async def add(self, request: BackstopRequest) -> None:
        await self.conn.execute(
            "INSERT INTO backstop_requests (request_id, amount_fen, claim_ids, fund_balance_fen,"
            " requested_on, status) VALUES ($1, $2, $3, $4, $5, $6)",
            request.request_id,
            request.amount,
            list(request.claim_ids),
            request.fund_balance,
            request.requested_on,
            request.status.value,
        )
        self._grants_saved[request.request_id] = 0
        self.track(request)

    async def save(self, request: BackstopRequest, *, recorded_by: str = "system") -> None:
        await self.conn.execute(
            "UPDATE backstop_requests SET status = $2, reminders = $3, escalated_on = $4,"
            " withdrawn_fen = $5 WHERE request_id = $1",
            request.request_id,
            request.status.value,
            request.reminders,
            request.escalated_on,
            request.withdrawn,
        )
        saved = self._grants_saved[request.request_id]
        await self.conn.executemany(
            "INSERT INTO backstop_grants (reference, request_id, amount_fen, granted_on, entry_id,"
            " recorded_by) VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (
                    g.reference,
                    request.request_id,
                    g.amount,
                    g.granted_on,
                    grant_entry(g.reference),
                    recorded_by,
                )
                for g in request.grants[saved:]
            ],
        )
        self._grants_saved[request.request_id] = len(request.grants)
