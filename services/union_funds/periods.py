"""Periods union funds are declared and granted for: a month ("2026-10"), a quarter ("2026Q3") or,
for subsidies, a year ("2026"). Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from shared.errors import DomainError
from shared.inputs import LATEST_YEAR

# The Trade Union Law's funds rules date from 1950: an earlier year is a typo. A later year than
# dates are accepted for anywhere on the platform (shared.inputs) is one too.
MIN_YEAR, MAX_YEAR = 1950, LATEST_YEAR


class PeriodKind(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# Tax declares union funds monthly or quarterly; finance also grants subsidies for a whole year.
REMITTANCE_PERIODS = frozenset({PeriodKind.MONTH, PeriodKind.QUARTER})
SUBSIDY_PERIODS = frozenset(PeriodKind)

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_QUARTER = re.compile(r"([0-9]{4})Q([0-9])")
_YEAR = re.compile(r"([0-9]{4})")


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar month ("2026-10"), quarter ("2026Q3") or year ("2026")."""

    year: int
    kind: PeriodKind
    number: int  # the month (1-12), the quarter (1-4), or 1 for a year

    @classmethod
    def parse(
        cls,
        raw: str,
        *,
        field: str = "period",
        kinds: frozenset[PeriodKind] = REMITTANCE_PERIODS,
    ) -> Period:
        text = raw.strip().upper()
        if m := _MONTH.fullmatch(text):
            period = cls(int(m[1]), PeriodKind.MONTH, int(m[2]))
            if not 1 <= period.number <= 12:
                raise DomainError(field, "no_such_month", f"month {m[2]} does not exist")
        elif m := _QUARTER.fullmatch(text):
            period = cls(int(m[1]), PeriodKind.QUARTER, int(m[2]))
            if not 1 <= period.number <= 4:
                raise DomainError(field, "no_such_quarter", f"quarter {m[2]} does not exist")
        elif m := _YEAR.fullmatch(text):
            period = cls(int(m[1]), PeriodKind.YEAR, 1)
        else:
            raise DomainError(field, "invalid_period", f"must be {_shapes(kinds)}")
        if period.kind not in kinds:
            raise DomainError(field, "invalid_period", f"must be {_shapes(kinds)}")
        if period.year < MIN_YEAR:
            message = f"year {period.year} is before {MIN_YEAR}"
            raise DomainError(field, "year_out_of_range", message)
        if period.year > MAX_YEAR:
            message = f"year {period.year} is after {MAX_YEAR}"
            raise DomainError(field, "year_out_of_range", message)
        return period

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        return cls(year, PeriodKind.MONTH, month)

    def __str__(self) -> str:
        if self.kind is PeriodKind.MONTH:
            return f"{self.year}-{self.number:02d}"
        if self.kind is PeriodKind.QUARTER:
            return f"{self.year}Q{self.number}"
        return f"{self.year}"

    @property
    def _month_range(self) -> range:
        if self.kind is PeriodKind.MONTH:
            return range(self.number, self.number + 1)
        if self.kind is PeriodKind.QUARTER:
            return range(3 * self.number - 2, 3 * self.number + 1)
        return range(1, 13)

    @property
    def start(self) -> date:
        return date(self.year, self._month_range[0], 1)

    @property
    def end(self) -> date:
        """The last day of the period."""
        last = self._month_range[-1]
        after = date(self.year + 1, 1, 1) if last == 12 else date(self.year, last + 1, 1)
        return after - timedelta(days=1)

    def months(self) -> list[Period]:
        return [Period.month(self.year, m) for m in self._month_range]


def _shapes(kinds: frozenset[PeriodKind]) -> str:
    shapes = {
        PeriodKind.MONTH: "a month like 2026-10",
        PeriodKind.QUARTER: "a quarter like 2026Q3",
        PeriodKind.YEAR: "a year like 2026",
    }
    return " or ".join(shapes[k] for k in PeriodKind if k in kinds)


def uncovered_months(
    period: Period, paid: Iterable[Period], *, since: date | None = None
) -> list[Period]:
    """The months of ``period`` that no paid period covers, from the month of ``since`` on.

    Employers declare monthly or quarterly, so "has this employer remitted for 2026Q4" means every
    month of it is covered, whichever way: Oct, Nov and Dec separately, or 2026Q4 at once. A union
    founded in November is owed nothing for October (``since``: its founding).
    """
    covered = {m for p in paid for m in p.months()}
    return [m for m in period.months() if m not in covered and (since is None or m.end >= since)]
