"""The runbook that moves an installation's union funds out of membership (docs/union_funds.md):
its SQL, as written there, copies every row into union funds' schema and seeds its view of the
unions; membership's migration 0006 then drops the old tables."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from pathlib import Path

import asyncpg
import orjson
import pytest
from alembic import command

from shared.migrations import alembic_config
from tests.support.database import create_database, drop_database
from tests.support.people import credit_code
from tests.support.servers import ROOT, Servers

pytestmark = pytest.mark.integration
RUNBOOK = ROOT / "docs" / "union_funds.md"
FUNDS_TABLES = ("remittance_batches", "remittances", "subsidies")


def runbook_sql(path: Path = RUNBOOK) -> str:
    (sql,) = re.findall(r"```sql\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    return "\n".join(line.removeprefix("   ") for line in sql.splitlines())


async def test_the_runbook_moves_every_row_and_membership_then_drops_its_tables(
    servers: Servers,
) -> None:
    db = await create_database(servers)
    try:
        membership = alembic_config("membership", db.dsn("membership"), "membership")
        await asyncio.to_thread(command.upgrade, membership, "0005")  # the release before
        code = credit_code(4242)
        conn = await asyncpg.connect(db.admin_dsn)
        try:
            employer = orjson.dumps({"name": "亳州药业有限公司", "credit_code": code}).decode()
            await conn.execute(
                "INSERT INTO membership.organisations"
                " (id, name, kind, parent_id, path, employer, founded_on, dissolved_on) VALUES"
                " ('city', '亳州市总工会', 'city_federation', NULL, '{}', NULL, NULL, NULL),"
                " ('pharma', '药业工会', 'enterprise', 'city', '{city}', $1::jsonb,"
                "  '2020-01-01', NULL),"
                " ('closed', '旧厂工会', 'enterprise', 'city', '{city}', NULL,"
                "  '2010-01-01', '2024-06-30')",
                employer,
            )
            await conn.execute(
                "INSERT INTO membership.remittance_batches (batch_id, digest, submitted_by, result)"
                " VALUES ('tax-1', 'd1', 'tax-app', '{\"received\": 2}')"
            )
            await conn.execute(
                "INSERT INTO membership.remittances"
                " (credit_code, employer_name, period, period_start, period_end, record_key,"
                "  payroll_base_fen, amount_fen, expected_fen, paid_on, union_id, batch_id) VALUES"
                " ($1, '亳州药业有限公司', '2025-10', '2025-10-01', '2025-10-31', 'k1',"
                "  100, 2, 2, '2025-11-10', 'pharma', 'tax-1'),"
                " ($1, '亳州药业有限公司', '2025-11', '2025-11-01', '2025-11-30', 'k2',"
                "  100, 2, 2, '2025-12-10', 'pharma', 'tax-1')",
                code,
            )
            await conn.execute(
                "INSERT INTO membership.subsidies"
                " (reference, union_id, amount_fen, period, year, members_covered, recorded_by)"
                " VALUES ('CZ-1', 'pharma', 5000, '2025', 2025, 30, 'finance-app')"
            )
            union_funds = alembic_config("union_funds", db.dsn("union_funds"), "union_funds")
            await asyncio.to_thread(command.upgrade, union_funds, "head")
            await conn.execute(runbook_sql())
            for table in FUNDS_TABLES:
                moved = await conn.fetch(f"SELECT * FROM union_funds.{table} ORDER BY 1")
                kept = await conn.fetch(f"SELECT * FROM membership.{table} ORDER BY 1")
                assert [dict(r) for r in moved] == [dict(r) for r in kept], table
            unions = {
                r["id"]: r for r in await conn.fetch("SELECT * FROM union_funds.unions ORDER BY id")
            }
            assert set(unions) == {"city", "pharma", "closed"}
            pharma = unions["pharma"]
            assert (pharma["credit_code"], pharma["employer_name"], pharma["path"]) == (
                code,
                "亳州药业有限公司",
                ["city"],
            )
            assert unions["closed"]["dissolved_on"] == date(2024, 6, 30)
            # The next remittance gets the next id, not one of the copied ones.
            next_id = await conn.fetchval("SELECT nextval('union_funds.remittances_id_seq')")
            assert next_id == 1 + await conn.fetchval("SELECT max(id) FROM union_funds.remittances")

            await asyncio.to_thread(command.upgrade, membership, "head")
            left = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'membership'"
                " AND tablename = ANY($1)",
                list(FUNDS_TABLES),
            )
            assert left == 0
            assert await conn.fetchval("SELECT count(*) FROM union_funds.remittances") == 2
        finally:
            await conn.close()
    finally:
        await drop_database(db)
