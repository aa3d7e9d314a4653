"""HR roster sync: check an employer's staff roster and compare it with the union's members.

A roster is read in chunks (the service loads, per chunk, the members with those ID numbers), so
the rules come in three steps that need only a chunk at a time:

1. ``RosterSync.check(numbered_rows)``: per-row checks, plus duplicates across the whole roster;
2. ``diff_chunk(existing, rows, union_id)``: joins, corrections, transfers, rejoins, unchanged;
3. ``RosterSync.leavers(current_ids)``: at the end, members not on a complete roster.

Rows carry the number the file shows them under (:mod:`services.membership.roster_files`): in a
CSV file the header is row 1, so the first member is row 2, as a spreadsheet numbers them; in a
JSON batch the first row is row 1. Every error and "duplicate of row N" uses that number.

Per-row records are NamedTuples, not pydantic models or frozen dataclasses: this runs on 657,000
rows, and a NamedTuple is built about three times faster than a frozen dataclass. Each error
carries a snake_case code (listed in ``docs/errors/membership.md``) and a message.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from services.membership.domain import (
    MINIMUM_AGE,
    NAME_MAX,
    Category,
    DomainError,
    Member,
    Status,
    age_on,
    declared_categories,
)
from services.membership.identity import (
    Sex,
    id_number_problem,
    mobile_problem,
    normalise_mobile,
    sex_of,
)


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str
    code: str
    message: str


# A numbered row: the row number as the file shows it, and its values by column.
NumberedRow = tuple[int, Mapping[str, object]]
# Text Postgres refuses (NUL) or a spreadsheet cell cannot show: a name never holds them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RosterRow(NamedTuple):
    row: int
    id_number: str
    name: str
    mobile: str | None  # None: the roster gives none, so the member's number is kept
    categories: frozenset[Category] | None  # declared ones; None: the roster gives none
    joined_on: date | None


class MemberSnapshot(NamedTuple):
    """What the diff needs of an existing member, loaded by ID number."""

    member_id: str
    name: str
    mobile: str | None
    categories: frozenset[Category]  # declared ones, never 'woman'
    status: Status
    union_id: str


def snapshot_of(member: Member) -> MemberSnapshot:
    return MemberSnapshot(
        member.id,
        member.name,
        member.mobile,
        member.declared_categories,
        member.status,
        member.union_id,
    )


_CATEGORY_SEPARATORS = str.maketrans(
    {";": ",", "；": ",", "，": ",", "、": ",", "|": ",", " ": ","}
)
_category_cache: dict[tuple[str, Sex], frozenset[Category] | tuple[str, str, str]] = {}


def _categories(text: str, sex: Sex) -> frozenset[Category] | tuple[str, str, str]:
    """Declared categories, or (field, code, message). A roster repeats a handful of values."""
    key = (text, sex)
    found = _category_cache.get(key)
    if found is None:
        try:
            found = declared_categories(
                [c for c in text.translate(_CATEGORY_SEPARATORS).split(",") if c], sex
            )
        except DomainError as e:
            found = (e.field, e.code, e.message)
        if len(_category_cache) < 10_000:  # bounded: junk input must not grow it for ever
            _category_cache[key] = found
    return found


def _text(value: object) -> str | None:
    # Spreadsheets hand over numbers where text was meant (mobile numbers, ID numbers).
    # The hot path tests ``type(value) is str`` inline and only calls this for the rest.
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _read_row(
    row: int, raw: Mapping[str, object], today: date
) -> tuple[str | None, RosterRow | None, list[RowError]]:
    """(ID number if readable, the row if it is all good, its errors)."""
    errors: list[RowError] = []
    value = raw.get("id_number")
    number = value.strip() if type(value) is str else _text(value)
    if not number:
        errors.append(RowError(row, "id_number", "required", "missing"))
        number = None
    else:
        number = number.upper()
        problem = id_number_problem(number, today)
        if problem:
            errors.append(RowError(row, "id_number", *problem))
            number = None

    value = raw.get("name")
    name = value.strip() if type(value) is str else _text(value)
    if not name:
        errors.append(RowError(row, "name", "required", "missing"))
    elif len(name) > NAME_MAX:
        message = f"must be at most {NAME_MAX} characters"
        errors.append(RowError(row, "name", "too_long", message))
    elif _CONTROL.search(name):
        message = "must not contain control characters"
        errors.append(RowError(row, "name", "control_character", message))

    value = raw.get("mobile")
    mobile = (value.strip() if type(value) is str else _text(value)) or None
    if mobile is not None:
        if not mobile.isdigit():
            mobile = normalise_mobile(mobile)
        problem = mobile_problem(mobile)
        if problem:
            errors.append(RowError(row, "mobile", *problem))

    categories: frozenset[Category] | None = None
    given = raw.get("categories")
    if given is not None:
        # Without a readable ID number only unknown categories can be reported.
        sex = sex_of(number) if number else Sex.FEMALE
        if isinstance(given, str):
            found = _categories(given, sex)
        elif isinstance(given, list | tuple | set | frozenset) and all(
            isinstance(c, str) for c in given
        ):
            found = _categories(",".join(given), sex)
        else:
            found = ("categories", "not_text", "must be text or a list of text")
        if isinstance(found, tuple):
            errors.append(RowError(row, *found))
        else:
            categories = found

    value = raw.get("joined_on")
    joined_on = None if value is None else _date(value)
    if isinstance(joined_on, str):
        errors.append(RowError(row, "joined_on", "not_a_date", joined_on))
        joined_on = None
    elif joined_on is not None:
        if joined_on > today:
            message = f"{joined_on.isoformat()} is in the future"
            errors.append(RowError(row, "joined_on", "date_in_future", message))
        # The cheap year test spares the full age sum on almost every row.
        elif number is not None and joined_on.year - int(number[6:10]) <= MINIMUM_AGE:
            age = age_on(date.fromisoformat(number[6:14]), joined_on)
            if age < MINIMUM_AGE:
                message = f"the member was {age}, under {MINIMUM_AGE}"
                errors.append(RowError(row, "joined_on", "under_minimum_age", message))

    if errors or number is None or name is None:
        return number, None, errors
    return number, RosterRow(row, number, name, mobile, categories, joined_on), errors


def _date(value: object) -> date | str | None:
    """The date, None if not given, or a message saying it is not a date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip().replace("/", "-"))
        except ValueError:
            pass
    return f"{value!r} is not a date (YYYY-MM-DD)"


