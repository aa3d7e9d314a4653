"""Union funds' view of the union tree, kept from membership's organisation events (pure)."""

from __future__ import annotations

from datetime import date

from services.union_funds.unions import Union, apply_membership_event
from shared.events.membership import (
    MemberLeft,
    OrganisationChanged,
    OrganisationDissolved,
    OrganisationEstablished,
)
from tests.support.people import credit_code

CODE = credit_code(77)
ESTABLISHED = OrganisationEstablished(
    organisation_id="u-pharma",
    name="亳州药业工会",
    kind="enterprise",
    parent_id="qiaocheng",
    path=["bozhou", "qiaocheng"],
    founded_on=date(2020, 5, 1),
    employer_credit_code=CODE,
    employer_name="亳州药业有限公司",
)


def test_an_established_union_is_viewed_with_what_matching_needs() -> None:
    assert apply_membership_event(None, ESTABLISHED) == Union(
        id="u-pharma",
        name="亳州药业工会",
        kind="enterprise",
        path=("bozhou", "qiaocheng"),
        credit_code=CODE,
        employer_name="亳州药业有限公司",
        founded_on=date(2020, 5, 1),
    )


def test_an_event_published_before_events_carried_the_employer_name_is_read() -> None:
    older = OrganisationEstablished.model_validate(
        ESTABLISHED.model_dump(exclude={"employer_name"})
    )
    view = apply_membership_event(None, older)
    assert view is not None and (view.credit_code, view.employer_name) == (CODE, None)


def test_a_rename_or_move_changes_the_name_and_path_and_keeps_the_employer() -> None:
    view = apply_membership_event(None, ESTABLISHED)
    moved = apply_membership_event(
        view,
        OrganisationChanged(
            organisation_id="u-pharma",
            name="亳州药业集团工会",
            parent_id="bozhou",
            path=["bozhou"],
            changed_fields=["name", "parent_id", "path"],
        ),
    )
    assert moved is not None
    assert (moved.name, moved.path, moved.credit_code) == ("亳州药业集团工会", ("bozhou",), CODE)
    assert moved.in_subtree("bozhou") and not moved.in_subtree("qiaocheng")


def test_a_dissolved_union_stands_until_its_dissolution_day() -> None:
    view = apply_membership_event(None, ESTABLISHED)
    assert view is not None and view.standing_on(date(2099, 1, 1))
    dissolved = apply_membership_event(
        view, OrganisationDissolved(organisation_id="u-pharma", dissolved_on=date(2026, 3, 31))
    )
    assert dissolved is not None and dissolved.dissolved_on == date(2026, 3, 31)
    assert dissolved.standing_on(date(2026, 3, 30))
    assert not dissolved.standing_on(date(2026, 3, 31))


def test_changes_to_an_organisation_never_seen_established_leave_no_view() -> None:
    change = OrganisationDissolved(organisation_id="u-x", dissolved_on=date(2026, 1, 1))
    assert apply_membership_event(None, change) is None


def test_member_events_change_nothing() -> None:
    view = apply_membership_event(None, ESTABLISHED)
    left = MemberLeft(member_id="m-1", left_on=date(2026, 1, 1), reason="retired")
    assert apply_membership_event(view, left) == view
