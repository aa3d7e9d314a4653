"""Read-only reports, straight from the schema: the fund over time, claims by status and unit,
benefits paid, the backstop per year, and units' arrears. Each answers with its own model."""

from __future__ import annotations

from datetime import date

import asyncpg
from pydantic import BaseModel, Field

from services.mutual_aid.claims import ClaimState
from services.mutual_aid.ledger import Account
from services.mutual_aid.ledger_views import Balances
from services.mutual_aid.money import format_yuan
from services.mutual_aid.search import Period
from services.mutual_aid.views import Money, Yuan

_MOVEMENT = (
    "CASE WHEN b.debit_normal THEN l.debit_fen - l.credit_fen ELSE l.credit_fen - l.debit_fen END"
)
# The year a claim counts in: its plan's scheme year, or (no plan covered it) its admission year.
_CLAIM_YEAR = "coalesce(c.scheme_year, extract(year FROM (c.intake ->> 'admission_date')::date))"


class FundDay(BaseModel):
    """A day money moved: what moved on each account, and every balance at the day's end."""

    date: date
    moved: Balances = Field(description="each account's change that day (0: unchanged)")
    balances: Balances
    fund_cash_yuan: Yuan
    net_position_fen: int = Field(
        description="what the fund holds beyond what it owes approved claims; may be negative"
    )


class ClaimTotals(BaseModel):
    claims: int
    approved_fen: Money
    expense_fen: Money = Field(description="total expense the claims declared")


class ClaimsReport(BaseModel):
    scheme_year: int | None = Field(description="null: every year")
    by_status: dict[ClaimState, ClaimTotals]
    by_unit: dict[str, dict[ClaimState, int]] = Field(description="claims per unit and state")


class PaidTotals(BaseModel):
    payments: int
    paid_fen: Money


class BenefitsPaidReport(BaseModel):
    scheme_year: int | None = Field(description="null: every year")
    payments: int
    paid_fen: Money
    paid_yuan: Yuan
    by_month: dict[str, PaidTotals] = Field(
        description='by month paid ("2026-07"), federation time'
    )
    by_unit: dict[str, PaidTotals]


class BackstopYear(BaseModel):
    year: int
    requests: int
    requested_fen: Money
    granted_fen: Money
    withdrawn_fen: Money
    outstanding_fen: Money


class Arrears(BaseModel):
    enrolment_id: str
    unit_id: str
    scheme_year: int
    expected_fen: Money
    received_fen: Money
    arrears_fen: int = Field(description="expected minus received; negative when paid ahead")