def validate_row(row: int, raw: Mapping[str, object], today: date) -> RosterRow | list[RowError]:
    """Check one roster row on its own (no duplicate check: that needs the whole roster).

    ``raw`` keys: id_number, name, mobile, categories (text split on , ; 、 | or a list),
    joined_on (a date or YYYY-MM-DD text). Missing optional keys mean "not given".
    """
    _, good, errors = _read_row(row, raw, today)
    return good if good is not None else errors


class Match(NamedTuple):
    """A roster row that matched an existing member."""

    member_id: str
    row: RosterRow
    changed_fields: tuple[str, ...]  # of name, mobile, categories: the "matching corrections"


@dataclass(slots=True)
class ChunkDiff:
    joins: list[RosterRow] = field(default_factory=list)
    changes: list[Match] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # member ids
    transfers: list[Match] = field(default_factory=list)  # a member of another union
    rejoins: list[Match] = field(default_factory=list)  # someone who had left


def _changed_fields(member: MemberSnapshot, row: RosterRow) -> tuple[str, ...]:
    changed: list[str] = []
    if row.name != member.name:
        changed.append("name")
    if row.mobile is not None and row.mobile != member.mobile:
        changed.append("mobile")
    if row.categories is not None and row.categories != member.categories:
        changed.append("categories")
    return tuple(changed)


def diff_chunk(
    existing: Mapping[str, MemberSnapshot], rows: Iterable[RosterRow], union_id: str
) -> ChunkDiff:
    """Compare checked rows with the members that have their ID numbers (anywhere in the city).

    Suspension is the union's decision, so a suspended member on the roster stays suspended.
    """
    diff = ChunkDiff()
    for row in rows:
        member = existing.get(row.id_number)
        if member is None:
            diff.joins.append(row)
            continue
        changed = _changed_fields(member, row)
        if member.status is Status.LEFT:
            diff.rejoins.append(Match(member.member_id, row, changed))
        elif member.union_id != union_id:
            diff.transfers.append(Match(member.member_id, row, changed))
        elif changed:
            diff.changes.append(Match(member.member_id, row, changed))
        else:
            diff.unchanged.append(member.member_id)
    return diff


def leavers(current_ids: Iterable[str], seen_ids: Container[str]) -> list[str]:
    """ID numbers of the union's current members that a complete roster does not list."""
    return [number for number in current_ids if number not in seen_ids]


