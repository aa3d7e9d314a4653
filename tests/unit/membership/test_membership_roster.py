"""HR roster sync: per-row checks, duplicates across chunks, the diff, and leavers."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.membership.domain import Category, DomainError, Member, Organisation, OrgKind, Status
from services.membership.identity import mod11_2_check_char
from services.membership.roster import (
    ChunkDiff,
    MemberSnapshot,
    RosterRow,
    RosterSync,
    RowError,
    diff_chunk,
    leavers,
    snapshot_of,
    validate_row,
)

TODAY = date(2024, 6, 1)


def id_number(n: int, born: str = "19900315") -> str:
    """The n-th ID number; odd n are men, even n women."""
    body = f"341602{born}{n:03d}"
    return body + mod11_2_check_char(body)


def raw(n: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id_number": id_number(n),
        "name": f"职工{n}",
        "mobile": f"138{n:08d}",
        "categories": "migrant_worker",
        "joined_on": "2020-05-01",
    }
    row.update(changes)
    return row


def numbered(rows: list[dict[str, Any]], first: int = 2) -> list[tuple[int, dict[str, Any]]]:
    """Rows as a CSV file numbers them: the header is row 1."""
    return list(enumerate(rows, start=first))


def snapshot(n: int, **changes: Any) -> MemberSnapshot:
    fields: dict[str, Any] = {
        "member_id": f"m{n}",
        "name": f"职工{n}",
        "mobile": f"138{n:08d}",
        "categories": frozenset({Category.MIGRANT_WORKER}),
        "status": Status.ACTIVE,
        "union_id": "u1",
    }
    fields.update(changes)
    return MemberSnapshot(**fields)


class TestValidateRow:
    def test_a_good_row(self) -> None:
        row = validate_row(7, raw(1, mobile="+86 138-0000-0001", joined_on=date(2020, 5, 1)), TODAY)
        assert row == RosterRow(
            row=7,
            id_number=id_number(1),
            name="职工1",
            mobile="13800000001",
            categories=frozenset({Category.MIGRANT_WORKER}),
            joined_on=date(2020, 5, 1),
        )

    def test_optional_fields_not_given(self) -> None:
        row = validate_row(1, {"id_number": id_number(1).lower(), "name": " 职工1 "}, TODAY)
        assert row == RosterRow(1, id_number(1), "职工1", None, None, None)

    def test_spreadsheet_values(self) -> None:
        row = validate_row(
            1,
            raw(
                2,
                mobile=13800000002,
                categories="农民工、女；new_employment_form",
                joined_on="2020/05/01",
            ),
            TODAY,
        )
        assert isinstance(row, RosterRow)
        assert row.mobile == "13800000002"
        assert row.categories == {Category.MIGRANT_WORKER, Category.NEW_EMPLOYMENT_FORM}
        assert row.joined_on == date(2020, 5, 1)
        listed = validate_row(1, raw(2, categories=["migrant_worker"]), TODAY)
        assert isinstance(listed, RosterRow)
        assert listed.categories == {Category.MIGRANT_WORKER}
        empty = validate_row(1, raw(2, categories=""), TODAY)
        assert isinstance(empty, RosterRow)
        assert empty.categories == frozenset()

    @pytest.mark.parametrize(
        ("changes", "field", "code", "message"),
        [
            (
                {"id_number": "110105194912310021"},
                "id_number",
                "check_character_mismatch",
                "check character does not match",
            ),
            ({"id_number": ""}, "id_number", "required", "missing"),
            ({"id_number": None}, "id_number", "required", "missing"),
            ({"mobile": "1380000000"}, "mobile", "not_11_digits", "must be 11 digits"),
            ({"mobile": "12800000001"}, "mobile", "invalid_prefix", "must start with 13 to 19"),
            ({"name": "职" * 51}, "name", "too_long", "must be at most 50 characters"),
            ({"name": "   "}, "name", "required", "missing"),
            # NUL would stop the whole chunk at Postgres; a TAB is not in anybody's name
            ({"name": "王\x00芳"}, "name", "control_character", "must not contain control"),
            ({"name": "王\t芳"}, "name", "control_character", "must not contain control"),
            (
                {"categories": "migrant_worker;retired"},
                "categories",
                "unknown_category",
                "unknown category 'retired'",
            ),
            ({"categories": "woman"}, "categories", "contradicts_id_number", "'woman' contradicts"),
            ({"categories": 3}, "categories", "not_text", "must be text or a list of text"),
            (
                {"joined_on": "2024-06-02"},
                "joined_on",
                "date_in_future",
                "2024-06-02 is in the future",
            ),
            ({"joined_on": "yesterday"}, "joined_on", "not_a_date", "'yesterday' is not a date"),
            (
                {"joined_on": "2005-01-01"},
                "joined_on",
                "under_minimum_age",
                "the member was 14, under 16",
            ),
        ],
    )
    def test_each_problem_is_named(
        self, changes: dict[str, Any], field: str, code: str, message: str
    ) -> None:
        result = validate_row(9, raw(1, **changes), TODAY)
        assert isinstance(result, list)
        [error] = result
        assert (error.row, error.field, error.code) == (9, field, code)
        assert error.message.startswith(message)

    def test_all_problems_of_a_row_are_reported(self) -> None:
        result = validate_row(
            3, {"id_number": "X", "name": "", "mobile": "1", "joined_on": "2099-01-01"}, TODAY
        )
        assert isinstance(result, list)
        assert [e.field for e in result] == ["id_number", "name", "mobile", "joined_on"]

    def test_unknown_categories_are_reported_even_without_an_id_number(self) -> None:
        result = validate_row(1, raw(1, id_number="bad", categories="retired"), TODAY)
        assert isinstance(result, list)
        assert {e.field for e in result} == {"id_number", "categories"}


class TestRosterSync:
    def test_duplicates_are_caught_across_chunks_and_the_first_row_wins(self) -> None:
        sync = RosterSync(union_id="u1", complete=True, today=TODAY)
        good, errors = sync.check(numbered([raw(1), raw(2)]))
        assert [r.row for r in good] == [2, 3]
        good, errors = sync.check(numbered([raw(3), raw(1, name="又一个")], first=4))
        assert [r.row for r in good] == [4]
        assert errors == [RowError(5, "id_number", "duplicate_id_number", "duplicate of row 2")]

    def test_rows_keep_the_numbers_they_come_with(self) -> None:
        # A blank line (row 3) was skipped by the reader: row 4 is still row 4.
        sync = RosterSync(union_id="u1", complete=False, today=TODAY)
        good, errors = sync.check([(2, raw(1)), (4, raw(2, mobile="1")), (5, raw(1))])
        assert [r.row for r in good] == [2]
        assert [(e.row, e.code) for e in errors] == [
            (4, "not_11_digits"),
            (5, "duplicate_id_number"),
        ]

    def test_lower_case_x_is_the_same_person(self) -> None:
        number = "11010519491231002X"
        sync = RosterSync(union_id="u1", complete=False, today=TODAY)
        _, errors = sync.check(
            numbered([raw(1, id_number=number, categories=""), raw(2, id_number=number.lower())])
        )
        assert errors == [RowError(3, "id_number", "duplicate_id_number", "duplicate of row 2")]

    def test_leavers_only_from_a_complete_roster(self) -> None:
        current = [id_number(1), id_number(2), id_number(3)]
        partial = RosterSync(union_id="u1", complete=False, today=TODAY)
        partial.check(numbered([raw(1)]))
        assert partial.leavers(current) == []
        complete = RosterSync(union_id="u1", complete=True, today=TODAY)
        complete.check(numbered([raw(1)]))
        complete.check(numbered([raw(3)], first=3))
        assert complete.leavers(current) == [id_number(2)]

    def test_a_row_with_a_bad_mobile_still_keeps_its_member(self) -> None:
        sync = RosterSync(union_id="u1", complete=True, today=TODAY)
        good, errors = sync.check(numbered([raw(1, mobile="123")]))
        assert good == [] and len(errors) == 1
        assert sync.leavers([id_number(1)]) == []

    def test_an_unreadable_id_number_holds_back_leavers(self) -> None:
        sync = RosterSync(union_id="u1", complete=True, today=TODAY)
        sync.check(numbered([raw(1), raw(2, id_number=id_number(2)[:-1] + "0")]))
        with pytest.raises(DomainError) as caught:
            sync.leavers([id_number(1), id_number(2)])
        assert (caught.value.field, caught.value.code) == ("complete", "unreadable_id_numbers")

    def test_a_complete_roster_without_rows_takes_nobody_off(self) -> None:
        sync = RosterSync(union_id="u1", complete=True, today=TODAY)
        sync.check([])
        with pytest.raises(DomainError) as caught:
            sync.leavers([id_number(1)])
        assert (caught.value.field, caught.value.code) == ("complete", "empty_complete_roster")
        partial = RosterSync(union_id="u1", complete=False, today=TODAY)
        assert partial.leavers([id_number(1)]) == []


def test_leavers_function() -> None:
    assert leavers(["a", "b", "c"], {"b"}) == ["a", "c"]


class TestDiff:
    def rows(self, *ns: int, **changes: Any) -> list[RosterRow]:
        rows = [validate_row(n, raw(n, **changes), TODAY) for n in ns]
        assert all(isinstance(r, RosterRow) for r in rows)
        return [r for r in rows if isinstance(r, RosterRow)]

    def test_joins_changes_unchanged(self) -> None:
        existing = {
            id_number(1): snapshot(1),
            id_number(2): snapshot(2, name="旧名字"),
            id_number(3): snapshot(3, mobile="13900000000", categories=frozenset()),
        }
        diff = diff_chunk(existing, self.rows(1, 2, 3, 4), "u1")
        assert [r.id_number for r in diff.joins] == [id_number(4)]
        assert diff.unchanged == ["m1"]
        assert [(m.member_id, m.changed_fields) for m in diff.changes] == [
            ("m2", ("name",)),
            ("m3", ("mobile", "categories")),
        ]
        assert diff.transfers == diff.rejoins == []

    def test_fields_the_roster_does_not_give_are_not_changes(self) -> None:
        existing = {id_number(1): snapshot(1, mobile="13900000000")}
        rows = self.rows(1, mobile=None, categories=None)
        assert diff_chunk(existing, rows, "u1").unchanged == ["m1"]

    def test_members_of_another_union_and_former_members(self) -> None:
        existing = {
            id_number(1): snapshot(1, union_id="u9"),
            id_number(2): snapshot(2, status=Status.LEFT, name="旧名字"),
            id_number(3): snapshot(3, status=Status.SUSPENDED),
        }
        diff = diff_chunk(existing, self.rows(1, 2, 3), "u1")
        assert [(m.member_id, m.changed_fields) for m in diff.transfers] == [("m1", ())]
        assert [(m.member_id, m.changed_fields) for m in diff.rejoins] == [("m2", ("name",))]
        assert diff.unchanged == ["m3"]  # suspension is the union's call, not the roster's

    def test_snapshot_of_a_member(self) -> None:
        union = Organisation(
            id="u1", name="u1", kind=OrgKind.ENTERPRISE, parent_id="q", path=["city", "q"]
        )
        member = Member.join(
            id="m1",
            name="职工1",
            id_number=id_number(1),
            mobile="13800000001",
            categories=["migrant_worker"],
            channel="employer_batch",
            union=union,
            employer_name="某公司",
            joined_on=date(2020, 5, 1),
            card_serial=1,
            today=TODAY,
        )
        assert snapshot_of(member) == snapshot(1)


def run(chunk_size: int, raws: list[dict[str, Any]], existing: dict[str, MemberSnapshot]) -> Any:
    sync = RosterSync(union_id="u1", complete=True, today=TODAY)
    total = ChunkDiff()
    all_errors: list[RowError] = []
    rows = numbered(raws)
    for start in range(0, len(rows), chunk_size):
        good, errors = sync.check(rows[start : start + chunk_size])
        all_errors += errors
        chunk = sync.diff(
            {r.id_number: existing[r.id_number] for r in good if r.id_number in existing}, good
        )
        total.joins += chunk.joins
        total.changes += chunk.changes
        total.unchanged += chunk.unchanged
    return total, all_errors, sync.leavers(existing)


@given(
    st.lists(st.integers(1, 60), min_size=1, max_size=80),  # an empty one is refused
    st.sets(st.integers(1, 60)),
    st.integers(1, 20),
)
def test_chunk_size_does_not_change_the_outcome(
    roster: list[int], members: set[int], chunk_size: int
) -> None:
    raws = [raw(n) if n % 5 else raw(n, name="改名") for n in roster]
    existing = {id_number(n): snapshot(n) for n in members}
    whole = run(len(raws) or 1, raws, existing)
    chunked = run(chunk_size, raws, existing)
    assert chunked == whole
    diff, errors, gone = whole
    assert len(errors) == len(roster) - len(set(roster))  # every repeat is one duplicate error
    assert {r.id_number for r in diff.joins} == {id_number(n) for n in set(roster) - members}
    assert set(gone) == {id_number(n) for n in members - set(roster)}
