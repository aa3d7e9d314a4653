"""The fiscal backstop saga against a small fund: 200 claims approved at once, one request for
exactly the shortfall, a grant, every claim paid once; partial grants, reminders and escalation,
grants that match nothing."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest

from shared.events import mutual_aid as ev
from tests.integration.mutual_aid.harness import (
    CONTRIBUTION,
    YEAR,
    MutualAid,
    approve_all,
    clock_at,
    emitted,
    eventually,
    mutual_aid,
    of_type,
    scene,
    table_counts,
)
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


async def test_200_concurrent_approvals_one_request_for_the_shortfall_all_paid_once(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    clock = clock_at(date(YEAR, 6, 20))
    async with mutual_aid(servers, fund_database, namespace, clock) as service:
        contributed = 200 * CONTRIBUTION  # 24,000.00
        _, claim_ids = await scene(service, 200, contributed)
        benefits = sum((1001 * n + 1) // 2 for n in range(1, 201))
        assert benefits == 10_060_100  # 100,601.00 approved in all
        shortfall = benefits - contributed
        assert shortfall == 7_660_100  # 76,601.00

        await approve_all(service, claim_ids)
        await service.settled()
        # Within the batching window nothing is asked for yet; the fund paid what it could, in
        # approval order, and the rest wait.
        assert await service.requests() == []
        order = [
            r["claim_id"]
            for r in await service.pool.fetch("SELECT claim_id FROM claims ORDER BY approval_seq")
        ]
        paid_first = {
            r["claim_id"] for r in await service.pool.fetch("SELECT claim_id FROM payments")
        }
        assert paid_first and paid_first == set(order[: len(paid_first)])
        assert await service.states() == {
            "paid": len(paid_first),
            "awaiting_funds": 200 - len(paid_first),
        }

        clock.advance(timedelta(minutes=11))
        service.app.state.payouts.wake()
        [request] = await eventually(service.requests)
        assert request["amount_fen"] == shortfall
        assert request["claim_count"] == 200 - len(paid_first)
        assert set(request["claim_ids"]) == set(order[len(paid_first) :])
        balance = contributed - sum((1001 * (claim_ids.index(c) + 1) + 1) // 2 for c in paid_first)
        assert request["fund_balance_fen"] == balance  # the fund's position when asked
        # Settling again (a second replica, a restart) asks for nothing more.
        again = await service.settle_once()
        assert again.request is None and again.paid == ()
        assert len(await service.requests()) == 1

        grant = await service.finance.post(
            f"/backstop/requests/{request['request_id']}/grants",
            json={
                "amount_fen": shortfall,
                "reference": "CZ-2025-0001",
                "granted_on": f"{YEAR}-06-20",
            },
        )
        assert grant.status_code == 201, grant.text
        assert grant.json()["status"] == "granted" and grant.json()["outstanding_fen"] == 0
        # Other replicas settle at the same moment as this one's worker: the fund's lock makes
        # them take turns, and a claim paid by one is no longer payable for the next.
        await asyncio.gather(*(service.settle_once() for _ in range(5)))
        await eventually(lambda: _all_paid(service, 200), timeout=30)

        payments = await service.pool.fetch("SELECT claim_id, amount_fen FROM payments")
        assert sorted(p["claim_id"] for p in payments) == sorted(claim_ids)  # each once
        payouts = await service.pool.fetch(
            "SELECT reference, count(*) AS n FROM journal_entries WHERE kind = 'payout'"
            " GROUP BY reference"
        )
        assert len(payouts) == 200 and {p["n"] for p in payouts} == {1}
        total_paid = sum(p["amount_fen"] for p in payments)
        assert total_paid == contributed + shortfall == benefits
        fund = (await service.office.get("/fund")).json()
        assert fund["fund_cash_fen"] == 0 and fund["balances"]["claims_payable_fen"] == 0
        assert fund["balances"]["backstop_income_fen"] == shortfall
        assert fund["balances_match_journal"] is True
        assert min(await _cash_after_each_entry(service)) >= 0  # never below zero, at any point

        events = await emitted(
            servers,
            service.settings.events_topic,
            lambda found: (
                len(of_type(found, ev.ClaimPaid)) == 200
                and bool(of_type(found, ev.BackstopGranted))
            ),
        )
        assert len({e.claim_id for e in of_type(events, ev.ClaimPaid)}) == 200
        [requested] = of_type(events, ev.BackstopRequested)
        assert requested.amount_fen == shortfall and requested.fund_balance_fen == balance
        assert [e.amount_fen for e in of_type(events, ev.BackstopGranted)] == [shortfall]
        assert of_type(events, ev.FundBalanceLow)  # the fund fell below its 50,000.00 mark

        report = (await service.office.get("/reports/backstop")).json()
        assert report == [
            {
                "year": YEAR,
                "requests": 1,
                "requested_fen": shortfall,
                "granted_fen": shortfall,
                "withdrawn_fen": 0,
                "outstanding_fen": 0,
            }
        ]


async def test_partial_grant_reminders_escalation_and_grants_that_match_nothing(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    clock = clock_at(date(YEAR, 6, 20))
    async with mutual_aid(servers, fund_database, namespace, clock) as service:
        # 4 claims of 5.01, 10.01, 15.02, 20.02 yuan against 10.00 in the fund.
        _, claim_ids = await scene(service, 4, 1_000)
        for claim_id in claim_ids:  # one by one: approval order is submission order here
            await approve_all(service, [claim_id])
        await service.settled()
        clock.advance(timedelta(minutes=11))
        service.app.state.payouts.wake()
        [request] = await eventually(service.requests)
        # 501 paid; 499 left; unpaid 1001 + 1502 + 2002 = 4505 → ask for 4006
        assert request["amount_fen"] == 4_006 and request["fund_balance_fen"] == 499
        request_id = request["request_id"]
        grants = f"/backstop/requests/{request_id}/grants"

        not_finance = await service.client("backstop:grant")  # the scope, but federation's
        before = await table_counts(service.pool)
        refusals = {
            "unknown request": await service.finance.post(
                "/backstop/requests/BR-1999-9999/grants",
                json={"amount_fen": 100, "reference": "X-1", "granted_on": f"{YEAR}-06-20"},
            ),
            "above outstanding": await service.finance.post(
                grants,
                json={"amount_fen": 4_007, "reference": "X-2", "granted_on": f"{YEAR}-06-20"},
            ),
            "negative": await service.finance.post(
                grants, json={"amount_fen": -5, "reference": "X-3", "granted_on": f"{YEAR}-06-20"}
            ),
            "in the future": await service.finance.post(
                grants, json={"amount_fen": 5, "reference": "X-4", "granted_on": f"{YEAR}-07-20"}
            ),
            "not finance": await not_finance.post(
                grants, json={"amount_fen": 5, "reference": "X-5", "granted_on": f"{YEAR}-06-20"}
            ),
        }
        answers = {k: (a.status_code, a.json()["errors"][0]["field"]) for k, a in refusals.items()}
        assert answers == {
            "unknown request": (409, "request_id"),
            "above outstanding": (409, "amount_fen"),
            "negative": (422, "amount_fen"),
            "in the future": (422, "granted_on"),
            "not finance": (403, "department"),
        }
        assert await table_counts(service.pool) == before

        # Unanswered: reminded after 7 days, again after 14, escalated at 30.
        clock.advance(timedelta(days=6))
        assert await service.follow_up() == []
        clock.advance(timedelta(days=1))
        assert [f.action.value for f in await service.follow_up()] == ["remind"]
        assert await service.follow_up() == []  # once a day, not once a check
        clock.advance(timedelta(days=7))
        assert [f.action.value for f in await service.follow_up()] == ["remind"]
        clock.advance(timedelta(days=16))
        assert [f.action.value for f in await service.follow_up()] == ["escalate"]
        shown = (await service.finance.get(f"/backstop/requests/{request_id}")).json()
        assert shown["status"] == "escalated"
        assert shown["reminders"] == [f"{YEAR}-06-27", f"{YEAR}-07-04"]
        assert shown["escalated_on"] == f"{YEAR}-07-20"

        # A partial grant pays in approval order as far as it goes and leaves the rest owed.
        partial = await service.finance.post(
            grants, json={"amount_fen": 1_000, "reference": "CZ-P1", "granted_on": f"{YEAR}-07-20"}
        )
        assert partial.status_code == 201, partial.text
        assert partial.json()["outstanding_fen"] == 3_006
        assert partial.json()["status"] == "escalated"  # stays with a person until fully granted
        await eventually(lambda: _paid_count(service, 2))  # 499 + 1000 pays the 1001 claim
        assert (await service.claim(claim_ids[2]))["state"] == "awaiting_funds"
        assert (await service.settle_once()).request is None
        # Finance re-sends the same grant (it never saw our answer): acknowledged, not doubled.
        resent = await service.finance.post(
            grants, json={"amount_fen": 1_000, "reference": "CZ-P1", "granted_on": f"{YEAR}-07-20"}
        )
        assert resent.status_code == 200 and resent.json()["outstanding_fen"] == 3_006
        clashing = await service.finance.post(
            grants, json={"amount_fen": 999, "reference": "CZ-P1", "granted_on": f"{YEAR}-07-20"}
        )
        assert clashing.status_code == 409 and clashing.json()["errors"][0]["field"] == "reference"

        rest = await service.finance.post(
            grants, json={"amount_fen": 3_006, "reference": "CZ-P2", "granted_on": f"{YEAR}-07-20"}
        )
        assert rest.json()["status"] == "granted"
        await eventually(lambda: _all_paid(service, 4))
        assert (await service.office.get("/fund")).json()["fund_cash_fen"] == 0
        assert await service.follow_up() == []  # nothing left to chase

        events = await emitted(
            servers,
            service.settings.events_topic,
            lambda found: len(of_type(found, ev.BackstopGranted)) == 2,
        )
        assert [e.reminder_number for e in of_type(events, ev.BackstopReminded)] == [1, 2]
        [escalated] = of_type(events, ev.BackstopEscalated)
        assert escalated.days_open == 30 and escalated.outstanding_fen == 4_006
        assert len(of_type(events, ev.BackstopRequested)) == 1


async def test_contributions_arriving_before_the_grant_withdraw_what_is_no_longer_needed(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    clock = clock_at(date(YEAR, 6, 20))
    async with mutual_aid(servers, fund_database, namespace, clock) as service:
        # 3 claims of 5.01, 10.01, 15.02 yuan against 10.00 in the fund.
        enrolment_id, claim_ids = await scene(service, 3, 1_000)
        for claim_id in claim_ids:
            await approve_all(service, [claim_id])
        await service.settled()
        clock.advance(timedelta(minutes=11))
        service.app.state.payouts.wake()
        [request] = await eventually(service.requests)
        # 501 paid; 499 left; unpaid 1001 + 1502 = 2503 → ask for 2004
        assert request["amount_fen"] == 2_004
        shown = f"/backstop/requests/{request['request_id']}"

        # 11.00 arrives: the 10.01 claim is paid; 15.02 still needs 9.04 beyond the 5.98 left.
        await service.contribute(enrolment_id, 1_100, "R-SAGA-2")
        await eventually(lambda: _paid_count(service, 2))
        partly = (await service.finance.get(shown)).json()
        assert (partly["status"], partly["withdrawn_fen"], partly["outstanding_fen"]) == (
            "open",
            1_100,
            904,
        )
        # 9.04 more: every claim is paid from contributions, and the request closes.
        await service.contribute(enrolment_id, 904, "R-SAGA-3")
        await eventually(lambda: _all_paid(service, 3))
        closed = (await eventually(lambda: _withdrawn(service, shown))).json()
        assert (closed["amount_fen"], closed["withdrawn_fen"], closed["outstanding_fen"]) == (
            2_004,
            2_004,
            0,
        )
        assert await service.requests() == [closed]
        late = await service.finance.post(
            f"{shown}/grants",
            json={"amount_fen": 904, "reference": "CZ-LATE", "granted_on": f"{YEAR}-06-20"},
        )
        assert (late.status_code, late.json()["errors"][0]["field"]) == (409, "request_id")
        clock.advance(timedelta(days=8))
        assert await service.follow_up() == []  # not chased

        events = await emitted(
            servers,
            service.settings.events_topic,
            lambda found: len(of_type(found, ev.BackstopWithdrawn)) == 2,
        )
        assert [
            (e.amount_fen, e.outstanding_fen) for e in of_type(events, ev.BackstopWithdrawn)
        ] == [
            (1_100, 904),
            (904, 0),
        ]
        [report] = (await service.office.get("/reports/backstop")).json()
        assert (report["requested_fen"], report["withdrawn_fen"], report["outstanding_fen"]) == (
            2_004,
            2_004,
            0,
        )


async def _withdrawn(service: MutualAid, path: str) -> Any:
    answer = await service.finance.get(path)
    return answer if answer.json()["status"] == "withdrawn" else None


async def _all_paid(service: MutualAid, count: int) -> bool:
    return await service.states() == {"paid": count}


async def _paid_count(service: MutualAid, count: int) -> bool:
    return (await service.states()).get("paid") == count


async def _cash_after_each_entry(service: MutualAid) -> list[int]:
    rows = await service.pool.fetch(
        "SELECT sum(l.debit_fen - l.credit_fen) OVER (ORDER BY e.seq)::bigint AS cash"
        " FROM journal_entries e JOIN journal_lines l USING (entry_id)"
        " WHERE l.account = 'fund_cash' ORDER BY e.seq"
    )
    return [r["cash"] for r in rows]
