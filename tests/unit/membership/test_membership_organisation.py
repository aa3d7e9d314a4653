"""The organisation tree: where each kind of union may stand, moves, renames, dissolution."""

from __future__ import annotations

from datetime import date

import pytest

from services.membership.domain import (
    Conflict,
    DomainError,
    Employer,
    Organisation,
    OrgKind,
)
from shared.events.membership import (
    OrganisationChanged,
    OrganisationDissolved,
    OrganisationEstablished,
)

TODAY = date(2024, 6, 1)
FOUNDED = date(2021, 3, 8)


def employer() -> Employer:
    return Employer.of(
        name="亳州某物流有限公司",
        credit_code="91350100M000100Y43",
        headcount_band="100-499",
        address="亳州市谯城区",
    )


def city() -> Organisation:
    return Organisation.establish(
        id="city", name="亳州市总工会", kind="city_federation", parent=None, today=TODAY
    )


def county(parent: Organisation, id: str = "qiaocheng") -> Organisation:
    return Organisation.establish(
        id=id, name=f"{id}区总工会", kind="county_federation", parent=parent, today=TODAY
    )


def union(parent: Organisation, id: str = "logistics", kind: str = "enterprise") -> Organisation:
    return Organisation.establish(
        id=id,
        name=f"{id} 工会",
        kind=kind,
        parent=parent,
        employer=employer(),
        founded_on=FOUNDED,
        today=TODAY,
    )


class TestEstablish:
    def test_a_tree_records_paths_and_events(self) -> None:
        c = city()
        q = county(c)
        u = union(q)
        assert (c.path, q.path, u.path) == ([], ["city"], ["city", "qiaocheng"])
        assert u.lineage == ["city", "qiaocheng", "logistics"]
        [event] = u.events
        assert event == OrganisationEstablished(
            organisation_id="logistics",
            name="logistics 工会",
            kind="enterprise",
            parent_id="qiaocheng",
            path=["city", "qiaocheng"],
            founded_on=FOUNDED,
            employer_credit_code="91350100M000100Y43",
            employer_name="亳州某物流有限公司",
        )

    def test_city_level_units_may_report_to_the_city_federation(self) -> None:
        assert union(city(), kind="public_institution").parent_id == "city"

    def test_a_grassroots_union_needs_a_parent_federation(self) -> None:
        with pytest.raises(DomainError) as caught:
            Organisation.establish(id="u", name="u", kind="enterprise", parent=None, today=TODAY)
        assert caught.value.field == "parent_id"

    @pytest.mark.parametrize(
        ("kind", "parent_kind"),
        [
            ("county_federation", "county_federation"),
            ("small_three_level", "city_federation"),
            ("enterprise", "enterprise"),
            ("city_federation", "city_federation"),
        ],
    )
    def test_kinds_are_placed_sensibly(self, kind: str, parent_kind: str) -> None:
        parent = Organisation(id="p", name="p", kind=OrgKind(parent_kind), parent_id=None, path=[])
        with pytest.raises(DomainError) as caught:
            Organisation.establish(
                id="x",
                name="x",
                kind=kind,
                parent=parent,
                employer=employer(),
                founded_on=FOUNDED,
                today=TODAY,
            )
        assert (caught.value.field, caught.value.code) == ("parent_id", "placement_not_allowed")
        assert "cannot sit under" in caught.value.message

    def test_a_village_union_may_have_no_single_employer(self) -> None:
        village = Organisation.establish(
            id="v",
            name="某村工会",
            kind="small_three_level",
            parent=county(city()),
            founded_on=FOUNDED,
            today=TODAY,
        )
        assert village.employer is None

    def test_an_enterprise_union_records_its_employer_and_founding(self) -> None:
        q = county(city())
        with pytest.raises(DomainError) as caught:
            Organisation.establish(
                id="u", name="u", kind="enterprise", parent=q, founded_on=FOUNDED, today=TODAY
            )
        assert caught.value.field == "employer"
        with pytest.raises(DomainError) as caught:
            Organisation.establish(
                id="u", name="u", kind="enterprise", parent=q, employer=employer(), today=TODAY
            )
        assert caught.value.field == "founded_on"

    def test_founding_in_the_future_is_refused(self) -> None:
        with pytest.raises(DomainError) as caught:
            Organisation.establish(
                id="u",
                name="u",
                kind="platform_company",
                parent=county(city()),
                employer=employer(),
                founded_on=date(2024, 6, 2),
                today=TODAY,
            )
        assert caught.value.field == "founded_on"

    def test_unknown_kind_and_empty_or_long_name(self) -> None:
        for kind, name, field in [("guild", "x", "kind"), ("city_federation", " ", "name")]:
            with pytest.raises(DomainError) as caught:
                Organisation.establish(id="c", name=name, kind=kind, parent=None, today=TODAY)
            assert caught.value.field == field
        with pytest.raises(DomainError, match="at most 100"):
            Organisation.establish(
                id="c", name="工" * 101, kind="city_federation", parent=None, today=TODAY
            )

    def test_nothing_is_established_under_a_dissolved_federation(self) -> None:
        c = city()
        q = county(c)
        q.dissolve(on=TODAY, today=TODAY, active_members=0, child_organisations=0)
        with pytest.raises(Conflict) as caught:
            union(q)
        assert caught.value.field == "parent_id"


