"""Reading roster files: encodings, headers, and rows numbered as the file shows them."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from services.membership.identity import mod11_2_check_char
from services.membership.roster import RosterSync
from services.membership.roster_files import read_header, rows_of, write_json_rows
from services.membership.roster_import import failure_of
from shared.errors import DomainError

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "roster-example.csv"


def id_number(n: int) -> str:
    body = f"34160219900315{n:03d}"
    return body + mod11_2_check_char(body)


def csv_file(tmp_path: Path, rows: list[list[str]], encoding: str) -> Path:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    path = tmp_path / "roster.csv"
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def test_a_gbk_file_with_chinese_headers_numbers_rows_as_a_spreadsheet_does(
    tmp_path: Path,
) -> None:
    rows = [
        ["身份证号", "姓名", "手机号码", "人员类别"],
        [id_number(1), "张伟", "13800000001", "农民工"],  # row 2
        [id_number(2), "李娜", "13800000002", ""],  # row 3
        [id_number(3), "王芳", "1234", ""],  # row 4: the bad mobile
    ]
    path = csv_file(tmp_path, rows, "gbk")
    assert read_header(path) == ("gb18030", ["id_number", "name", "mobile", "categories"])
    numbered = list(rows_of(path))
    assert [n for n, _ in numbered] == [2, 3, 4]
    assert numbered[0][1]["name"] == "张伟"
    sync = RosterSync(union_id="u1", complete=False, today=date(2026, 1, 1))
    _, errors = sync.check(numbered)
    assert [(e.row, e.field, e.code) for e in errors] == [(4, "mobile", "not_11_digits")]


def test_blank_lines_keep_their_numbers_and_a_quoted_line_break_is_one_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(
        "\ufeffid_number,name\r\n"  # UTF-8 with a byte-order mark, as Excel saves it
        f"{id_number(1)},张伟\r\n"  # row 2
        ",\r\n"  # row 3: blank
        f'{id_number(2)},"李\n娜"\r\n'  # row 4, over two lines
        f"{id_number(3)},王芳\r\n",  # row 5
        encoding="utf-8",
    )
    assert read_header(path) == ("utf-8-sig", ["id_number", "name"])
    assert [(n, row["id_number"]) for n, row in rows_of(path)] == [
        (2, id_number(1)),
        (4, id_number(2)),
        (5, id_number(3)),
    ]


def test_json_rows_are_numbered_from_one(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    write_json_rows(path, [{"id_number": id_number(1)}, {"id_number": id_number(2)}])
    assert [n for n, _ in rows_of(path)] == [1, 2]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        ("id_number,name\n".encode("utf-16"), "unsupported_encoding"),
        (b"id_number,who\n", "unknown_column"),
        (b"name,mobile\n", "missing_columns"),
    ],
)
def test_unusable_files_are_refused_with_a_code(tmp_path: Path, data: bytes, code: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(data)
    with pytest.raises(DomainError) as refused:
        read_header(path)
    assert (refused.value.field, refused.value.code) == ("file", code)


def test_a_gb18030_only_character_is_read(tmp_path: Path) -> None:
    # 𠀀 is outside GBK: a GB18030 file may hold it in a name.
    path = csv_file(tmp_path, [["姓名", "身份证号"], ["王𠀀", id_number(1)]], "gb18030")
    assert [row["name"] for _, row in rows_of(path)] == ["王𠀀"]


def test_the_example_file_for_hr_departments_reads_cleanly() -> None:
    encoding, columns = read_header(EXAMPLE)
    assert encoding == "utf-8-sig"
    assert set(columns) == {"id_number", "name", "mobile", "categories", "joined_on"}
    sync = RosterSync(union_id="u1", complete=True, today=date(2026, 7, 1))
    good, errors = sync.check(rows_of(EXAMPLE))
    assert errors == [] and len(good) >= 3


@pytest.mark.parametrize(
    ("exc", "field", "code"),
    [
        (
            DomainError("complete", "unreadable_id_numbers", "2 rows"),
            "complete",
            "unreadable_id_numbers",
        ),
        (UnicodeDecodeError("gb18030", b"\x80", 0, 1, "illegal"), "file", "unsupported_encoding"),
        (csv.Error("field larger than field limit"), "file", "unreadable_csv"),
        (RuntimeError("boom"), "job", "internal_error"),
    ],
)
def test_a_failed_job_says_why_in_the_error_contract(exc: Exception, field: str, code: str) -> None:
    failure = failure_of(exc)
    assert (failure.field, failure.code) == (field, code)
    assert failure.message
