"""A crash between finance's grant and the payouts it pays for: the grant is kept, nothing is
half-paid, and the restarted service pays every waiting claim exactly once."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from services.mutual_aid.ledger_repository import Payments
from tests.integration.mutual_aid.harness import (
    YEAR,
    approve_all,
    clock_at,
    eventually,
    mutual_aid,
    scene,
)
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


async def test_a_crash_after_the_grant_resumes_on_restart_and_pays_each_claim_once(
    servers: Servers,
    fund_database: ScratchDatabase,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = clock_at(date(YEAR, 6, 20))
    grant = {"amount_fen": 4_006, "reference": "CZ-CRASH-1", "granted_on": f"{YEAR}-06-20"}
    async with mutual_aid(servers, fund_database, namespace, clock) as first:
        # 4 claims of 5.01, 10.01, 15.02, 20.02 against 10.00: the first is paid, 40.06 asked for.
        _, claim_ids = await scene(first, 4, 1_000)
        for claim_id in claim_ids:
            await approve_all(first, [claim_id])
        await first.settled()
        clock.advance(timedelta(minutes=11))
        first.app.state.payouts.wake()
        [request] = await eventually(first.requests)
        assert request["amount_fen"] == grant["amount_fen"]

        # From here the process "dies" inside every payout transaction, after the payouts were
        # journaled and the claims marked paid, before the commit.
        died = asyncio.Event()

        async def killed(self: Payments, payments: object) -> None:
            died.set()
            raise ConnectionResetError("the process was killed mid-payout")

        monkeypatch.setattr(Payments, "add_many", killed)
        granted = await first.finance.post(
            f"/backstop/requests/{request['request_id']}/grants", json=grant
        )
        assert granted.status_code == 201, granted.text
        await asyncio.wait_for(died.wait(), 10)

        # The grant is journaled; no waiting claim is paid, none half-paid.
        assert await first.states() == {"paid": 1, "awaiting_funds": 3}
        fund = (await first.office.get("/fund")).json()
        assert fund["fund_cash_fen"] == 499 + 4_006
        assert await first.pool.fetchval("SELECT count(*) FROM payments") == 1
    monkeypatch.undo()

    async with mutual_aid(servers, fund_database, namespace, clock) as second:
        # The restarted payout worker finds the waiting claims and the money for them.
        await eventually(lambda: _all_paid(second))
        # Finance never saw our answer and sends the grant again: acknowledged, not doubled.
        again = await second.finance.post(
            f"/backstop/requests/{request['request_id']}/grants", json=grant
        )
        assert again.status_code == 200 and again.json()["status"] == "granted"
        second.app.state.payouts.wake()
        await asyncio.sleep(0.5)  # give a wrong second payout the chance to happen

        payments = await second.pool.fetch("SELECT claim_id, amount_fen FROM payments")
        assert sorted(p["claim_id"] for p in payments) == sorted(claim_ids)
        entries = await second.pool.fetch(
            "SELECT kind, count(*) AS n, sum(credit_fen)::bigint AS total"
            " FROM journal_entries JOIN journal_lines USING (entry_id)"
            " WHERE credit_fen > 0 GROUP BY kind"
        )
        by_kind = {e["kind"]: (e["n"], e["total"]) for e in entries}
        assert by_kind["backstop_grant"] == (1, 4_006)
        assert by_kind["payout"] == (4, 501 + 1001 + 1502 + 2002)
        assert sum(p["amount_fen"] for p in payments) == 1_000 + 4_006  # contributions + grant
        fund = (await second.office.get("/fund")).json()
        assert fund["fund_cash_fen"] == 0 and fund["balances_match_journal"] is True


async def _all_paid(service) -> bool:
    return await service.states() == {"paid": 4}
