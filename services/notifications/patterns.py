"""Template value patterns: literal text with ``{field}`` placeholders, as in ``str.format``.

Only plain names are allowed (no ``{a.b}``, ``{a[0]}``, ``!r`` or ``:spec``), so a rules file can
read event fields and nothing else. A placeholder may name a filter: ``{amount_fen|yuan}``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.notifications.errcodes import CHINA_STANDARD_TIME


def _yuan(value: Any) -> str:
    """Fen (an integer, as money is kept) to yuan with two decimals, without float rounding."""
    fen = int(value)
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def _beijing_time(value: Any) -> str:
    """An ISO date-time as Beijing wall-clock time to the minute (a naive one is taken to be Beijing
    time already); a bare date stays as it is."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(CHINA_STANDARD_TIME)
    elif "T" not in str(value) and " " not in str(value):
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M")


FILTERS: dict[str, Callable[[Any], str]] = {"yuan": _yuan, "time": _beijing_time}

_PLACEHOLDER = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\|(?P<filter>[a-z_]+))?$")


@dataclass(frozen=True)
class Placeholder:
    name: str
    filter: str | None = None


@dataclass(frozen=True)
class Pattern:
    """A parsed template value: literal text and placeholders, in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))


class PatternError(ValueError):
    pass


def parse_pattern(source: str) -> Pattern:
    try:
        pieces = list(string.Formatter().parse(source))
    except ValueError as e:  # unbalanced braces
        raise PatternError(f"{source!r}: {e}") from None
    parts: list[str | Placeholder] = []
    for literal, field_name, spec, conversion in pieces:
        if literal:
            # Formatter splits at escaped braces: join the pieces back into one literal.
            if parts and isinstance(parts[-1], str):
                parts[-1] += literal
            else:
                parts.append(literal)
        if field_name is None:
            continue
        match = _PLACEHOLDER.match(field_name)
        if match is None or spec or conversion:
            shown = field_name + (f"!{conversion}" if conversion else "")
            shown += f":{spec}" if spec else ""
            raise PatternError(
                f"{source!r}: placeholder {{{shown}}} must be a plain field name, "
                "optionally with |filter"
            )
        filter_name = match["filter"]
        if filter_name is not None and filter_name not in FILTERS:
            raise PatternError(
                f"{source!r}: unknown filter |{filter_name} (known: {', '.join(sorted(FILTERS))})"
            )
        parts.append(Placeholder(match["name"], filter_name))
    return Pattern(source, tuple(parts))
