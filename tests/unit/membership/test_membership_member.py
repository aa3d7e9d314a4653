"""Members: joining, the status timeline, transfers, cards and corrections."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.membership.domain import (
    Category,
    Conflict,
    DomainError,
    Member,
    Organisation,
    OrgKind,
    Status,
)
from services.membership.identity import card_number, mod11_2_check_char
from shared.events.membership import (
    CardIssued,
    MemberDetailsChanged,
    MemberJoined,
    MemberLeft,
    MemberReinstated,
    MemberSuspended,
    MemberTransferred,
)

TODAY = date(2024, 6, 1)
WOMAN_ID = "11010519491231002X"


def id_number(born: str = "19900315", sequence: str = "131") -> str:
    body = "341602" + born + sequence
    return body + mod11_2_check_char(body)


MAN_ID = id_number()


def grassroots(id: str, kind: OrgKind = OrgKind.ENTERPRISE) -> Organisation:
    return Organisation(
        id=id, name=id, kind=kind, parent_id="qiaocheng", path=["city", "qiaocheng"]
    )


U1, U2 = grassroots("u1"), grassroots("u2")


def join(**changes: Any) -> Member:
    fields: dict[str, Any] = {
        "id": "m1",
        "name": "王芳",
        "id_number": MAN_ID,
        "mobile": "13800138000",
        "categories": ["migrant_worker"],
        "channel": "on_site",
        "union": U1,
        "employer_name": "亳州某物流有限公司",
        "joined_on": date(2020, 1, 10),
        "card_serial": 42,
        "today": TODAY,
    }
    fields.update(changes)
    return Member.join(**fields)


class TestJoin:
    def test_join_records_the_member_and_the_first_card(self) -> None:
        member = join()
        [event] = member.events
        assert event == MemberJoined(
            member_id="m1",
            name="王芳",
            union_id="u1",
            union_path=["city", "qiaocheng", "u1"],
            channel="on_site",
            categories=["migrant_worker"],
            joined_on=date(2020, 1, 10),
            card_number=card_number(42),
            sex="male",
            birth_date=date(1990, 3, 15),
        )
        assert member.status is Status.ACTIVE
        assert member.card_is_valid(card_number(42))

    def test_woman_is_read_from_the_id_number(self) -> None:
        member = join(id_number=WOMAN_ID, categories=[])
        assert member.categories == {Category.WOMAN}
        assert member.declared_categories == frozenset()
        event = member.events[0]
        assert isinstance(event, MemberJoined)
        assert event.categories == ["woman"]

    def test_declaring_woman_is_accepted_when_the_id_agrees(self) -> None:
        member = join(id_number=WOMAN_ID, categories=["woman", "女", "农民工"])
        assert member.declared_categories == {Category.MIGRANT_WORKER}

    def test_declaring_woman_against_the_id_number_is_refused(self) -> None:
        with pytest.raises(DomainError) as caught:
            join(categories=["woman"])
        assert caught.value.field == "categories"

    def test_unknown_category_is_refused(self) -> None:
        with pytest.raises(DomainError, match="unknown category 'retired'"):
            join(categories=["retired"])

    def test_a_platform_worker_may_have_no_employer(self) -> None:
        member = join(channel="platform_worker", employer_name=None, categories=[])
        assert member.employer_name is None
        assert Category.NEW_EMPLOYMENT_FORM in member.categories

    def test_others_need_an_employer(self) -> None:
        with pytest.raises(DomainError) as caught:
            join(employer_name="  ")
        assert caught.value.field == "employer_name"

    def test_joining_online_needs_a_mobile(self) -> None:
        with pytest.raises(DomainError) as caught:
            join(channel="online", mobile=None)
        assert caught.value.field == "mobile"
        assert join(channel="employer_batch", mobile=None).mobile is None

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"id_number": "110105194912310021"}, "id_number"),
            ({"mobile": "12800138000"}, "mobile"),
            ({"name": "王" * 51}, "name"),
            ({"name": ""}, "name"),
            ({"channel": "carrier_pigeon"}, "channel"),
            ({"joined_on": date(2024, 6, 2)}, "joined_on"),
            ({"joined_on": date(2006, 3, 14)}, "joined_on"),  # a day short of 16
        ],
    )
    def test_bad_input_names_the_field(self, changes: dict[str, Any], field: str) -> None:
        with pytest.raises(DomainError) as caught:
            join(**changes)
        assert caught.value.field == field

    def test_sixteenth_birthday_is_old_enough(self) -> None:
        assert join(joined_on=date(2006, 3, 15)).joined_on == date(2006, 3, 15)

    def test_members_join_grassroots_unions_that_stand(self) -> None:
        federation = Organisation(
            id="q", name="q", kind=OrgKind.COUNTY_FEDERATION, parent_id="city", path=["city"]
        )
        with pytest.raises(DomainError) as caught:
            join(union=federation)
        assert caught.value.field == "union_id"
        closed = grassroots("closed")
        closed.dissolved_on = date(2019, 1, 1)
        with pytest.raises(Conflict):
            join(union=closed)


def life() -> Member:
    """Joined u1 2020-01-10, suspended 2021-03-01, reinstated 2021-06-01, moved to u2
    2022-01-01, left 2023-05-01."""
    member = join()
    member.suspend(on=date(2021, 3, 1), reason="dues unpaid", today=TODAY)
    member.reinstate(on=date(2021, 6, 1), today=TODAY)
    member.transfer(to_union=U2, on=date(2022, 1, 1), today=TODAY)
    member.leave(on=date(2023, 5, 1), reason="retired", today=TODAY)
    return member


class TestTimeline:
    @pytest.mark.parametrize(
        ("day", "active", "union"),
        [
            (date(2020, 1, 9), False, None),  # before joining
            (date(2020, 1, 10), True, "u1"),  # the day of joining counts
            (date(2021, 2, 28), True, "u1"),
            (date(2021, 3, 1), False, "u1"),  # suspended, still in the union
            (date(2021, 5, 31), False, "u1"),
            (date(2021, 6, 1), True, "u1"),
            (date(2021, 12, 31), True, "u1"),
            (date(2022, 1, 1), True, "u2"),
            (date(2023, 4, 30), True, "u2"),
            (date(2023, 5, 1), False, None),  # the day of leaving does not
            (date(2030, 1, 1), False, None),
        ],
    )
    def test_member_and_union_on_a_date(self, day: date, active: bool, union: str | None) -> None:
        member = life()
        assert member.was_active_on(day) is active
        assert member.union_on(day) == union

    def test_status_on_a_date(self) -> None:
        member = life()
        assert member.status_on(date(2020, 1, 1)) is None
        assert member.status_on(date(2021, 4, 1)) is Status.SUSPENDED
        assert member.status_on(date(2024, 1, 1)) is Status.LEFT
        assert member.status is Status.LEFT
        assert member.union_id == "u2"

    def test_each_change_records_its_event(self) -> None:
        member = life()
        assert member.events[1:] == [
            MemberSuspended(member_id="m1", suspended_on=date(2021, 3, 1), reason="dues unpaid"),
            MemberReinstated(member_id="m1", reinstated_on=date(2021, 6, 1)),
            MemberTransferred(
                member_id="m1",
                from_union_id="u1",
                to_union_id="u2",
                union_path=["city", "qiaocheng", "u2"],
                transferred_on=date(2022, 1, 1),
            ),
            MemberLeft(member_id="m1", left_on=date(2023, 5, 1), reason="retired"),
        ]

    def test_two_changes_on_one_day_keep_their_order(self) -> None:
        member = join()
        member.transfer(to_union=U2, on=date(2021, 1, 1), today=TODAY)
        member.suspend(on=date(2021, 1, 1), reason="r", today=TODAY)
        assert member.union_on(date(2021, 1, 1)) == "u2"
        assert member.status_on(date(2021, 1, 1)) is Status.SUSPENDED

    def test_a_suspended_member_moves_still_suspended(self) -> None:
        member = join()
        member.suspend(on=date(2021, 1, 1), reason="r", today=TODAY)
        member.transfer(to_union=U2, on=date(2021, 2, 1), today=TODAY)
        assert (member.status, member.union_id) == (Status.SUSPENDED, "u2")

    def test_rejoining_after_leaving(self) -> None:
        member = life()
        member.events.clear()
        member.rejoin(union=U1, on=date(2024, 1, 2), channel="online", today=TODAY)
        assert member.union_on(date(2023, 6, 1)) is None
        assert member.union_on(date(2024, 1, 2)) == "u1"
        assert member.joined_on == date(2020, 1, 10)
        [event] = member.events
        assert isinstance(event, MemberJoined)
        assert (event.joined_on, event.channel, event.card_number) == (
            date(2024, 1, 2),
            "online",
            card_number(42),
        )


class TestInvalidTransitions:
    def test_leaving_twice(self) -> None:
        member = life()
        with pytest.raises(Conflict) as caught:
            member.leave(on=TODAY, reason="again", today=TODAY)
        assert (caught.value.field, caught.value.code, caught.value.message) == (
            "status",
            "member_left",
            "left on 2023-05-01",
        )

    def test_reinstating_an_active_member(self) -> None:
        with pytest.raises(Conflict) as caught:
            join().reinstate(on=TODAY, today=TODAY)
        assert caught.value.field == "status"

    def test_suspending_twice(self) -> None:
        member = join()
        member.suspend(on=TODAY, reason="r", today=TODAY)
        with pytest.raises(Conflict, match="already suspended"):
            member.suspend(on=TODAY, reason="r", today=TODAY)

    @pytest.mark.parametrize(
        "change",
        [
            lambda m: m.transfer(to_union=U1, on=TODAY, today=TODAY),
            lambda m: m.suspend(on=TODAY, reason="r", today=TODAY),
            lambda m: m.reinstate(on=TODAY, today=TODAY),
            lambda m: m.reissue_card(serial=7, on=TODAY, today=TODAY),
        ],
    )
    def test_nothing_happens_to_someone_who_left(self, change: Any) -> None:
        with pytest.raises(Conflict) as caught:
            change(life())
        assert caught.value.field == "status"

    def test_rejoining_while_still_a_member(self) -> None:
        with pytest.raises(Conflict):
            join().rejoin(union=U2, on=TODAY, channel="online", today=TODAY)

    def test_transfer_to_the_same_union(self) -> None:
        with pytest.raises(Conflict) as caught:
            join().transfer(to_union=U1, on=TODAY, today=TODAY)
        assert caught.value.field == "union_id"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            (lambda m, d: m.leave(on=d, reason="r", today=TODAY), "left_on"),
            (lambda m, d: m.suspend(on=d, reason="r", today=TODAY), "suspended_on"),
            (lambda m, d: m.transfer(to_union=U2, on=d, today=TODAY), "transferred_on"),
        ],
    )
    def test_dates_in_the_future_or_before_joining(self, change: Any, field: str) -> None:
        for day, code, message in [
            (date(2024, 6, 2), "date_in_future", "2024-06-02 is in the future"),
            (date(2020, 1, 9), "before_joining", "before joining on 2020-01-10"),
        ]:
            with pytest.raises(DomainError) as caught:
                change(join(), day)
            assert (caught.value.field, caught.value.code) == (field, code)
            assert caught.value.message == message

    def test_the_timeline_is_not_rewritten(self) -> None:
        member = join()
        member.suspend(on=date(2022, 1, 1), reason="r", today=TODAY)
        with pytest.raises(DomainError) as caught:
            member.reinstate(on=date(2021, 12, 31), today=TODAY)
        assert caught.value.code == "before_last_change"
        assert caught.value.message == "before the last change on 2022-01-01"
        assert member.status is Status.SUSPENDED

    def test_a_failed_change_leaves_no_trace(self) -> None:
        member = join()
        member.events.clear()
        with pytest.raises(DomainError):
            member.leave(on=date(2024, 6, 2), reason="r", today=TODAY)
        assert (member.events, len(member.timeline)) == ([], 1)


class TestCards:
    def test_reissue_makes_the_old_card_invalid(self) -> None:
        member = join()
        old = member.card_number
        member.events.clear()
        new = member.reissue_card(serial=43, on=date(2023, 2, 1), today=TODAY)
        assert new == card_number(43)
        assert not member.card_is_valid(old)
        assert member.card_is_valid(new.lower())
        assert member.cards[0].revoked_on == date(2023, 2, 1)
        assert member.events == [
            CardIssued(member_id="m1", card_number=new, reissue=True, issued_on=date(2023, 2, 1))
        ]

    def test_a_card_opens_nothing_once_its_member_is_suspended_or_left(self) -> None:
        member = join()
        member.suspend(on=TODAY, reason="r", today=TODAY)
        assert not member.card_is_valid(member.card_number)

    def test_reissue_dates_are_checked(self) -> None:
        member = join()
        with pytest.raises(DomainError) as caught:
            member.reissue_card(serial=43, on=date(2019, 1, 1), today=TODAY)
        assert caught.value.field == "issued_on"


class TestCorrections:
    def test_only_changed_fields_are_recorded(self) -> None:
        member = join()
        member.events.clear()
        changed = member.correct_details(
            name="王芳",
            mobile="139 0013 8000",
            categories=["migrant_worker", "new_employment_form"],
        )
        assert changed == ["mobile", "categories"]
        assert member.events == [
            MemberDetailsChanged(
                member_id="m1",
                name="王芳",
                categories=["migrant_worker", "new_employment_form"],
                changed_fields=["mobile", "categories"],
            )
        ]

    def test_no_change_no_event(self) -> None:
        member = join()
        member.events.clear()
        assert member.correct_details(name="王芳", categories=["农民工"]) == []
        assert member.events == []

    def test_dropping_new_employment_form_needs_an_employer(self) -> None:
        member = join(channel="platform_worker", employer_name=None, categories=[])
        with pytest.raises(DomainError) as caught:
            member.correct_details(categories=[])
        assert caught.value.field == "employer_name"
        assert member.correct_details(categories=[], employer_name="某快递公司") == [
            "categories",
            "employer_name",
        ]
