from __future__ import annotations

from datetime import date, datetime

import pytest

from services.mutual_aid.money import format_yuan, yuan
from shared.events import mutual_aid
from shared.events.base import CATALOGUE, EventData


def test_yuan_is_parsed_exactly_and_never_rounded() -> None:
    assert yuan("12,345.67") == 1234567
    assert yuan("1000") == 100000
    assert yuan(5) == 500
    assert yuan("0.1") == 10
    with pytest.raises(ValueError, match="two decimals"):
        yuan("1.005")
    with pytest.raises(ValueError, match="not an amount"):
        yuan("ten")


def test_amounts_read_as_people_write_them() -> None:
    assert format_yuan(1234567) == "12,345.67"
    assert format_yuan(5) == "0.05"
    assert format_yuan(-250) == "-2.50"


def mutual_aid_events() -> list[type[EventData]]:
    return [cls for cls in CATALOGUE.values() if cls.__module__ == mutual_aid.__name__]


def test_every_mutual_aid_event_is_in_the_catalogue_under_its_source() -> None:
    names = {cls.__name__ for cls in mutual_aid_events()}
    assert {
        "PlanPublished",
        "UnitEnrolled",
        "MemberCovered",
        "CoverageEnded",
        "ContributionReceived",
        "ClaimSubmitted",
        "ClaimRejected",
        "ClaimApproved",
        "ClaimReturned",
        "ClaimPaid",
        "BackstopRequested",
        "BackstopGranted",
        "BackstopReminded",
        "BackstopEscalated",
        "FundBalanceLow",
    } <= names
    for cls in mutual_aid_events():
        assert cls.source == "gonghui/mutual_aid"
        assert cls.type.startswith("gonghui.mutual_aid.")


def test_claim_events_carry_the_member_and_are_keyed_by_the_claim() -> None:
    claim_events = [
        cls for cls in mutual_aid_events() if cls.type.startswith("gonghui.mutual_aid.claim.")
    ]
    assert len(claim_events) >= 7
    for cls in claim_events:
        assert "member_id" in cls.model_fields
    paid = mutual_aid.ClaimPaid(
        claim_id="c-1",
        member_id="m-1",
        amount_fen=250000,
        payment_reference="BANK-1",
        paid_at=datetime(2024, 7, 1, 9),
    )
    assert paid.subject() == "c-1"
    # a newer producer's extra field does not break an older reader
    again = mutual_aid.ClaimPaid.model_validate({**paid.model_dump(), "channel": "bank"})
    assert again == paid


def test_other_aggregates_key_their_events_by_their_id() -> None:
    granted = mutual_aid.BackstopGranted(
        request_id="req-1",
        amount_fen=1,
        reference="CZ-1",
        granted_on=date(2024, 7, 1),
        outstanding_fen=0,
    )
    assert granted.subject() == "req-1"
    covered = mutual_aid.MemberCovered(
        enrolment_id="enr-1",
        unit_id="unit-1",
        member_id="m-1",
        plan_id="p",
        starts_on=date(2024, 1, 1),
        ends_on=date(2024, 12, 31),
    )
    assert covered.subject() == "enr-1"
