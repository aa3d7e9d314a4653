"""Identifier check rules, tested against small independent implementations of the standards."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.membership.domain import DomainError, Employer, parse_id_number, parse_mobile
from services.membership.identity import (
    CREDIT_CODE_CHARS,
    PROVINCE_CODES,
    Problem,
    Sex,
    card_number,
    card_number_problem,
    credit_code_problem,
    id_number_problem,
    mobile_problem,
    normalise_card_number,
    normalise_id_number,
    normalise_mobile,
)

TODAY = date(2024, 6, 1)

# GB 11643 as the standard states it: a weighted sum, looked up in a table.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_check(body: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def make_id(area: str, born: str, sequence: str) -> str:
    body = area + born + sequence
    return body + id_check(body)


# GB 32100 as the standard states it.
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_check(body: str) -> str:
    total = sum(CREDIT_CODE_CHARS.index(c) * w for c, w in zip(body, CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31]


def mod11_2(digits: str) -> str:
    """ISO 7064 MOD 11-2 by the standard's recursive method, not by weights."""
    p = 0
    for d in digits:
        p = (p + int(d)) * 2 % 11
    return "0123456789X"[(12 - p) % 11]


def test_the_two_mod_11_2_methods_agree_on_the_id_number() -> None:
    assert mod11_2("11010519491231002") == id_check("11010519491231002") == "X"


class TestResidentIdNumber:
    def test_published_example_with_x_check_character(self) -> None:
        assert id_check("11010519491231002") == "X"
        assert id_number_problem("11010519491231002X", TODAY) is None
        resident = parse_id_number("11010519491231002X", TODAY)
        assert resident.birth_date == date(1949, 12, 31)
        assert resident.sex is Sex.FEMALE  # sequence 002 is even

    def test_lower_case_x_is_normalised(self) -> None:
        assert normalise_id_number(" 11010519491231002x ") == "11010519491231002X"
        assert parse_id_number("11010519491231002x", TODAY).number == "11010519491231002X"

    def test_odd_sequence_is_a_man(self) -> None:
        assert parse_id_number(make_id("341602", "19850715", "131"), TODAY).sex is Sex.MALE

    def test_leap_day_in_a_leap_year_is_a_real_birth_date(self) -> None:
        number = make_id("341602", "19960229", "123")
        assert id_number_problem(number, TODAY) is None
        assert parse_id_number(number, TODAY).birth_date == date(1996, 2, 29)

    def test_leap_day_in_a_common_year_is_refused(self) -> None:
        number = make_id("341602", "19970229", "123")
        assert id_number_problem(number, TODAY) == Problem(
            "invalid_birth_date", "birth date 19970229 is not a real date"
        )

    @pytest.mark.parametrize("born", ["19971301", "19970431", "00000101"])
    def test_impossible_dates_are_refused(self, born: str) -> None:
        problem = id_number_problem(make_id("341602", born, "123"), TODAY)
        assert problem is not None and problem.code == "invalid_birth_date"

    def test_birth_date_in_the_future_is_refused(self) -> None:
        number = make_id("341602", "20240602", "123")
        assert id_number_problem(number, TODAY) == Problem(
            "birth_date_in_future", "birth date 2024-06-02 is in the future"
        )
        assert id_number_problem(make_id("341602", "20240601", "123"), TODAY) is None

    @pytest.mark.parametrize("area", ["001234", "161234", "241234", "721234", "831234", "991234"])
    def test_area_outside_the_provinces_is_refused(self, area: str) -> None:
        problem = id_number_problem(make_id(area, "19900101", "123"), TODAY)
        assert problem == Problem("unknown_area", f"area code {area} is not in a known province")

    @pytest.mark.parametrize(
        "province", ["11", "15", "21", "37", "46", "54", "65", "71", "81", "82"]
    )
    def test_every_province_range_edge_is_accepted(self, province: str) -> None:
        assert id_number_problem(make_id(province + "0101", "19900101", "123"), TODAY) is None

    def test_wrong_check_character_is_refused(self) -> None:
        problem = id_number_problem("110105194912310021", TODAY)
        assert problem == Problem(
            "check_character_mismatch", "check character does not match the first 17 digits"
        )

    @pytest.mark.parametrize(
        ("number", "code"),
        [
            ("1101051949123100", "wrong_length"),
            ("11010519491231002XX", "wrong_length"),
            ("1101051949123100AX", "not_digits"),
            ("110105 94912310021", "not_digits"),
            ("11010519491231002١", "check_character_mismatch"),
            ("١١010519491231002X", "not_digits"),
        ],
    )
    def test_malformed_numbers_are_refused(self, number: str, code: str) -> None:
        problem = id_number_problem(number, TODAY)
        assert problem is not None and problem.code == code

    def test_parse_raises_naming_the_field(self) -> None:
        with pytest.raises(DomainError) as caught:
            parse_id_number("110105194912310021", TODAY)
        assert (caught.value.field, caught.value.code) == ("id_number", "check_character_mismatch")
        assert "check character" in caught.value.message


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(sorted(PROVINCE_CODES)))
    rest_of_area = draw(st.from_regex(r"\A[0-9]{4}\Z"))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    sequence = draw(st.from_regex(r"\A[0-9]{3}\Z"))
    return make_id(province + rest_of_area, born.strftime("%Y%m%d"), sequence)


@given(valid_ids())
def test_every_well_formed_id_number_passes(number: str) -> None:
    assert id_number_problem(number, TODAY) is None
    resident = parse_id_number(number.lower(), TODAY)
    assert resident.sex is (Sex.MALE if int(number[16]) % 2 else Sex.FEMALE)


