"""The alphabet for codes people read aloud, type or scan: session codes and certificate numbers.

31 characters: digits and capitals without 0/O, 1/I/L, which are confused on screens and paper.
31 is prime, which the certificate check character relies on.
"""

from __future__ import annotations

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
VALUE = {char: value for value, char in enumerate(ALPHABET)}


def normalise(code: str) -> str:
    """Upper-case and drop the spaces and hyphens people add when copying a code."""
    return "".join(code.split()).replace("-", "").upper()


def encode(number: int, length: int) -> str:
    """``number`` as exactly ``length`` characters of the alphabet (the high part is dropped)."""
    chars = []
    for _ in range(length):
        number, value = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[value])
    return "".join(chars)
