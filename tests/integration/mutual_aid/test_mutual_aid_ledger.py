"""The database's own guards under the domain's: the fund's cash cannot go below zero, an entry
must balance, and the journal cannot be rewritten, whatever SQL reaches it."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from tests.integration.mutual_aid.harness import YEAR, clock_at, mutual_aid
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


async def post(conn: asyncpg.Connection, entry_id: str, lines: list[tuple[str, int, int]]) -> None:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO journal_entries (entry_id, posted_on, kind, reference)"
            " VALUES ($1, $2, 'correction', 'test')",
            entry_id,
            date(YEAR, 6, 20),
        )
        for n, (account, debit, credit) in enumerate(lines, start=1):
            await conn.execute(
                "INSERT INTO journal_lines (entry_id, line_no, account, debit_fen, credit_fen)"
                " VALUES ($1, $2, $3, $4, $5)",
                entry_id,
                n,
                account,
                debit,
                credit,
            )


async def test_the_database_refuses_overdrafts_unbalanced_entries_and_rewrites(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    async with mutual_aid(servers, fund_database, namespace, clock_at(date(YEAR, 6, 20))) as s:
        async with s.pool.acquire() as conn:
            await post(conn, "in", [("fund_cash", 500, 0), ("contributions_income", 0, 500)])
            with pytest.raises(asyncpg.CheckViolationError, match="fund_cash_never_negative"):
                await post(conn, "out", [("claims_payable", 501, 0), ("fund_cash", 0, 501)])
            with pytest.raises(asyncpg.RaiseError, match="does not balance"):
                await post(conn, "odd", [("fund_cash", 10, 0), ("contributions_income", 0, 9)])
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(
                    "UPDATE journal_lines SET debit_fen = 5000 WHERE entry_id = 'in'"
                )
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("DELETE FROM journal_entries WHERE entry_id = 'in'")
        fund = (await s.office.get("/fund")).json()
        assert fund["fund_cash_fen"] == 500 and fund["balances_match_journal"] is True