@given(valid_ids(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_character_change_is_caught(number: str, position: int, new: str) -> None:
    if number[position] == new:
        return
    changed = number[:position] + new + number[position + 1 :]
    assert id_number_problem(changed, TODAY) is not None


class TestCreditCode:
    def test_commonly_cited_code_is_valid(self) -> None:
        assert credit_check("91350100M000100Y4") == "3"
        assert credit_code_problem("91350100M000100Y43") is None

    def test_wrong_check_character_is_refused(self) -> None:
        problem = credit_code_problem("91350100M000100Y44")
        assert problem == Problem(
            "check_character_mismatch", "check character does not match the first 17 characters"
        )

    @pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
    def test_letters_outside_the_alphabet_are_refused(self, letter: str) -> None:
        problem = credit_code_problem(f"91350100{letter}000100Y43")
        assert problem == Problem(
            "invalid_character", f"character {letter!r} is not allowed in a credit code"
        )

    def test_length_is_checked(self) -> None:
        assert credit_code_problem("91350100M000100Y4") == Problem(
            "wrong_length", "must be 18 characters"
        )

    def test_employer_normalises_and_names_the_field(self) -> None:
        employer = Employer.of(
            name="亳州某物流有限公司",
            credit_code=" 91350100m000100y43 ",
            headcount_band="100-499",
            address="亳州市谯城区",
        )
        assert employer.credit_code == "91350100M000100Y43"
        with pytest.raises(DomainError) as caught:
            Employer.of(
                name="x", credit_code="91350100M000100Y44", headcount_band="1-24", address="y"
            )
        assert caught.value.field == "employer.credit_code"
        with pytest.raises(DomainError) as caught:
            Employer.of(
                name="x", credit_code="91350100M000100Y43", headcount_band="lots", address="y"
            )
        assert caught.value.field == "employer.headcount_band"


credit_bodies = st.text(alphabet=CREDIT_CODE_CHARS, min_size=17, max_size=17)


@given(credit_bodies)
def test_every_code_with_its_check_character_passes(body: str) -> None:
    assert credit_code_problem(body + credit_check(body)) is None


@given(credit_bodies, st.integers(0, 17), st.sampled_from(CREDIT_CODE_CHARS))
def test_any_single_character_change_in_a_code_is_caught(
    body: str, position: int, new: str
) -> None:
    code = body + credit_check(body)
    if code[position] == new:
        return
    assert credit_code_problem(code[:position] + new + code[position + 1 :]) is not None


class TestMobile:
    @pytest.mark.parametrize("mobile", ["13800138000", "15912345678", "19999999999", "14700000000"])
    def test_valid_numbers(self, mobile: str) -> None:
        assert mobile_problem(mobile) is None

    @pytest.mark.parametrize(
        ("mobile", "code"),
        [
            ("1380013800", "not_11_digits"),
            ("138001380001", "not_11_digits"),
            ("1380013800a", "not_11_digits"),
            ("12800138000", "invalid_prefix"),
            ("10800138000", "invalid_prefix"),
            ("23800138000", "invalid_prefix"),
            ("１３８００１３８０００", "not_11_digits"),  # full-width digits
        ],
    )
    def test_malformed_numbers(self, mobile: str, code: str) -> None:
        problem = mobile_problem(mobile)
        assert problem is not None and problem.code == code

    def test_spreadsheet_spellings_are_normalised(self) -> None:
        assert normalise_mobile("+86 138-0013-8000") == "13800138000"
        assert parse_mobile("138 0013 8000") == "13800138000"
        with pytest.raises(DomainError) as caught:
            parse_mobile("12800138000")
        assert caught.value.field == "mobile"


class TestMemberCard:
    def test_format(self) -> None:
        card = card_number(1234567)
        assert card == "GH0001234567" + mod11_2("0001234567")
        assert card_number_problem(card) is None

    def test_check_character_can_be_x_and_is_case_insensitive(self) -> None:
        card = card_number(1)
        assert card == "GH0000000001X"
        assert card_number_problem(normalise_card_number(card.lower())) is None

    def test_serial_must_fit(self) -> None:
        with pytest.raises(ValueError):
            card_number(0)
        with pytest.raises(ValueError):
            card_number(10**10)

    @pytest.mark.parametrize(
        ("card", "problem"),
        [
            ("GH000000000", Problem("invalid_format", "must be GH followed by 11 characters")),
            ("XY0000000001X", Problem("invalid_format", "must be GH followed by 11 characters")),
            ("GH00000A0001X", Problem("not_digits", "the 10 characters after GH must be digits")),
            (
                "GH00000000011",
                Problem("check_character_mismatch", "check character does not match"),
            ),
        ],
    )
    def test_malformed_cards(self, card: str, problem: Problem) -> None:
        assert card_number_problem(card) == problem


serials = st.integers(1, 10**10 - 1)


@given(serials, st.integers(2, 11), st.integers(1, 9))
def test_a_single_digit_typo_on_a_card_is_caught(serial: int, position: int, shift: int) -> None:
    card = card_number(serial)
    typo = str((int(card[position]) + shift) % 10)
    assert card_number_problem(card[:position] + typo + card[position + 1 :]) is not None


@given(serials, st.integers(2, 10))
def test_swapping_two_neighbouring_card_digits_is_caught(serial: int, position: int) -> None:
    card = card_number(serial)
    a, b = card[position], card[position + 1]
    if a == b:
        return
    swapped = card[:position] + b + a + card[position + 2 :]
    assert card_number_problem(swapped) is not None


def test_birth_dates_across_a_century_pass() -> None:
    born = date(1920, 1, 1)
    while born <= TODAY:
        assert id_number_problem(make_id("341602", born.strftime("%Y%m%d"), "001"), TODAY) is None
        born += timedelta(days=97)
