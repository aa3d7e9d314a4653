"""The unified social credit code (统一社会信用代码, GB 32100-2015) every employer carries.

Membership records it as a union's employer; union funds match the tax bureau's remittances to
unions by it. Both check it the same way, so the rule lives here once. A check returns ``None``
when the code is good, or a ``(code, message)`` pair naming what is wrong (the error codes are
published in ``docs/errors/membership.md`` and ``docs/errors/union_funds.md``).

Checks take codes already normalised by :func:`normalise_credit_code`.
"""

from __future__ import annotations

# The 31 characters a credit code may use (no I, O, S, V, Z), each worth its position.
CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {c: i for i, c in enumerate(CREDIT_CODE_CHARS)}
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def normalise_credit_code(raw: str) -> str:
    return raw.strip().upper()


def credit_code_check_char(first17: str) -> str:
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> tuple[str, str] | None:
    """Why ``code`` is not a valid unified social credit code: (error code, message), or None."""
    if len(code) != 18:
        return ("wrong_length", "must be 18 characters")
    bad = [c for c in code if c not in _CREDIT_VALUE]
    if bad:
        return ("invalid_character", f"character {bad[0]!r} is not allowed in a credit code")
    if credit_code_check_char(code[:17]) != code[17]:
        return (
            "check_character_mismatch",
            "check character does not match the first 17 characters",
        )
    return None
