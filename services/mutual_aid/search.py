"""What every list of mutual aid asks for besides its own filters, from the query to the SQL: the
days a list covers (:class:`Period`) and the page (:class:`Page`).

A repository's search places each one's SQL where its arguments fall in the statement, e.g.
``f"... WHERE ($1::int IS NULL OR year = $1) AND {days.sql('posted_on', 2)} {page.sql(4)}"`` with
``year, *days.args, *page.args``: one way to write an open-ended day range and a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Period:
    """Days from ``since`` to ``until``, both included; either end may be open."""

    since: date | None = None
    until: date | None = None

    def sql(self, column: str, first: int) -> str:
        """Keeps the rows whose ``column`` (a date) lies in the period; its arguments are
        ``$first`` and ``$first + 1``."""
        after, before = f"${first}", f"${first + 1}"
        return (
            f"({after}::date IS NULL OR {column} >= {after})"
            f" AND ({before}::date IS NULL OR {column} <= {before})"
        )

    @property
    def args(self) -> tuple[date | None, date | None]:
        return self.since, self.until

    def holds(self, day: date) -> bool:
        after = self.since is None or day >= self.since
        return after and (self.until is None or day <= self.until)


@dataclass(frozen=True)
class Page:
    """At most ``limit`` rows, after skipping ``offset``; a page shorter than ``limit`` is the
    last."""

    limit: int = 100
    offset: int = 0

    def sql(self, first: int) -> str:
        """The statement's ending; its arguments are ``$first`` and ``$first + 1``."""
        return f"LIMIT ${first} OFFSET ${first + 1}"

    @property
    def args(self) -> tuple[int, int]:
        return self.limit, self.offset
