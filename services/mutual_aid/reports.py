"""Read-only reports, straight from the schema: the fund over time, claims by status and unit,
benefits paid, the backstop per year, and units' arrears."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from services.mutual_aid.ledger import Account
from services.mutual_aid.money import format_yuan

_MOVEMENT = (
    "CASE WHEN b.debit_normal THEN l.debit_fen - l.credit_fen ELSE l.credit_fen - l.debit_fen END"
)
# The year a claim counts in: its plan's scheme year, or (no plan covered it) its admission year.
_CLAIM_YEAR = "coalesce(c.scheme_year, extract(year FROM (c.intake ->> 'admission_date')::date))"


class Reports:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fund_position(self, since: date | None, until: date | None) -> list[dict[str, Any]]:
        """Each day money moved: what moved, and every balance at the end of that day."""
        rows = await self.conn.fetch(
            f"SELECT e.posted_on, l.account, sum({_MOVEMENT})::bigint AS moved"
            " FROM journal_entries e JOIN journal_lines l USING (entry_id)"
            " JOIN account_balances b USING (account)"
            " GROUP BY e.posted_on, l.account ORDER BY e.posted_on"
        )
        running = dict.fromkeys(Account, 0)
        days: dict[date, dict[str, Any]] = {}
        for r in rows:
            day = days.setdefault(r["posted_on"], {"date": r["posted_on"], "moved": {}})
            account = Account(r["account"])
            running[account] += r["moved"]
            day["moved"][f"{account.value}_fen"] = r["moved"]
            day["balances"] = {f"{a.value}_fen": v for a, v in running.items()}
        return [
            {
                **d,
                "fund_cash_yuan": format_yuan(d["balances"]["fund_cash_fen"]),
                # What the fund holds beyond what it already owes approved claims.
                "net_position_fen": d["balances"]["fund_cash_fen"]
                - d["balances"]["claims_payable_fen"],
            }
            for day, d in days.items()
            if (since is None or day >= since) and (until is None or day <= until)
        ]

    async def claims(self, scheme_year: int | None) -> dict[str, Any]:
        rows = await self.conn.fetch(
            "SELECT c.unit_id, c.state, count(*) AS claims,"
            " coalesce(sum(c.approved_amount_fen), 0)::bigint AS approved_fen,"
            " coalesce(sum((c.intake ->> 'total_expense')::bigint), 0)::bigint AS expense_fen"
            f" FROM claims c WHERE $1::int IS NULL OR {_CLAIM_YEAR} = $1"
            " GROUP BY c.unit_id, c.state ORDER BY c.unit_id, c.state",
            scheme_year,
        )
        by_status: dict[str, dict[str, int]] = {}
        by_unit: dict[str, dict[str, int]] = {}
        for r in rows:
            status = by_status.setdefault(
                r["state"], {"claims": 0, "approved_fen": 0, "expense_fen": 0}
            )
            for key in status:
                status[key] += r[key]
            by_unit.setdefault(r["unit_id"], {})[r["state"]] = r["claims"]
        return {"scheme_year": scheme_year, "by_status": by_status, "by_unit": by_unit}

    async def benefits_paid(self, scheme_year: int | None, zone: str) -> dict[str, Any]:
        rows = await self.conn.fetch(
            "SELECT c.unit_id, to_char(p.paid_at AT TIME ZONE $2, 'YYYY-MM') AS month,"
            " count(*) AS payments, sum(p.amount_fen)::bigint AS paid_fen"
            " FROM payments p JOIN claims c USING (claim_id)"
            " WHERE $1::int IS NULL OR c.scheme_year = $1"
            " GROUP BY c.unit_id, month ORDER BY month, c.unit_id",
            scheme_year,
            zone,
        )
        by_month: dict[str, dict[str, int]] = {}
        by_unit: dict[str, dict[str, int]] = {}
        for r in rows:
            for bucket in (
                by_month.setdefault(r["month"], {}),
                by_unit.setdefault(r["unit_id"], {}),
            ):
                bucket["payments"] = bucket.get("payments", 0) + r["payments"]
                bucket["paid_fen"] = bucket.get("paid_fen", 0) + r["paid_fen"]
        total = sum(r["paid_fen"] for r in rows)
        return {
            "scheme_year": scheme_year,
            "payments": sum(r["payments"] for r in rows),
            "paid_fen": total,
            "paid_yuan": format_yuan(total),
            "by_month": by_month,
            "by_unit": by_unit,
        }

    async def backstop(self) -> list[dict[str, Any]]:
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
            {
                "year": r["year"],
                "requests": r["requests"],
                "requested_fen": r["requested_fen"],
                "granted_fen": r["granted_fen"],
                "withdrawn_fen": r["withdrawn_fen"],
                "outstanding_fen": r["requested_fen"] - r["granted_fen"] - r["withdrawn_fen"],
            }
            for r in rows
        ]

    async def arrears(self, scheme_year: int | None) -> list[dict[str, Any]]:
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
            {**dict(r), "arrears_fen": r["expected_fen"] - r["received_fen"]}
            for r in rows
            if r["expected_fen"] != r["received_fen"]
        ]
