"""The whole life of a claim through the API: plan, cover from membership events, contribution,
intake with its automatic checks, return for documents, resubmission, adjustment, payment; and
the automatic and officer rejections. Every step is kept with who and when, and announced."""

from __future__ import annotations

from datetime import date

import pytest

from shared.events import mutual_aid as ev
from tests.integration.mutual_aid.harness import (
    UNIT,
    YEAR,
    claim_body,
    clock_at,
    emitted,
    eventually,
    joined,
    mutual_aid,
    of_type,
)
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


async def test_a_claim_from_intake_to_payment(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    clock = clock_at(date(YEAR, 6, 20))
    async with mutual_aid(servers, fund_database, namespace, clock) as service:
        plan = await service.publish_plan()
        assert plan["plan_id"] == f"plan-{YEAR}-v1" and plan["status"] == "published"
        await service.feed(joined("m-1"), joined("m-2"))
        enrolment = await service.enrol("unit-1", ["m-1", "m-2"])
        assert enrolment["covered_count"] == 2
        assert enrolment["arrears_fen"] == 24_000  # 2 members × 120.00, nothing paid yet
        await service.contribute(enrolment["enrolment_id"], 1_000_000, "R-2025-001")
        unit = await service.client(*UNIT, organisations=["unit-1"])

        # Intake through the unit's own credential: self-paid 6,000.00 in the catalogue.
        # 6,000 - 1,000 deductible = 5,000 at 50% = 2,500.00
        claim = await service.submit(claim_body("m-1", "unit-1", invoice="INV-001"), unit)
        claim_id = claim["claim_id"]
        assert claim["state"] == "under_review"
        assert claim["assessment"]["benefit_fen"] == 250_000
        assert claim["assessment"]["explanation"] == [
            "eligible expense 6,000.00",
            "deductible applied 1,000.00 (remaining this year 0.00)",
            "band 0–10,000 at 50%: 2,500.00 on 5,000.00",
            "benefit 2,500.00",
        ]

        returned = await service.office.post(
            f"/claims/{claim_id}/return",
            json={"officer": "officer-wang", "missing_documents": ["itemised bill"]},
        )
        assert returned.json()["state"] == "returned"
        corrected = claim_body("m-1", "unit-1", invoice="INV-001", hospital="亳州市中医院")
        del corrected["submitted_by"]  # who submitted stays as it was: not a correctable field
        resubmitted = await unit.post(
            f"/claims/{claim_id}/resubmit",
            json={"by": "clerk-li", "documents": ["itemised"], "corrected": corrected},
        )
        assert resubmitted.json()["state"] == "under_review", resubmitted.text
        assert "itemised" in resubmitted.json()["documents"]
        assert resubmitted.json()["hospital"] == "亳州市中医院"
        assert resubmitted.json()["submitted_on"] == f"{YEAR}-06-20"  # the deadline's first day

        # The unit may submit but not review; nor submit for another unit.
        assert (
            await unit.post(f"/claims/{claim_id}/approve", json={"officer": "x"})
        ).status_code == 403
        other = await unit.post("/claims", json=claim_body("m-2", "unit-2"))
        assert other.status_code == 403 and other.json()["errors"][0]["field"] == "unit_id"

        adjusted = await service.office.post(
            f"/claims/{claim_id}/adjust",
            json={"officer": "officer-wang", "amount_fen": 200_000, "reason": "one night private"},
        )
        assert adjusted.status_code == 200, adjusted.text
        assert adjusted.json()["approved_amount_fen"] == 200_000

        paid = await eventually(lambda: _state(service, claim_id, "paid"), timeout=15)
        assert paid["payment"]["reference"].startswith(f"PAY-{YEAR}-")
        assert paid["payment"]["amount_fen"] == 200_000
        history = [(s["action"], s["to"], s["by"]) for s in paid["history"]]
        assert history == [
            ("submit", "submitted", "unit-1"),
            ("assess", "under_review", "system"),
            ("return_for_documents", "returned", "officer-wang"),
            ("resubmit", "resubmitted", "clerk-li"),
            ("assess", "under_review", "system"),
            ("adjust", "approved", "officer-wang"),
            ("pay", "paid", "system"),
        ]
        assert all(s["at"] for s in paid["history"])
        office_app = paid["history"][5]["via"]
        assert office_app and office_app.startswith("federation-")  # which system the officer used

        # The same invoice again is rejected by the automatic checks, with a code.
        again = await service.submit(claim_body("m-1", "unit-1", invoice="inv-001"))
        assert again["state"] == "auto_rejected"
        assert again["rejections"][0]["code"] == "DUPLICATE_INVOICE"
        # An officer rejects another with a reason code.
        third = await service.submit(claim_body("m-2", "unit-1"))
        rejected = await service.office.post(
            f"/claims/{third['claim_id']}/reject",
            json={
                "officer": "officer-zhao",
                "reason_code": "NOT_ELIGIBLE_EXPENSE",
                "reason_text": "cosmetic treatment",
            },
        )
        assert rejected.json()["state"] == "rejected"
        assert rejected.json()["rejections"] == [
            {"code": "NOT_ELIGIBLE_EXPENSE", "text": "cosmetic treatment"}
        ]

        report = (await service.office.get("/reports/claims", params={"scheme_year": YEAR})).json()
        assert report["by_unit"]["unit-1"] == {"paid": 1, "auto_rejected": 1, "rejected": 1}
        benefits = (await service.office.get("/reports/benefits-paid")).json()
        assert benefits["paid_fen"] == 200_000 and benefits["by_unit"]["unit-1"]["payments"] == 1
        fund = (await service.office.get("/fund")).json()
        assert fund["fund_cash_fen"] == 1_000_000 - 200_000
        assert fund["balances"]["claims_payable_fen"] == 0
        assert fund["balances_match_journal"] is True
        [day] = (await service.office.get("/reports/fund-position")).json()
        assert day["date"] == f"{YEAR}-06-20"
        assert day["moved"]["contributions_income_fen"] == 1_000_000
        assert day["balances"]["fund_cash_fen"] == 800_000
        assert day["balances"]["benefits_expense_fen"] == 200_000

        events = await emitted(
            servers,
            service.settings.events_topic,
            lambda found: (
                bool(of_type(found, ev.ClaimPaid)) and len(of_type(found, ev.ClaimRejected)) == 2
            ),
        )
        per_claim: dict[str, list[str]] = {}  # order holds per claim (the Kafka key)
        for e in events:
            if isinstance(e, ev.ClaimEvent):
                per_claim.setdefault(e.claim_id, []).append(type(e).__name__)
        assert per_claim == {
            claim_id: [
                "ClaimSubmitted",
                "ClaimReturned",
                "ClaimResubmitted",
                "ClaimApproved",
                "ClaimPaid",
            ],
            again["claim_id"]: ["ClaimSubmitted", "ClaimRejected"],
            third["claim_id"]: ["ClaimSubmitted", "ClaimRejected"],
        }
        assert len(of_type(events, ev.PlanPublished)) == 1
        assert len(of_type(events, ev.UnitEnrolled)) == 1
        assert len(of_type(events, ev.MemberCovered)) == 2
        [received] = of_type(events, ev.ContributionReceived)
        assert received.amount_fen == 1_000_000 and received.arrears_fen == 24_000 - 1_000_000
        [approved] = of_type(events, ev.ClaimApproved)
        assert (approved.amount_fen, approved.computed_amount_fen) == (200_000, 250_000)
        assert approved.adjustment_reason == "one night private"


async def _state(service, claim_id: str, state: str):
    claim = await service.claim(claim_id)
    return claim if claim["state"] == state else None
