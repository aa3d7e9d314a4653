"""Certificates of completion: their numbers, and what a verification tells the public.

A number looks like ``GH-7KQ3-M9XA-PR4``: the prefix, ten random characters of the unambiguous
alphabet and one check character. Random rather than serial so nobody can walk the register by
counting (31**10 ≈ 8e14 numbers); uniqueness is finally the database's unique index, a collision
(vanishingly rare) is retried with a fresh number.

The check character makes ``sum(weight_i * value_i) + check ≡ 0 (mod 31)`` with weights 2..11 on the
body. 31 is prime and the weights are distinct and non-zero mod 31, so any single wrong character
and any swap of two different characters is caught before the register is even asked.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from services.training.alphabet import ALPHABET, VALUE, encode, normalise
from shared.errors import DomainError, NotFound
from shared.masking import mask_name as shared_mask_name

PREFIX = "GH"
BODY_LENGTH = 10
_MODULUS = len(ALPHABET)


def check_character(body: str) -> str:
    total = sum((position + 2) * VALUE[char] for position, char in enumerate(body))
    return ALPHABET[-total % _MODULUS]


def _display(body: str) -> str:
    chars = body + check_character(body)
    return f"{PREFIX}-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def new_certificate_number(below: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh certificate number; pass ``random.Random(seed).randrange`` for repeatable tests.

    The body is one number below 31**10 written in the alphabet: one draw from the system's
    randomness, not one per character (a 300,000-line viewing export spent 29 % of its API
    time in those ten draws a number)."""
    return _display(encode(below(_MODULUS**BODY_LENGTH), BODY_LENGTH))


def read_certificate_number(text: str) -> str:
    """The canonical form of a typed or scanned number; a DomainError if it cannot be genuine."""
    compact = normalise(text)
    chars = compact.removeprefix(PREFIX)
    if (
        len(compact) - len(chars) != len(PREFIX)
        or len(chars) != BODY_LENGTH + 1
        or any(char not in VALUE for char in chars)
    ):
        raise DomainError("certificate_number", "malformed", "this is not a certificate number")
    body, check = chars[:-1], chars[-1]
    if check_character(body) != check:
        raise DomainError(
            "certificate_number",
            "check_character_mismatch",
            "this number has a typo: check it against the certificate",
        )
    return _display(body)


def is_valid_certificate_number(text: str) -> bool:
    try:
        read_certificate_number(text)
    except DomainError:
        return False
    return True


def mask_name(name: str) -> str:
    """Keep the first character, mask the rest: 张三 → 张*, 欧阳明月 → 欧***.

    The platform's masking, except that a one-character name still gets a mask, so a masked name
    is never a whole name.
    """
    name = name.strip()
    return name + "*" if len(name) == 1 else shared_mask_name(name)


@dataclass(frozen=True)
class Certificate:
    number: str
    enrolment_id: str
    member_id: str
    holder_name: str
    course_id: str
    course_title: str
    class_id: str
    class_name: str
    completed_on: date
    issued_on: date


@dataclass(frozen=True)
class Verification:
    """What anyone holding a genuine certificate's number may learn: never the full name or
    member id."""

    number: str
    holder: str
    course_title: str
    class_name: str
    completed_on: date
    issued_on: date


def verify_certificate(text: str, certificate: Certificate | None) -> Verification:
    """The answer to "is certificate ``text`` genuine?" given what the register holds for it.

    Call ``read_certificate_number`` first to look the number up. A number that cannot be genuine
    is a DomainError (``malformed``, ``check_character_mismatch``); one the register does not
    hold is NotFound (``unknown_certificate``).
    """
    number = read_certificate_number(text)
    if certificate is None or certificate.number != number:
        raise NotFound(
            "certificate_number", "unknown_certificate", "no certificate has this number"
        )
    return Verification(
        number=number,
        holder=mask_name(certificate.holder_name),
        course_title=certificate.course_title,
        class_name=certificate.class_name,
        completed_on=certificate.completed_on,
        issued_on=certificate.issued_on,
    )