class Reports:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fund_position(self, days: Period) -> list[FundDay]:
        """Each day money moved within ``days``: what moved, and every balance at the end of
        that day."""
        rows = await self.conn.fetch(
            f"SELECT e.posted_on, l.account, sum({_MOVEMENT})::bigint AS moved"
            " FROM journal_entries e JOIN journal_lines l USING (entry_id)"
            " JOIN account_balances b USING (account)"
            " GROUP BY e.posted_on, l.account ORDER BY e.posted_on"
        )
        # Balances run from the first entry, so days before ``since`` are summed, not shown.
        running = dict.fromkeys(Account, 0)
        moved: dict[date, dict[Account, int]] = {}
        ends: dict[date, dict[Account, int]] = {}
        for r in rows:
            account = Account(r["account"])
            running[account] += r["moved"]
            moved.setdefault(r["posted_on"], {})[account] = r["moved"]
            ends[r["posted_on"]] = dict(running)
        return [
            FundDay(
                date=day,
                moved=Balances.of(moved[day]),
                balances=Balances.of(end),
                fund_cash_yuan=format_yuan(end[Account.FUND_CASH]),
                net_position_fen=end[Account.FUND_CASH] - end[Account.CLAIMS_PAYABLE],
            )
            for day, end in ends.items()
            if days.holds(day)
        ]

    async def claims(self, scheme_year: int | None) -> ClaimsReport:
        rows = await self.conn.fetch(
            "SELECT c.unit_id, c.state, count(*) AS claims,"
            " coalesce(sum(c.approved_amount_fen), 0)::bigint AS approved_fen,"
            " coalesce(sum((c.intake ->> 'total_expense')::bigint), 0)::bigint AS expense_fen"
            f" FROM claims c WHERE $1::int IS NULL OR {_CLAIM_YEAR} = $1"
            " GROUP BY c.unit_id, c.state ORDER BY c.unit_id, c.state",
            scheme_year,
        )
        by_status: dict[ClaimState, ClaimTotals] = {}
        by_unit: dict[str, dict[ClaimState, int]] = {}
        for r in rows:
            state = ClaimState(r["state"])
            totals = by_status.setdefault(
                state, ClaimTotals(claims=0, approved_fen=0, expense_fen=0)
            )
            totals.claims += r["claims"]
            totals.approved_fen += r["approved_fen"]
            totals.expense_fen += r["expense_fen"]
            by_unit.setdefault(r["unit_id"], {})[state] = r["claims"]
        return ClaimsReport(scheme_year=scheme_year, by_status=by_status, by_unit=by_unit)

    async def benefits_paid(self, scheme_year: int | None, zone: str) -> BenefitsPaidReport:
        rows = await self.conn.fetch(
            "SELECT c.unit_id, to_char(p.paid_at AT TIME ZONE $2, 'YYYY-MM') AS month,"
            " count(*) AS payments, sum(p.amount_fen)::bigint AS paid_fen"
            " FROM payments p JOIN claims c USING (claim_id)"
            " WHERE $1::int IS NULL OR c.scheme_year = $1"
            " GROUP BY c.unit_id, month ORDER BY month, c.unit_id",
            scheme_year,
            zone,
        )
        by_month: dict[str, PaidTotals] = {}
        by_unit: dict[str, PaidTotals] = {}
        for r in rows:
            for bucket in (
                by_month.setdefault(r["month"], PaidTotals(payments=0, paid_fen=0)),
                by_unit.setdefault(r["unit_id"], PaidTotals(payments=0, paid_fen=0)),
            ):
                bucket.payments += r["payments"]
                bucket.paid_fen += r["paid_fen"]
        total = sum(r["paid_fen"] for r in rows)
        return BenefitsPaidReport(
            scheme_year=scheme_year,
            payments=sum(r["payments"] for r in rows),
            paid_fen=total,
            paid_yuan=format_yuan(total),
            by_month=by_month,
            by_unit=by_unit,
        )

    async def backstop(self) -> list[BackstopYear]:
        rows = await self.conn.fetch(
            "SELECT extract(year FROM r.requested_on)::int AS year, count(*) AS requests,"
            " sum(r.amount_fen)::bigint AS requested_fen,"
            " coalesce(sum(g.granted), 0)::bigint AS granted_fen,"
            " sum(r.withdrawn_fen)::bigint AS withdrawn_fen"
            " FROM backstop_requests r LEFT JOIN (SELECT request_id, sum(amount_fen) AS granted"
            " FROM backstop_grants GROUP BY request_id) g USING (request_id)"
            " GROUP BY 1 ORDER BY 1"
        )
        return [
            BackstopYear(
                **dict(r),
                outstanding_fen=r["requested_fen"] - r["granted_fen"] - r["withdrawn_fen"],
            )
            for r in rows
        ]

    async def arrears(self, scheme_year: int | None) -> list[Arrears]:
        """Per enrolment, as ``Enrolment.arrears``: every member covered at any time in the year
        owes the year's contribution."""
        rows = await self.conn.fetch(
            "SELECT e.enrolment_id, e.unit_id, e.scheme_year,"
            " e.contribution_per_member_fen * (SELECT count(*) FROM coverages c"
            "   WHERE c.enrolment_id = e.enrolment_id) AS expected_fen,"
            " (SELECT coalesce(sum(amount_fen), 0)::bigint FROM contributions x"
            "   WHERE x.enrolment_id = e.enrolment_id) AS received_fen"
            " FROM enrolments e WHERE $1::int IS NULL OR e.scheme_year = $1"
            " ORDER BY e.scheme_year, e.unit_id",
            scheme_year,
        )
        return [
            Arrears(**dict(r), arrears_fen=r["expected_fen"] - r["received_fen"])
            for r in rows
            if r["expected_fen"] != r["received_fen"]
        ]
