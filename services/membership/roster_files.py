"""Reading submitted rosters: CSV from HR systems (UTF-8, GBK or GB18030) or JSON batches, as a
stream.

A roster is spooled to disk when it arrives, its encoding and header checked at once (a wrong one
is refused before any job starts), and then read row by row, so a 657,000-row file never sits in
memory whole.

Each row comes with the number the file shows it under, so an error names the row HR sees: in a
CSV file the header is row 1 and the first member row 2, blank lines keep their numbers, and a
quoted value running over several lines is one row (as in a spreadsheet). In a JSON batch the
first row is row 1.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path

import orjson

from services.membership.roster import NumberedRow
from shared.errors import DomainError

# Header names as Windows-based HR systems export them, in English or Chinese.
COLUMNS: dict[str, tuple[str, ...]] = {
    "id_number": ("id_number", "身份证号", "身份证号码", "公民身份号码"),
    "name": ("name", "姓名"),
    "mobile": ("mobile", "手机", "手机号", "手机号码", "联系电话"),
    "categories": ("categories", "类别", "人员类别"),
    "joined_on": ("joined_on", "入会日期", "入会时间"),
}
REQUIRED = ("id_number", "name")
# Body limits of the two ways in (services.membership.main). A city-wide roster of 657,000
# members is about 31 MB as CSV (47 bytes a row: ID number, name, mobile, category) and some
# 40 MB with a Chinese category and a join date in UTF-8; GBK is smaller. 64 MiB leaves room for
# about 100 bytes a row. A JSON batch holds at most 100,000 rows: 14 MB with non-ASCII escaped
# (\uXXXX, most encoders' default); 24 MiB leaves room for longer names and indentation.
CSV_UPLOAD_LIMIT = 64 * 1024 * 1024
JSON_BATCH_LIMIT = 24 * 1024 * 1024
_ALIASES = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}
_SNIFF_BYTES = 64 * 1024
# UTF-8 with or without a byte-order mark; GB18030 reads every GBK (and GB2312) file and more.
ENCODINGS = ("utf-8-sig", "gb18030")


def detect_encoding(head: bytes) -> str:
    for encoding in ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            decoder.decode(head, final=False)  # a character cut at the sniff's end is fine
            return encoding
        except UnicodeDecodeError:
            continue
    raise DomainError(
        "file",
        "unsupported_encoding",
        "not UTF-8 or GBK text: save the roster as CSV in UTF-8 or GBK",
    )


def read_header(path: Path) -> tuple[str, list[str]]:
    """The file's encoding and its columns (by our names); refuses a header we cannot use."""
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head.strip():
        raise DomainError("file", "empty_file", "the roster is empty")
    encoding = detect_encoding(head)
    first_line = head.decode(encoding, errors="ignore").splitlines()[0]
    names = next(csv.reader([first_line]))
    columns: list[str] = []
    for name in names:
        column = _ALIASES.get(name.strip().lower()) or _ALIASES.get(name.strip())
        if column is None:
            expected = ", ".join(COLUMNS)
            message = f"unknown column {name!r} in the header; expected {expected}"
            raise DomainError("file", "unknown_column", message)
        columns.append(column)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise DomainError("file", "missing_columns", f"the header lacks {', '.join(missing)}")
    return encoding, columns


def csv_rows(path: Path, encoding: str, columns: list[str]) -> Iterator[NumberedRow]:
    """Rows after the header, numbered from 2, as dicts by our column names; blank lines are
    skipped (and still counted)."""
    with path.open("r", encoding=encoding, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            yield number, dict(zip(columns, values, strict=False))


def write_json_rows(path: Path, rows: list[dict[str, str | list[str] | None]]) -> None:
    with path.open("wb") as f:
        for row in rows:
            f.write(orjson.dumps(row) + b"\n")


def json_rows(path: Path) -> Iterator[NumberedRow]:
    """The batch's rows, numbered from 1."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            yield number, orjson.loads(line)


def rows_of(path: Path) -> Iterator[NumberedRow]:
    """Rows of a spooled roster, whichever form it came in."""
    if path.suffix == ".jsonl":
        yield from json_rows(path)
        return
    encoding, columns = read_header(path)
    yield from csv_rows(path, encoding, columns)