class TestRenameAndMove:
    def test_rename_records_a_change_once(self) -> None:
        u = union(county(city()))
        u.events.clear()
        u.rename("  新名字工会 ")
        u.rename("新名字工会")
        assert u.name == "新名字工会"
        assert [e.changed_fields for e in u.events if isinstance(e, OrganisationChanged)] == [
            ["name"]
        ]

    def test_move_a_union_to_another_county(self) -> None:
        c = city()
        a, b = county(c, "a"), county(c, "b")
        u = union(a)
        u.events.clear()
        u.move_under(b)
        assert (u.parent_id, u.path) == ("b", ["city", "b"])
        [event] = u.events
        assert isinstance(event, OrganisationChanged)
        assert event.changed_fields == ["parent_id", "path"]
        assert event.path == ["city", "b"]

    def test_moving_under_the_same_parent_changes_nothing(self) -> None:
        q = county(city())
        u = union(q)
        u.events.clear()
        u.move_under(q)
        assert u.events == []

    def test_move_under_own_descendant_is_refused(self) -> None:
        c = city()
        q = county(c)
        u = union(q)
        with pytest.raises(DomainError) as caught:
            q.move_under(u)
        assert (caught.value.field, caught.value.code, caught.value.message) == (
            "parent_id",
            "move_under_descendant",
            "cannot move under its own descendant",
        )

    def test_move_under_itself_is_refused(self) -> None:
        q = county(city())
        with pytest.raises(DomainError, match="under itself"):
            q.move_under(q)

    def test_move_keeps_placement_rules(self) -> None:
        c = city()
        village = Organisation.establish(
            id="v",
            name="v",
            kind="small_three_level",
            parent=county(c),
            founded_on=FOUNDED,
            today=TODAY,
        )
        with pytest.raises(DomainError, match="cannot sit under"):
            village.move_under(c)

    def test_descendants_follow_a_moved_federation(self) -> None:
        # A second city federation is not a real case; it only gives a county somewhere to go.
        old, new = (
            city(),
            Organisation(
                id="city2", name="c2", kind=OrgKind.CITY_FEDERATION, parent_id=None, path=[]
            ),
        )
        q = county(old)
        u = union(q)
        q.move_under(new)
        u.events.clear()
        u.follow_parent(q)
        assert u.path == ["city2", "qiaocheng"]
        [event] = u.events
        assert isinstance(event, OrganisationChanged)
        assert event.changed_fields == ["path"]
        with pytest.raises(DomainError):
            u.follow_parent(new)


class TestDissolve:
    def test_only_an_empty_union_is_dissolved(self) -> None:
        u = union(county(city()))
        with pytest.raises(Conflict) as caught:
            u.dissolve(on=TODAY, today=TODAY, active_members=3, child_organisations=0)
        assert caught.value.field == "active_members"
        u.events.clear()
        u.dissolve(on=TODAY, today=TODAY, active_members=0, child_organisations=0)
        assert u.events == [OrganisationDissolved(organisation_id="logistics", dissolved_on=TODAY)]

    def test_a_federation_with_unions_under_it_stays(self) -> None:
        q = county(city())
        with pytest.raises(Conflict) as caught:
            q.dissolve(on=TODAY, today=TODAY, active_members=0, child_organisations=2)
        assert caught.value.field == "child_organisations"

    def test_dates_are_checked(self) -> None:
        u = union(county(city()))
        with pytest.raises(DomainError, match="in the future"):
            u.dissolve(on=date(2024, 6, 2), today=TODAY, active_members=0, child_organisations=0)
        with pytest.raises(DomainError, match="before the founding"):
            u.dissolve(on=date(2020, 1, 1), today=TODAY, active_members=0, child_organisations=0)

    def test_the_city_federation_is_not_dissolved(self) -> None:
        with pytest.raises(DomainError) as caught:
            city().dissolve(on=TODAY, today=TODAY, active_members=0, child_organisations=0)
        assert caught.value.field == "kind"

    def test_a_dissolved_union_is_not_renamed_moved_or_dissolved_again(self) -> None:
        c = city()
        u = union(county(c))
        u.dissolve(on=TODAY, today=TODAY, active_members=0, child_organisations=0)
        with pytest.raises(Conflict):
            u.rename("again")
        with pytest.raises(Conflict):
            u.move_under(c)
        with pytest.raises(Conflict):
            u.dissolve(on=TODAY, today=TODAY, active_members=0, child_organisations=0)