class IdNumbersSeen:
    """The checked ID numbers of a roster so far, each with the row it first appeared on.

    A dict of 657,000 ID numbers cost the importer some 180 MB (the strings, the row numbers,
    and the free space they left scattered between each chunk's short-lived objects). This is
    an open-addressing hash table in two flat arrays instead: 12 bytes an entry, no object each.
    A checked number is 17 digits and the check character they decide, so the digits are the key.
    """

    _SPREAD = 0x9E3779B97F4A7C15  # Fibonacci hashing: ID numbers' digits cluster
    _BITS64 = (1 << 64) - 1

    def __init__(self, capacity_bits: int = 16) -> None:
        self._count = 0
        self._allocate(capacity_bits)

    def first_row(self, number: str, row: int) -> int | None:
        """The row a checked ``number`` first appeared on; None (``row`` kept) if it is new."""
        key = int(number[:17]) + 1  # 0 marks an empty slot
        i = self._slot(key)
        if self._keys[i] == key:
            return self._rows[i]
        self._keys[i], self._rows[i] = key, row
        self._count += 1
        if self._count * 3 > len(self._keys) * 2:  # two thirds full: probes grow long
            self._grow()
        return None

    def __contains__(self, number: object) -> bool:
        if not (isinstance(number, str) and len(number) == 18 and number[:17].isdigit()):
            return False
        key = int(number[:17]) + 1
        return self._keys[self._slot(key)] == key

    def __len__(self) -> int:
        return self._count

    def _slot(self, key: int) -> int:
        """Where ``key`` is, or the empty slot where it belongs."""
        keys, mask = self._keys, self._mask
        i = ((key * self._SPREAD) & self._BITS64) >> self._shift
        while (found := keys[i]) and found != key:
            i = (i + 1) & mask
        return i

    def _allocate(self, bits: int) -> None:
        self._keys = array("q", [0]) * (1 << bits)
        self._rows = array("i", [0]) * (1 << bits)
        self._mask, self._shift = (1 << bits) - 1, 64 - bits

    def _grow(self) -> None:
        keys, rows = self._keys, self._rows
        self._allocate(64 - self._shift + 1)
        for key, row in zip(keys, rows, strict=True):
            if key:
                i = self._slot(key)
                self._keys[i], self._rows[i] = key, row


class RosterSync:
    """One submitted roster, read chunk by chunk: remembers the ID numbers seen so far."""

    def __init__(self, *, union_id: str, complete: bool, today: date) -> None:
        self.union_id = union_id
        self.complete = complete
        self.today = today
        self.seen = IdNumbersSeen()
        self.unreadable_ids = 0

    def check(self, rows: Iterable[NumberedRow]) -> tuple[list[RosterRow], list[RowError]]:
        """Check the next chunk of (row number, values).

        The first row with an ID number wins and later ones are errors: an earlier chunk may
        already be applied. A row with other errors still counts as seen, so a typo in a
        mobile number never makes its member a leaver.
        """
        good: list[RosterRow] = []
        errors: list[RowError] = []
        seen = self.seen
        for row, raw in rows:
            number, checked, row_errors = _read_row(row, raw, self.today)
            if number is None:
                self.unreadable_ids += 1
            elif (first := seen.first_row(number, row)) is not None:
                message = f"duplicate of row {first}"
                row_errors.append(RowError(row, "id_number", "duplicate_id_number", message))
                checked = None
            if checked is not None:
                good.append(checked)
            errors.extend(row_errors)
        return good, errors

    def diff(self, existing: Mapping[str, MemberSnapshot], rows: Iterable[RosterRow]) -> ChunkDiff:
        return diff_chunk(existing, rows, self.union_id)

    def leavers(self, current_ids: Iterable[str]) -> list[str]:
        """Leavers once every chunk is checked: none unless the roster is complete.

        Refused when some ID number could not be read: that row may be a current member with a
        mistyped number, and making someone leave over a typo is worse than waiting for a fix.
        """
        if not self.complete:
            return []
        if not self.seen and not self.unreadable_ids:
            # A header and nothing else is an export gone wrong far more often than a union
            # that lost every member.
            raise DomainError(
                "complete",
                "empty_complete_roster",
                "a complete roster without rows would take every member off",
            )
        if self.unreadable_ids:
            raise DomainError(
                "complete",
                "unreadable_id_numbers",
                f"{self.unreadable_ids} rows have no readable ID number; "
                "correct them before members can be taken off",
            )
        return leavers(current_ids, self.seen)
