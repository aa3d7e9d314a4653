"""SQL for claims: the claim with its intake, assessment (the benefit's explanation) and
rejections, and each step in ``claim_steps`` with who took it, when, and through which system."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from services.mutual_aid.backstop import PayableClaim
from services.mutual_aid.benefits import BenefitCalculation, BenefitStep, YearToDate
from services.mutual_aid.claims import COMMITTED, SYSTEM, Claim, ClaimState, ClaimStep
from services.mutual_aid.intake import ClaimIntake, Rejection, RejectionCode
from services.mutual_aid.repository import REJECTED, Track, read_only
from services.mutual_aid.search import Page, Period
from shared.errors import NotFound


def assessment_json(calc: BenefitCalculation) -> dict[str, Any]:
    return {
        "eligible_expense": calc.eligible_expense,
        "deductible_applied": calc.deductible_applied,
        "banded": calc.banded,
        "benefit": calc.benefit,
        "steps": [
            {"rule": s.rule, "base": s.base, "amount": s.amount, "text": s.text} for s in calc.steps
        ],
    }


def _assessment(data: dict[str, Any] | None) -> BenefitCalculation | None:
    if data is None:
        return None
    return BenefitCalculation(
        eligible_expense=data["eligible_expense"],
        deductible_applied=data["deductible_applied"],
        banded=data["banded"],
        benefit=data["benefit"],
        steps=tuple(BenefitStep(**s) for s in data["steps"]),
    )


def _claim(row: asyncpg.Record, steps: list[asyncpg.Record]) -> Claim:
    return Claim(
        claim_id=row["claim_id"],
        intake=ClaimIntake.model_validate(row["intake"]),
        state=ClaimState(row["state"]),
        scheme_year=row["scheme_year"],
        plan_id=row["plan_id"],
        assessment=_assessment(row["assessment"]),
        rejections=tuple(Rejection(RejectionCode(r["code"]), r["text"]) for r in row["rejections"]),
        approved_amount=row["approved_amount_fen"],
        approved_at=row["approved_at"],
        adjustment_reason=row["adjustment_reason"],
        payment_reference=row["payment_reference"],
        history=[
            ClaimStep(
                action=s["action"],
                from_state=ClaimState(s["from_state"]) if s["from_state"] else None,
                to_state=ClaimState(s["to_state"]),
                by=s["by"],
                at=s["at"],
                note=s["note"],
            )
            for s in steps
        ],
    )


# The day of the first submission (resubmitting keeps it).
_SUBMITTED_ON = "(intake ->> 'submitted_on')::date"


class Claims:
    def __init__(self, conn: asyncpg.Connection, track: Track[Claim] = read_only) -> None:
        self.conn = conn
        self.track = track
        self._steps_saved: dict[str, int] = {}
        # Through which department system (app id) each loaded step was taken, step by step.
        self.vias: dict[str, list[str | None]] = {}

    async def next_id(self, year: int) -> str:
        n = await self.conn.fetchval("SELECT nextval('claim_numbers')")
        return f"CL-{year}-{n:06d}"

    async def next_approval_seq(self) -> int:
        n: int = await self.conn.fetchval("SELECT nextval('approval_order')")
        return n

    async def get(self, claim_id: str, *, lock: bool = False) -> Claim:
        claims = await self.get_many([claim_id], lock=lock)
        if claim_id not in claims:
            raise NotFound("claim_id", "unknown_claim", "no such claim", claim_id=claim_id)
        return claims[claim_id]

    async def get_many(self, claim_ids: Sequence[str], *, lock: bool = False) -> dict[str, Claim]:
        rows = await self.conn.fetch(
            "SELECT * FROM claims WHERE claim_id = ANY($1) ORDER BY claim_id"
            + (" FOR UPDATE" if lock else ""),
            list(claim_ids),
        )
        steps = await self.conn.fetch(
            "SELECT * FROM claim_steps WHERE claim_id = ANY($1) ORDER BY claim_id, seq",
            list(claim_ids),
        )
        by_claim: dict[str, list[asyncpg.Record]] = {}
        for s in steps:
            by_claim.setdefault(s["claim_id"], []).append(s)
        found = {r["claim_id"]: _claim(r, by_claim.get(r["claim_id"], [])) for r in rows}
        for claim in found.values():
            self.track(claim)
            self._steps_saved[claim.claim_id] = len(claim.history)
            self.vias[claim.claim_id] = [s["via"] for s in by_claim.get(claim.claim_id, [])]
        return found

    async def add(self, claim: Claim, *, via: str | None) -> None:
        await self.conn.execute(
            "INSERT INTO claims (claim_id, member_id, unit_id, state, intake, submitted_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            claim.claim_id,
            claim.member_id,
            claim.intake.unit_id,
            claim.state.value,
            claim.intake.model_dump(mode="json"),
            claim.history[0].at,
        )
        self._steps_saved[claim.claim_id] = 0
        self.track(claim)
        await self.save_many([claim], via=via)

    async def save(self, claim: Claim, *, via: str | None, approval_seq: int | None = None) -> None:
        await self.save_many([claim], via=via, approval_seqs={claim.claim_id: approval_seq})

    async def save_many(
        self,
        claims: Sequence[Claim],
        *,
        via: str | None,
        approval_seqs: dict[str, int | None] | None = None,
    ) -> None:
        seqs = approval_seqs or {}
        await self.conn.executemany(
            "UPDATE claims SET state = $2, scheme_year = $3, plan_id = $4, intake = $5,"
            " assessment = $6, rejections = $7, deductible_applied_fen = $8,"
            " approved_amount_fen = $9, approved_at = $10,"
            " approval_seq = coalesce($11, approval_seq), adjustment_reason = $12,"
            " payment_reference = $13, updated_at = now() WHERE claim_id = $1",
            [
                (
                    c.claim_id,
                    c.state.value,
                    c.scheme_year,
                    c.plan_id,
                    c.intake.model_dump(mode="json"),
                    assessment_json(c.assessment) if c.assessment else None,
                    [{"code": r.code.value, "text": r.text} for r in c.rejections],
                    c.assessment.deductible_applied if c.assessment else 0,
                    c.approved_amount,
                    c.approved_at,
                    seqs.get(c.claim_id),
                    c.adjustment_reason,
                    c.payment_reference,
                )
                for c in claims
            ],
        )
        new_steps = []
        for c in claims:
            saved = self._steps_saved[c.claim_id]
            for seq, s in enumerate(c.history[saved:], start=saved):
                new_steps.append(
                    (
                        c.claim_id,
                        seq,
                        s.action,
                        s.from_state.value if s.from_state else None,
                        s.to_state.value,
                        s.by,
                        None if s.by == SYSTEM else via,
                        s.at,
                        s.note,
                    )
                )
            self._steps_saved[c.claim_id] = len(c.history)
        await self.conn.executemany(
            "INSERT INTO claim_steps (claim_id, seq, action, from_state, to_state, by, via, at,"
            " note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            new_steps,
        )

    async def invoices_of(self, member_id: str, *, excluding: str) -> list[str]:
        """Invoice numbers on the member's other claims that were not rejected."""
        rows = await self.conn.fetch(
            "SELECT jsonb_array_elements_text(intake -> 'invoice_numbers') AS number"
            " FROM claims WHERE member_id = $1 AND claim_id <> $2 AND state <> ALL($3)",
            member_id,
            excluding,
            list(REJECTED),
        )
        return [r["number"] for r in rows]

    async def year_to_date(self, member_id: str, scheme_year: int, *, excluding: str) -> YearToDate:
        """What the member's other claims of the year committed (as ``claims.year_to_date``)."""
        row = await self.conn.fetchrow(
            "SELECT coalesce(sum(deductible_applied_fen), 0)::bigint AS deductible,"
            " coalesce(sum(approved_amount_fen), 0)::bigint AS benefits"
            " FROM claims"
            " WHERE member_id = $1 AND scheme_year = $2 AND claim_id <> $3 AND state = ANY($4)",
            member_id,
            scheme_year,
            excluding,
            [s.value for s in COMMITTED],
        )
        return YearToDate(deductible_used=row["deductible"], benefits_paid=row["benefits"])

    async def payable(self) -> tuple[list[PayableClaim], set[str]]:
        """Approved, unpaid claims in approval order (ties within an instant by approval seq),
        and which of them are not yet marked as awaiting funds."""
        rows = await self.conn.fetch(
            "SELECT claim_id, member_id, approved_amount_fen, approved_at, state FROM claims"
            " WHERE state IN ('approved', 'awaiting_funds') ORDER BY approved_at, approval_seq"
        )
        queue = [
            PayableClaim(r["claim_id"], r["member_id"], r["approved_amount_fen"], r["approved_at"])
            for r in rows
        ]
        return queue, {r["claim_id"] for r in rows if r["state"] == ClaimState.APPROVED}

    async def search(
        self,
        *,
        state: ClaimState | None,
        unit_ids: Iterable[str] | None,
        member_id: str | None,
        plan_id: str | None,
        scheme_year: int | None,
        days: Period,
        page: Page,
    ) -> list[str]:
        """Claim ids in submission order; ``days`` bound the day of submission (the first one:
        resubmitting keeps it)."""
        rows = await self.conn.fetch(
            "SELECT claim_id FROM claims WHERE ($1::text IS NULL OR state = $1)"
            " AND ($2::text[] IS NULL OR unit_id = ANY($2))"
            " AND ($3::text IS NULL OR member_id = $3)"
            " AND ($4::text IS NULL OR plan_id = $4)"
            " AND ($5::int IS NULL OR scheme_year = $5)"
            f" AND {days.sql(_SUBMITTED_ON, 6)}"
            f" ORDER BY submitted_at, claim_id {page.sql(8)}",
            None if state is None else state.value,
            None if unit_ids is None else list(unit_ids),
            member_id,
            plan_id,
            scheme_year,
            *days.args,
            *page.args,
        )
        return [r["claim_id"] for r in rows]
