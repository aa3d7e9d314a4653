"""How the API shows plans, enrolments, claims and backstop requests.

Every amount is integer fen in a ``*_fen`` field; the main ones also come as ``*_yuan`` text
("12,345.67") so a person reading a response (or a demo) need not divide by 100.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from services.mutual_aid.backstop import BackstopRequest
from services.mutual_aid.benefits import BenefitCalculation
from services.mutual_aid.claims import Claim
from services.mutual_aid.enrolment import Coverage, Enrolment
from services.mutual_aid.money import Fen, format_yuan
from services.mutual_aid.plans import Plan


def money(name: str, amount: Fen | None) -> dict[str, Any]:
    return {
        f"{name}_fen": amount,
        f"{name}_yuan": None if amount is None else format_yuan(amount),
    }


def plan_view(plan: Plan) -> dict[str, Any]:
    rules = plan.rules
    return {
        "plan_id": plan.plan_id,
        "scheme_year": plan.scheme_year,
        "version": plan.version,
        "status": plan.status.value,
        "effective_from": plan.effective_from,
        "effective_to": plan.effective_to,
        "published_on": plan.published_on,
        **money("contribution_per_member", plan.contribution_per_member),
        "rules": {
            "deductible_fen": rules.deductible,
            "bands": [
                {
                    "lower_fen": b.lower,
                    "upper_fen": b.upper,
                    "ratio": str(b.ratio),
                    "label": b.label(),
                }
                for b in rules.bands
            ],
            "per_claim_ceiling_fen": rules.per_claim_ceiling,
            "yearly_ceiling_fen": rules.yearly_ceiling,
            "outside_catalogue_counts": rules.outside_catalogue_counts,
            "waiting_period_days": rules.waiting_period_days,
            "accident_exempt_from_waiting": rules.accident_exempt_from_waiting,
            "submission_deadline_days": rules.submission_deadline_days,
        },
    }


def coverage_view(c: Coverage) -> dict[str, Any]:
    return {
        "member_id": c.member_id,
        "starts_on": c.starts_on,
        "ends_on": c.ends_on,
        "waiting_from": c.waiting_from,
        "ended_reason": c.ended_reason,
    }


def enrolment_view(e: Enrolment) -> dict[str, Any]:
    return {
        "enrolment_id": e.enrolment_id,
        "unit_id": e.unit_id,
        "plan_id": e.plan_id,
        "scheme_year": e.scheme_year,
        "enrolled_on": e.enrolled_on,
        "covered_count": len(e.coverages),
        "covered": [coverage_view(c) for c in e.coverages.values()],
        "not_covered": [{"member_id": m, "reason": r} for m, r in e.not_covered.items()],
        **money("contribution_per_member", e.contribution_per_member),
        **money("expected", e.expected),
        **money("received", e.received),
        # Negative when the unit paid ahead.
        **money("arrears", e.arrears),
        "contributions": [
            {
                "receipt_number": c.receipt_number,
                "amount_fen": c.amount,
                "payer": c.payer,
                "received_on": c.received_on,
                "period": c.period,
            }
            for c in e.contributions
        ],
    }


def assessment_view(calc: BenefitCalculation) -> dict[str, Any]:
    return {
        **money("benefit", calc.benefit),
        "eligible_expense_fen": calc.eligible_expense,
        "deductible_applied_fen": calc.deductible_applied,
        "banded_fen": calc.banded,
        "explanation": calc.explanation(),
        "steps": [
            {"rule": s.rule, "base_fen": s.base, "amount_fen": s.amount, "text": s.text}
            for s in calc.steps
        ],
    }


def claim_view(
    claim: Claim,
    *,
    vias: list[str | None],
    payment: asyncpg.Record | None,
    backstop_requests: list[str],
) -> dict[str, Any]:
    i = claim.intake
    return {
        "claim_id": claim.claim_id,
        "state": claim.state.value,
        "member_id": i.member_id,
        "unit_id": i.unit_id,
        "scheme_year": claim.scheme_year,
        "plan_id": claim.plan_id,
        "admission_date": i.admission_date,
        "discharge_date": i.discharge_date,
        "hospital": i.hospital,
        "invoice_numbers": list(i.invoice_numbers),
        "total_expense_fen": i.total_expense,
        "paid_by_basic_insurance_fen": i.paid_by_basic_insurance,
        "self_paid_in_catalogue_fen": i.self_paid_in_catalogue,
        "self_paid_outside_catalogue_fen": i.self_paid_outside_catalogue,
        "diagnosis_code": i.diagnosis_code,
        "accident": i.accident,
        "documents": list(i.documents),
        "submitted_by": {"kind": i.submitted_by.kind, "id": i.submitted_by.id},
        "submitted_on": i.submitted_on,
        "rejections": [{"code": r.code.value, "text": r.text} for r in claim.rejections],
        "assessment": assessment_view(claim.assessment) if claim.assessment else None,
        **money("approved_amount", claim.approved_amount),
        "approved_at": claim.approved_at,
        "adjustment_reason": claim.adjustment_reason,
        "payment": None
        if payment is None
        else {
            "reference": payment["payment_reference"],
            **money("amount", payment["amount_fen"]),
            "paid_at": payment["paid_at"],
        },
        "backstop_requests": backstop_requests,
        "history": [
            {
                "action": s.action,
                "from": s.from_state.value if s.from_state else None,
                "to": s.to_state.value,
                "by": s.by,
                "via": via,
                "at": s.at,
                "note": s.note,
            }
            for s, via in zip(claim.history, vias, strict=True)
        ],
    }


def request_view(r: BackstopRequest) -> dict[str, Any]:
    return {
        "request_id": r.request_id,
        "status": r.status.value,
        **money("amount", r.amount),
        **money("granted", r.granted),
        **money("withdrawn", r.withdrawn),
        **money("outstanding", r.outstanding),
        "claim_ids": list(r.claim_ids),
        "claim_count": len(r.claim_ids),
        # The fund's position when asked: its balance after paying what it could.
        "fund_balance_fen": r.fund_balance,
        "requested_on": r.requested_on,
        "grants": [
            {"reference": g.reference, "amount_fen": g.amount, "granted_on": g.granted_on}
            for g in r.grants
        ],
        "reminders": r.reminders,
        "escalated_on": r.escalated_on,
    }
