"""Certificates: numbers and their check character, masking, verification, issuing."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.training.alphabet import ALPHABET, VALUE
from services.training.domain import (
    DomainError,
    NotFound,
    is_valid_certificate_number,
    mask_name,
    new_certificate_number,
    read_certificate_number,
    verify_certificate,
)
from shared.events.training import CertificateIssued

NUMBER = re.compile(r"^GH-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{3}$")
bodies = st.text(alphabet=ALPHABET, min_size=10, max_size=10)


def number_from(body: str) -> str:
    """The number whose random part is ``body`` (drawn as one number, first character lowest)."""
    drawn = sum(VALUE[char] * len(ALPHABET) ** at for at, char in enumerate(body))
    return new_certificate_number(lambda _below: drawn)


def test_a_new_number_has_the_prefix_ten_random_characters_and_a_check_character():
    number = new_certificate_number()
    assert NUMBER.match(number), number
    assert read_certificate_number(number) == number


def test_a_seeded_source_gives_repeatable_numbers():
    first = new_certificate_number(random.Random(7).randrange)
    assert new_certificate_number(random.Random(7).randrange) == first


def test_a_number_is_read_however_it_was_typed():
    number = number_from("7KQ3M9XAPR")
    compact = number.replace("-", "")
    assert read_certificate_number(compact.lower()) == number
    assert read_certificate_number(f"  {number[:7]} {number[7:]} ") == number


def test_every_single_character_typo_is_detected():
    number = number_from("7KQ3M9XAPR")
    chars = list(number.replace("-", "").removeprefix("GH"))
    for position, original in enumerate(chars):
        for typo in ALPHABET.replace(original, ""):
            wrong = chars.copy()
            wrong[position] = typo
            with pytest.raises(DomainError) as refused:
                read_certificate_number("GH" + "".join(wrong))
            assert refused.value.code == "check_character_mismatch"


@given(body=bodies, data=st.data())
def test_swapping_two_different_characters_is_detected(body, data):
    chars = list(number_from(body).replace("-", "").removeprefix("GH"))
    i = data.draw(st.integers(0, len(chars) - 2))
    j = data.draw(st.integers(i + 1, len(chars) - 1))
    if chars[i] == chars[j]:
        return
    chars[i], chars[j] = chars[j], chars[i]
    assert not is_valid_certificate_number("GH" + "".join(chars))


@pytest.mark.parametrize(
    "text",
    ["", "GH", "GH-7KQ3-M9XA-PR", "XX-7KQ3-M9XA-PR4", "GH-7KQ3-M9XA-PR44", "GH-0KQ3-M9XA-PR4"],
)
def test_what_cannot_be_a_number_is_malformed(text):
    with pytest.raises(DomainError) as refused:
        read_certificate_number(text)
    assert (refused.value.field, refused.value.code) == ("certificate_number", "malformed")


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("张小三", "张**"),
        ("欧阳明月", "欧***"),
        ("张", "张*"),
        (" 李四 ", "李*"),
        ("", ""),
    ],
)
def test_a_name_keeps_its_first_character_and_masks_the_rest(name, masked):
    assert mask_name(name) == masked


def completed_class(build):
    cls = build.training_class(sessions=build.sessions(count=1))
    cls.enrol(build.member(1), build.now)
    cls.check_in_by_staff("s1", "m1", cls.sessions[0].starts_at)
    cls.events.clear()
    return cls


def test_a_completed_member_is_issued_a_certificate_once(build):
    cls = completed_class(build)
    number = new_certificate_number(random.Random(1).randrange)
    on = cls.sessions[0].ends_at

    certificate = cls.issue_certificate("m1", number.replace("-", "").lower(), on)

    assert certificate.number == number
    assert (certificate.holder_name, certificate.course_title) == ("张1", cls.course.title)
    [event] = cls.events
    assert isinstance(event, CertificateIssued)
    assert (event.certificate_number, event.member_id, event.issued_on) == (number, "m1", on.date())
    again = cls.issue_certificate("m1", new_certificate_number(), on)
    assert again is certificate and len(cls.events) == 1


def test_no_certificate_before_completion(build):
    cls = build.training_class()
    cls.enrol(build.member(1), build.now)
    with pytest.raises(DomainError) as refused:
        cls.issue_certificate("m1", new_certificate_number(), build.now)
    assert refused.value.code == "not_completed"


def test_a_certificate_needs_a_well_formed_number(build):
    cls = completed_class(build)
    with pytest.raises(DomainError) as refused:
        cls.issue_certificate("m1", "GH-1234", build.now)
    assert refused.value.code == "malformed"


def test_verifying_a_genuine_certificate_shows_the_masked_holder_course_and_date(build):
    cls = completed_class(build)
    certificate = cls.issue_certificate(
        "m1", new_certificate_number(), build.now, holder_name="张小三"
    )

    result = verify_certificate(certificate.number.lower(), certificate)

    assert result.number == certificate.number
    assert (result.holder, result.course_title, result.class_name) == (
        "张**",
        "工会干部业务培训",
        "2024年第一期",
    )
    assert result.completed_on == certificate.completed_on
    assert "小三" not in repr(result)


def test_verifying_an_unknown_or_mistyped_number_says_why_it_is_not_genuine(build):
    cls = completed_class(build)
    certificate = cls.issue_certificate("m1", number_from("7KQ3M9XAPR"), build.now)
    other = number_from("7KQ3M9XAPS")

    for held in (None, certificate):
        with pytest.raises(NotFound) as unknown:
            verify_certificate(other, held)
        assert (unknown.value.field, unknown.value.code) == (
            "certificate_number",
            "unknown_certificate",
        )
    typo = certificate.number[:-1] + ("2" if certificate.number[-1] != "2" else "3")
    for text, code in ((typo, "check_character_mismatch"), ("hello", "malformed")):
        with pytest.raises(DomainError) as refused:
            verify_certificate(text, None)
        assert not isinstance(refused.value, NotFound)
        assert (refused.value.status, refused.value.code) == (422, code)
