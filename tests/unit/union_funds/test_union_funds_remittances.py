"""Union funds rules: periods, coverage, the 2% rate, reading tax's records, matching, subsidies."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.union_funds.domain import Conflict, DomainError, Union
from services.union_funds.periods import SUBSIDY_PERIODS, Period, PeriodKind, uncovered_months
from services.union_funds.remittances import (
    BatchReport,
    RecordError,
    Remittance,
    batch_digest,
    match,
    rate_check,
    read_batch,
    read_record,
    statutory_amount,
)
from services.union_funds.subsidies import check_subsidised, subsidy_period
from shared.events.union_funds import RemittanceMatched, RemittanceUnmatched
from tests.support.people import credit_code

TODAY = date(2026, 11, 20)
CODE = credit_code(42)


def record(**changes: Any) -> dict[str, Any]:
    return {
        "employer_credit_code": CODE,
        "employer_name": "亳州药业有限公司",
        "period": "2026-10",
        "payroll_base_fen": 50_000_000,
        "amount_fen": 1_000_000,
        "paid_on": "2026-11-15",
    } | changes


def without(name: str) -> dict[str, Any]:
    raw = record()
    del raw[name]
    return raw


# Periods --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "start", "end"),
    [
        ("2026-10", PeriodKind.MONTH, date(2026, 10, 1), date(2026, 10, 31)),
        ("2024-02", PeriodKind.MONTH, date(2024, 2, 1), date(2024, 2, 29)),  # a leap year
        ("2026-12", PeriodKind.MONTH, date(2026, 12, 1), date(2026, 12, 31)),
        ("2026Q3", PeriodKind.QUARTER, date(2026, 7, 1), date(2026, 9, 30)),
        (" 2026q4 ", PeriodKind.QUARTER, date(2026, 10, 1), date(2026, 12, 31)),
    ],
)
def test_a_month_or_a_quarter_is_a_remittance_period(
    text: str, kind: PeriodKind, start: date, end: date
) -> None:
    period = Period.parse(text)
    assert (period.kind, period.start, period.end) == (kind, start, end)
    assert Period.parse(str(period)) == period  # the canonical form reads back the same


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("2026-13", "no_such_month", "month 13 does not exist"),
        ("2026-00", "no_such_month", "month 00 does not exist"),
        ("2026Q5", "no_such_quarter", "quarter 5 does not exist"),
        ("2026-1", "invalid_period", "must be a month like 2026-10 or a quarter like 2026Q3"),
        ("2026/10", "invalid_period", "must be a month like 2026-10 or a quarter like 2026Q3"),
        # tax never sends a year
        ("2026", "invalid_period", "must be a month like 2026-10 or a quarter like 2026Q3"),
        # digits of another script are not a period, even if Python reads them as numbers
        ("٢٠٢٦-١٠", "invalid_period", "must be a month like 2026-10 or a quarter like 2026Q3"),
        ("1949-10", "year_out_of_range", "year 1949 is before 1950"),
        # 9999-12 ended on a date Python cannot make: a 500 before years were bounded
        ("9999-12", "year_out_of_range", "year 9999 is after 2199"),
        ("2200Q1", "year_out_of_range", "year 2200 is after 2199"),
    ],
)
def test_other_shapes_are_refused_naming_the_field(text: str, code: str, message: str) -> None:
    with pytest.raises(DomainError) as refused:
        Period.parse(text, field="period")
    assert (refused.value.field, refused.value.code, refused.value.message) == (
        "period",
        code,
        message,
    )


def test_the_last_year_accepted_has_an_end() -> None:
    assert Period.parse("2199-12").end == date(2199, 12, 31)


def test_subsidies_may_also_be_for_a_year() -> None:
    year = subsidy_period("2026")
    assert (year.start, year.end, len(year.months())) == (date(2026, 1, 1), date(2026, 12, 31), 12)
    assert Period.parse("2026-03", kinds=SUBSIDY_PERIODS).kind is PeriodKind.MONTH


def test_a_quarterly_remittance_covers_each_of_its_months() -> None:
    assert uncovered_months(Period.parse("2026-11"), [Period.parse("2026Q4")]) == []


def test_a_quarter_is_covered_only_when_all_three_months_are() -> None:
    q4 = Period.parse("2026Q4")
    october = Period.parse("2026-10")
    assert [str(m) for m in uncovered_months(q4, [october])] == ["2026-11", "2026-12"]
    all_three = [october, Period.parse("2026-11"), Period.parse("2026-12")]
    assert uncovered_months(q4, all_three) == []
    # Another year's October or another quarter covers nothing here.
    elsewhere = [Period.parse("2025-10"), Period.parse("2026Q3")]
    assert len(uncovered_months(q4, elsewhere)) == 3


def test_a_union_founded_during_the_period_owes_from_its_founding_month() -> None:
    q4 = Period.parse("2026Q4")
    owed = uncovered_months(q4, [], since=date(2026, 11, 30))
    assert [str(m) for m in owed] == ["2026-11", "2026-12"]
    assert uncovered_months(q4, [Period.parse("2026-11")], since=date(2026, 11, 30))[0] == (
        Period.parse("2026-12")
    )


# The 2% rate ----------------------------------------------------------------------------------


def test_exactly_two_percent_is_not_flagged() -> None:
    assert rate_check(50_000_000, 1_000_000).flagged is False
    assert statutory_amount(50_000_000) == 1_000_000


@pytest.mark.parametrize("amount", [246, 247])
def test_rounding_either_way_to_the_fen_is_not_a_deviation(amount: int) -> None:
    # 2% of 12,345 fen is 246.9 fen.
    check = rate_check(12_345, amount)
    assert (check.flagged, check.expected_fen, check.deviation_fen) == (False, amount, 0)


@pytest.mark.parametrize(
    ("base", "amount", "expected", "deviation"),
    [
        (12_345, 245, 247, -2),
        (12_345, 248, 247, 1),
        (50_000_000, 500_000, 1_000_000, -500_000),  # paid 1%
        (50_000_000, 1_000_100, 1_000_000, 100),
    ],
)
def test_more_than_rounding_off_the_rate_is_flagged_with_the_expected_amount(
    base: int, amount: int, expected: int, deviation: int
) -> None:
    check = rate_check(base, amount)
    assert (check.flagged, check.expected_fen, check.deviation_fen) == (True, expected, deviation)


# Reading tax's records ------------------------------------------------------------------------


def test_a_good_record_is_read_with_its_credit_code_normalised() -> None:
    read = read_record(0, record(employer_credit_code=f"  {CODE.lower()} "), today=TODAY)
    assert read == Remittance(
        CODE, "亳州药业有限公司", Period.parse("2026-10"), 50_000_000, 1_000_000, date(2026, 11, 15)
    )


@pytest.mark.parametrize(
    ("raw", "field", "code", "reason"),
    [
        (
            record(employer_credit_code=CODE[:-1] + "0"),
            "employer_credit_code",
            "check_character_mismatch",
            "check character",
        ),
        (
            record(employer_credit_code="91341600000000042"),
            "employer_credit_code",
            "wrong_length",
            "18 char",
        ),
        (record(employer_credit_code=42), "employer_credit_code", "not_a_string", "a string"),
        (record(employer_name="  "), "employer_name", "blank", "must not be empty"),
        (record(period="2026-13"), "period", "no_such_month", "month 13 does not exist"),
        (record(period="2026-12"), "period", "period_not_begun", "2026-12 has not begun"),
        (record(payroll_base_fen=0), "payroll_base_fen", "not_positive", "must be positive"),
        (record(amount_fen=1000.5), "amount_fen", "not_whole_fen", "whole number of fen"),
        (record(amount_fen=1000.0), "amount_fen", "not_whole_fen", "whole number of fen"),
        (record(amount_fen="1000"), "amount_fen", "not_whole_fen", "whole number of fen"),
        (record(amount_fen=True), "amount_fen", "not_whole_fen", "whole number of fen"),
        (record(amount_fen=10**16), "amount_fen", "too_large", "at most"),
        (record(paid_on="2026-11-21"), "paid_on", "date_in_future", "in the future"),
        (record(paid_on="2026-02-30"), "paid_on", "invalid_date", "a date like"),
        (record(paid_on="20261115"), "paid_on", "invalid_date", "a date like"),
        (record(record_id=""), "record_id", "blank", "must not be empty"),
        (record(amount=1000), "amount", "unknown_field", "not a field"),
        (without("paid_on"), "paid_on", "required", "is required"),
        (record(period=None), "period", "required", "is required"),
        ("not an object", "record", "not_an_object", "must be an object"),
    ],
)
def test_a_bad_record_is_refused_naming_its_index_and_field(
    raw: Any, field: str, code: str, reason: str
) -> None:
    errors = read_record(7, raw, today=TODAY)
    assert isinstance(errors, list) and len(errors) == 1
    assert (errors[0].index, errors[0].field) == (7, field)
    assert reason in errors[0].message
    assert errors[0].code == code


def test_every_problem_of_a_record_is_reported_at_once() -> None:
    errors = read_record(3, record(period="2026Q9", amount_fen=-5, paid_on=None), today=TODAY)
    assert isinstance(errors, list)
    assert [(e.index, e.field) for e in errors] == [
        (3, "period"),
        (3, "amount_fen"),
        (3, "paid_on"),
    ]


def test_a_record_is_identified_by_tax_record_id_or_by_its_figures() -> None:
    with_id = read_record(0, record(record_id="T-1"), today=TODAY)
    other_figures = read_record(1, record(record_id="T-1", amount_fen=999_999), today=TODAY)
    plain = read_record(2, record(), today=TODAY)
    other_day = read_record(3, record(paid_on="2026-11-16"), today=TODAY)
    assert isinstance(with_id, Remittance) and isinstance(other_figures, Remittance)
    assert isinstance(plain, Remittance) and isinstance(other_day, Remittance)
    assert with_id.identity == other_figures.identity  # a correction of the same record
    assert with_id.identity != plain.identity
    assert plain.identity != other_day.identity  # two payments, not a resend


def test_a_batch_keeps_the_first_of_repeated_records_and_refuses_conflicting_ones() -> None:
    batch = read_batch(
        [
            record(record_id="T-1"),
            record(period="2026-13"),
            record(record_id="T-1"),  # the same record again: a duplicate of 0
            record(record_id="T-1", amount_fen=1),  # same id, other figures: tax must decide
            record(record_id="T-2"),
        ],
        today=TODAY,
    )
    assert [i for i, _ in batch.fresh] == [0, 4]
    assert [(i, first) for i, _, first in batch.repeats] == [(2, 0)]
    assert [(e.index, e.field) for e in batch.errors] == [(1, "period"), (3, "record_id")]


def test_a_batch_is_the_same_batch_whatever_its_key_order_and_any_change_makes_another() -> None:
    shuffled = dict(reversed(list(record().items())))
    assert batch_digest([record()]) == batch_digest([shuffled])
    assert batch_digest([record()]) != batch_digest([record(amount_fen=1_000_001)])
    assert batch_digest([record()]) != batch_digest([record(), record()])
    # Garbage beyond 64 bits is read_record's to refuse, with its index: the digest must not fail.
    assert batch_digest([record(amount_fen=10**20)]) != batch_digest([record()])


# Matching -------------------------------------------------------------------------------------


def remittance(**changes: Any) -> Remittance:
    read = read_record(0, record(**changes), today=TODAY)
    assert isinstance(read, Remittance)
    return read


def test_a_record_whose_employer_has_a_union_is_matched_to_it() -> None:
    event = match(remittance(), {CODE: "u-pharma", credit_code(43): "u-other"})
    assert event == RemittanceMatched(
        credit_code=CODE, union_id="u-pharma", period="2026-10", amount_fen=1_000_000
    )
    assert event.subject() == CODE


def test_a_record_whose_employer_has_no_union_is_unmatched() -> None:
    event = match(remittance(period="2026Q3"), {credit_code(43): "u-other"})
    assert event == RemittanceUnmatched(
        credit_code=CODE, employer_name="亳州药业有限公司", period="2026Q3", amount_fen=1_000_000
    )
    assert event.subject() == CODE


def test_the_report_counts_each_outcome_and_flags_off_rate_amounts() -> None:
    report = BatchReport("b-1", 4)
    report.recorded(0, remittance(), 11, "u-pharma")
    report.recorded(1, remittance(amount_fen=500_000), 12, None)
    report.duplicate(2, remittance(), 11)
    report.reject([RecordError(3, "period", "no_such_month", "month 13 does not exist")])
    answer = report.as_dict()
    assert {k: answer[k] for k in ("received", "recorded", "matched", "unmatched")} == {
        "received": 4,
        "recorded": 2,
        "matched": 1,
        "unmatched": 1,
    }
    assert (answer["duplicate"], answer["rejected"], answer["off_rate"]) == (1, 1, 1)
    assert answer["records"][1]["rate"] == {"expected_fen": 1_000_000, "deviation_fen": -500_000}
    assert "rate" not in answer["records"][0]
    assert answer["errors"] == [
        {
            "index": 3,
            "field": "period",
            "code": "no_such_month",
            "message": "month 13 does not exist",
        }
    ]


# Subsidies ------------------------------------------------------------------------------------


def institution(founded_on: date, dissolved_on: date | None = None) -> Union:
    return Union(
        id="u-school",
        name="亳州一中工会",
        kind="public_institution",
        path=("c",),
        credit_code=credit_code(7),
        employer_name="亳州一中",
        founded_on=founded_on,
        dissolved_on=dissolved_on,
    )


def test_a_union_dissolved_during_or_after_the_period_may_still_be_subsidised_for_it() -> None:
    check_subsidised(institution(date(2010, 1, 1), date(2026, 3, 31)), subsidy_period("2026"))
    check_subsidised(institution(date(2010, 1, 1)), subsidy_period("2026Q1"))


def test_no_subsidy_for_a_period_after_dissolution_or_before_founding() -> None:
    with pytest.raises(Conflict) as dissolved:
        check_subsidised(institution(date(2010, 1, 1), date(2025, 12, 31)), subsidy_period("2026"))
    assert dissolved.value.field == "union_id"
    with pytest.raises(DomainError) as unfounded:
        check_subsidised(institution(date(2026, 4, 1)), subsidy_period("2026Q1"))
    assert unfounded.value.field == "period"
