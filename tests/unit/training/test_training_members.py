"""The member view kept from membership events, and eligibility."""

from __future__ import annotations

from datetime import date

import pytest

from services.training.domain import (
    Audience,
    DomainError,
    Ineligible,
    MemberStatus,
    apply_membership_event,
    eligible,
)
from services.training.members import CADRE_CATEGORY
from shared.events.membership import (
    CardIssued,
    MemberDetailsChanged,
    MemberJoined,
    MemberLeft,
    MemberReinstated,
    MemberSuspended,
    MemberTransferred,
)


def joined(categories=("migrant_worker",)):
    return MemberJoined(
        member_id="m1",
        name="王五",
        union_id="u-shop",
        union_path=["u-city", "u-county"],
        channel="wechat",
        categories=list(categories),
        joined_on=date(2024, 1, 5),
        card_number="C001",
        sex="male",
        birth_date=date(1990, 5, 1),
    )


def test_the_view_follows_a_members_life_in_the_union():
    view = apply_membership_event(None, joined())
    assert view is not None
    assert (view.status, view.union_id, view.union_path) == (
        MemberStatus.ACTIVE,
        "u-shop",
        ("u-city", "u-county"),
    )

    view = apply_membership_event(
        view,
        MemberTransferred(
            member_id="m1",
            from_union_id="u-shop",
            to_union_id="u-depot",
            union_path=["u-city", "u-district"],
            transferred_on=date(2024, 2, 1),
        ),
    )
    assert view is not None and (view.union_id, view.union_path) == (
        "u-depot",
        ("u-city", "u-district"),
    )
    view = apply_membership_event(
        view, MemberSuspended(member_id="m1", suspended_on=date(2024, 3, 1), reason="dues")
    )
    assert view is not None and view.status is MemberStatus.SUSPENDED
    view = apply_membership_event(
        view, MemberReinstated(member_id="m1", reinstated_on=date(2024, 4, 1))
    )
    assert view is not None and view.status is MemberStatus.ACTIVE
    view = apply_membership_event(
        view, MemberLeft(member_id="m1", left_on=date(2024, 5, 1), reason="retired")
    )
    assert view is not None and view.status is MemberStatus.LEFT


def test_a_cadre_is_a_member_in_the_cadre_category():
    view = apply_membership_event(None, joined())
    assert view is not None and not view.is_cadre
    view = apply_membership_event(
        view,
        MemberDetailsChanged(
            member_id="m1",
            name="王五",
            categories=["migrant_worker", CADRE_CATEGORY],
            changed_fields=["categories"],
        ),
    )
    assert view is not None and view.is_cadre
    assert view.categories == {"migrant_worker", CADRE_CATEGORY}


def test_events_about_unknown_members_or_other_matters_change_nothing():
    left = MemberLeft(member_id="m9", left_on=date(2024, 5, 1), reason="moved")
    assert apply_membership_event(None, left) is None
    view = apply_membership_event(None, joined())
    card = CardIssued(member_id="m1", card_number="C2", reissue=True, issued_on=date(2024, 6, 1))
    assert apply_membership_event(view, card) == view


def test_who_may_enrol(build):
    everyone, cadres = build.course(), build.course(audience=Audience.cadres())
    riders = build.course(audience=Audience.category("platform_worker"))
    county = build.course(audience=Audience.union_subtree(build.county))
    member = build.member(1)

    assert eligible(everyone, member) is None
    assert eligible(cadres, member) is Ineligible.CADRES_ONLY
    assert eligible(cadres, build.member(1, is_cadre=True)) is None
    assert eligible(riders, member) is Ineligible.NOT_IN_CATEGORY
    assert eligible(riders, build.member(1, categories=frozenset({"platform_worker"}))) is None
    assert eligible(county, member) is None
    assert eligible(county, build.member(1, union_path=(build.city, "u-other"))) is (
        Ineligible.OUTSIDE_UNION_SUBTREE
    )
    # The subtree's root union itself belongs to the subtree.
    assert (
        eligible(county, build.member(1, union_id=build.county, union_path=(build.city,))) is None
    )
    assert eligible(everyone, build.member(1, status=MemberStatus.LEFT)) is Ineligible.MEMBER_LEFT


def test_an_audience_needs_a_target_exactly_when_it_names_one():
    with pytest.raises(DomainError):
        Audience(Audience.category("x").kind)
    with pytest.raises(DomainError):
        Audience(Audience.cadres().kind, "u-city")
