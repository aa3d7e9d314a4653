"""Cover follows membership events: only active members are covered; a member who leaves stops
being covered from that day, while claims for earlier admissions stay valid."""

from __future__ import annotations

from datetime import date

import pytest

from shared.events import mutual_aid as ev
from shared.events.membership import MemberReinstated, MemberSuspended, MemberTransferred
from tests.integration.mutual_aid.harness import (
    YEAR,
    claim_body,
    clock_at,
    emitted,
    joined,
    left,
    mutual_aid,
    of_type,
)
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


async def test_cover_follows_membership_and_a_member_who_left_cannot_claim_later_stays(
    servers: Servers, fund_database: ScratchDatabase, namespace: str
) -> None:
    clock = clock_at(date(YEAR, 7, 1))
    async with mutual_aid(servers, fund_database, namespace, clock) as service:
        await service.publish_plan()
        await service.feed(
            joined("m-stays"),
            joined("m-leaves"),
            joined("m-suspended"),
            MemberSuspended(member_id="m-suspended", suspended_on=date(2024, 12, 1), reason="dues"),
        )
        enrolment = await service.enrol("unit-1", ["m-stays", "m-leaves", "m-suspended", "m-new"])
        enrolment_id = enrolment["enrolment_id"]
        assert sorted(c["member_id"] for c in enrolment["covered"]) == ["m-leaves", "m-stays"]
        assert {n["member_id"] for n in enrolment["not_covered"]} == {"m-suspended", "m-new"}

        # Leaving on 1 June: covered to 31 May. The event is delivered twice; a transfer behind
        # it on the same key shows the consumer got past the second copy.
        [leaving] = await service.feed(left("m-leaves", date(YEAR, 6, 1)))
        await service.publish(leaving)
        await service.feed(
            MemberTransferred(
                member_id="m-leaves",
                from_union_id="u-factory",
                to_union_id="u-depot",
                union_path=["u-city", "u-county"],
                transferred_on=date(YEAR, 6, 2),
            )
        )
        cover = (await service.office.get("/members/m-leaves/coverage")).json()
        assert cover["union_id"] == "u-depot"
        assert cover["active_periods"] == [{"starts_on": "2020-01-06", "ends_on": f"{YEAR}-06-01"}]
        [ended] = cover["coverages"]
        assert ended["ends_on"] == f"{YEAR}-05-31"
        assert ended["ended_reason"] == "left the union: changed employer"

        before = await service.submit(
            claim_body(
                "m-leaves", "unit-1", admitted=date(YEAR, 5, 20), discharged=date(YEAR, 5, 28)
            )
        )
        assert before["state"] == "under_review"  # admitted while covered: still valid
        after = await service.submit(
            claim_body("m-leaves", "unit-1", admitted=date(YEAR, 6, 5), discharged=date(YEAR, 6, 9))
        )
        assert after["state"] == "auto_rejected"
        assert after["rejections"][0] == {
            "code": "NOT_COVERED",
            "text": f"not covered on {YEAR}-06-05",
        }
        approved = await service.office.post(
            f"/claims/{before['claim_id']}/approve", json={"officer": "officer-wang"}
        )
        assert approved.json()["state"] == "approved"

        # Members who become active later are covered from the day they are added.
        await service.feed(
            joined("m-new", date(YEAR, 6, 15)),
            MemberReinstated(member_id="m-suspended", reinstated_on=date(YEAR, 6, 20)),
        )
        added = await service.office.post(
            f"/enrolments/{enrolment_id}/staff", json={"member_ids": ["m-new", "m-suspended"]}
        )
        assert added.status_code == 200, added.text
        starts = {c["member_id"]: c["starts_on"] for c in added.json()["covered"]}
        assert starts == {
            "m-stays": f"{YEAR}-01-01",
            "m-leaves": f"{YEAR}-01-01",
            "m-new": f"{YEAR}-07-01",
            "m-suspended": f"{YEAR}-07-01",
        }
        assert added.json()["not_covered"] == []
        assert added.json()["expected_fen"] == 4 * 12_000  # all four owe the year's contribution

        events = await emitted(
            servers,
            service.settings.events_topic,
            lambda found: len(of_type(found, ev.MemberCovered)) == 4,
        )
        [coverage_ended] = of_type(events, ev.CoverageEnded)
        assert (coverage_ended.member_id, coverage_ended.last_covered_on) == (
            "m-leaves",
            date(YEAR, 5, 31),
        )
        [enrolled] = of_type(events, ev.UnitEnrolled)
        assert sorted(enrolled.not_covered_member_ids) == ["m-new", "m-suspended"]
