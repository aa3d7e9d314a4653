"""Money in fen: exact integers, never floats.

Every amount in the mutual-aid domain is an ``int`` of fen (1 yuan = 100 fen). The only place a
fraction of a fen can appear is a ratio applied to an amount (a reimbursement band); ``apply_ratio``
is the one rounding rule:

    ROUNDING RULE: amount × ratio is computed exactly (Decimal) and rounded HALF-UP to the
    whole fen, once per band. The benefit is the sum of the rounded band amounts; ceilings and
    the deductible are whole fen already, so nothing else is ever rounded.

Half-up (not banker's rounding) because it is what members and finance officers do by hand, so a
member checking the explanation with a calculator gets the same fen.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

from pydantic import Field

Fen = int
"""An amount of money in fen. A plain alias so arithmetic and pydantic stay simple."""

FenAmount = Annotated[Fen, Field(strict=True)]
"""A fen field in a pydantic model: strict, so a float or a bool never slips in as money."""

NonNegativeFen = Annotated[Fen, Field(strict=True, ge=0)]

FEN_PER_YUAN = 100


def apply_ratio(amount: Fen, ratio: Decimal) -> Fen:
    """``amount × ratio`` rounded half-up to the fen (the rounding rule above)."""
    return int((Decimal(amount) * ratio).to_integral_value(rounding=ROUND_HALF_UP))


def yuan(text: str | int) -> Fen:
    """Parse a yuan amount written by people ("12,345.67", "1000", 5) into fen, exactly.

    Refuses more than two decimals rather than rounding: an amount with a third decimal is a typo.
    """
    cleaned = str(text).replace(",", "").replace("，", "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount of yuan: {text!r}") from None
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"more than two decimals: {text!r}")
    return int(fen)


def format_yuan(amount: Fen) -> str:
    """``1234567`` → ``"12,345.67"``: how amounts read in explanations and letters."""
    sign = "-" if amount < 0 else ""
    whole, fen = divmod(abs(amount), FEN_PER_YUAN)
    return f"{sign}{whole:,}.{fen:02d}"


def format_bound(amount: Fen) -> str:
    """A band bound as people write it: whole yuan without decimals ("10,000"), else with them."""
    if amount % FEN_PER_YUAN == 0:
        return f"{amount // FEN_PER_YUAN:,}"
    return format_yuan(amount)


def format_ratio(ratio: Decimal) -> str:
    """``Decimal("0.625")`` → ``"62.5%"``."""
    percent = format(ratio * 100, "f")
    if "." in percent:
        percent = percent.rstrip("0").rstrip(".")
    return f"{percent}%"
