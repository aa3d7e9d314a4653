"""Union funds (工会经费) that the tax bureau collects: the rules of its remittance records.

Pure: no I/O, no clock (``today`` is an argument). The tax bureau sends remittance records in
batches; each record is read on its own (:func:`read_record`) so one bad record is reported with
its index and field while the good ones are recorded. A record is matched to a union by the
employer's unified social credit code (:func:`match`), and that decision is the event.

Money is integer fen throughout: the statutory rate is 2% of the payroll base, and an amount that
differs from it by more than rounding is flagged (:func:`rate_check`), never refused, because the
tax bureau has already collected it and the federation only reconciles.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from services.union_funds.periods import Period
from shared.credit_code import credit_code_problem, normalise_credit_code
from shared.errors import DomainError
from shared.events.union_funds import RemittanceMatched, RemittanceUnmatched

STATUTORY_RATE_PERCENT = 2
# Far beyond any real payroll (10 trillion yuan) yet far inside bigint: a bigger number is garbage.
MAX_FEN = 10**15
EMPLOYER_NAME_MAX = 100  # as membership's organisation names
RECORD_ID_MAX = 64

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# The 2% rate ---------------------------------------------------------------------------------


def statutory_amount(payroll_base_fen: int) -> int:
    """2% of the payroll base, rounded half up to the fen."""
    return (payroll_base_fen * STATUTORY_RATE_PERCENT + 50) // 100


@dataclass(frozen=True, slots=True)
class RateCheck:
    expected_fen: int
    deviation_fen: int  # amount minus expected: negative when the employer paid too little

    @property
    def flagged(self) -> bool:
        return self.deviation_fen != 0


def rate_check(payroll_base_fen: int, amount_fen: int) -> RateCheck:
    """Compare the amount with 2% of the base; rounding either way to the fen is not a deviation.

    The tax bureau may round 2% of 12,345 fen (246.9) down or up; both 246 and 247 are right.
    """
    exact_hundredths = payroll_base_fen * STATUTORY_RATE_PERCENT  # 2% of the base, x100
    if abs(amount_fen * 100 - exact_hundredths) < 100:
        return RateCheck(amount_fen, 0)
    expected = statutory_amount(payroll_base_fen)
    return RateCheck(expected, amount_fen - expected)


# Records -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Remittance:
    """One employer's union funds for one period, as the tax bureau collected them."""

    credit_code: str
    employer_name: str
    period: Period
    payroll_base_fen: int
    amount_fen: int
    paid_on: date
    record_id: str | None = None

    @property
    def key(self) -> str:
        """Which record this is, among the employer's records for the period.

        Tax's own record id when it sends one; otherwise the amounts and the date, so a record
        sent again in an overlapping batch is recognised while two different payments are not
        merged unless they agree on base, amount and date.
        """
        if self.record_id is not None:
            return f"id:{self.record_id}"
        return f"tuple:{self.payroll_base_fen}:{self.amount_fen}:{self.paid_on.isoformat()}"

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.credit_code, str(self.period), self.key)

    @property
    def rate(self) -> RateCheck:
        return rate_check(self.payroll_base_fen, self.amount_fen)

    def same_payment(self, payroll_base_fen: int, amount_fen: int, paid_on: date) -> bool:
        """Does a record with the same identity say the same thing (a resend, not a correction)?"""
        return (self.payroll_base_fen, self.amount_fen, self.paid_on) == (
            payroll_base_fen,
            amount_fen,
            paid_on,
        )


RECORD_FIELDS = frozenset(
    {
        "employer_credit_code",
        "employer_name",
        "period",
        "payroll_base_fen",
        "amount_fen",
        "paid_on",
        "record_id",
    }
)


@dataclass(frozen=True, slots=True)
class RecordError:
    index: int
    field: str
    code: str
    message: str


def read_record(index: int, raw: Any, *, today: date) -> Remittance | list[RecordError]:
    """A remittance record, or every problem it has (each naming its field)."""
    if not isinstance(raw, Mapping):
        return [RecordError(index, "record", "not_an_object", "must be an object")]
    errors: list[RecordError] = []

    def check(name: str, read: Any) -> Any:
        if name not in raw or raw[name] is None:
            errors.append(RecordError(index, name, "required", "is required"))
            return None
        try:
            return read(raw[name])
        except DomainError as exc:
            errors.append(RecordError(index, name, exc.code, exc.message))
            return None

    errors.extend(
        RecordError(index, str(name), "unknown_field", "is not a field of a remittance record")
        for name in sorted(map(str, raw))
        if name not in RECORD_FIELDS
    )
    code = check("employer_credit_code", _credit_code)
    name = check("employer_name", lambda v: _text(_string(v), EMPLOYER_NAME_MAX))
    period = check("period", lambda v: _remitted_period(_string(v), today))
    base = check("payroll_base_fen", lambda v: _fen(v))
    amount = check("amount_fen", lambda v: _fen(v))
    paid_on = check("paid_on", lambda v: _past_date(v, today))
    record_id = None
    if raw.get("record_id") is not None:
        record_id = check("record_id", lambda v: _text(_string(v), RECORD_ID_MAX))
    if errors:
        return errors
    return Remittance(code, name, period, base, amount, paid_on, record_id)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise DomainError("", "not_a_string", "must be a string")
    return value


def _text(value: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise DomainError("", "blank", "must not be empty")
    if len(text) > limit:
        raise DomainError("", "too_long", f"must be at most {limit} characters")
    return text


def _credit_code(value: Any) -> str:
    code = normalise_credit_code(_string(value))
    problem = credit_code_problem(code)
    if problem:
        raise DomainError("", *problem)
    return code


def _remitted_period(value: str, today: date) -> Period:
    period = Period.parse(value, field="")
    # Tax collects for periods that have begun: a later one is a typo that would skew reports.
    if period.start > today:
        raise DomainError("", "period_not_begun", f"{period} has not begun")
    return period


def _fen(value: Any) -> int:
    # bool is an int in Python but never an amount; floats would invite rounding on money.
    if isinstance(value, bool) or not isinstance(value, int):
        raise DomainError("", "not_whole_fen", "must be a whole number of fen")
    if value <= 0:
        raise DomainError("", "not_positive", "must be positive")
    if value > MAX_FEN:
        raise DomainError("", "too_large", f"must be at most {MAX_FEN}")
    return value


def _past_date(value: Any, today: date) -> date:
    text = _string(value)
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        on = date.fromisoformat(text)
    except ValueError:
        raise DomainError("", "invalid_date", "must be a date like 2026-11-15") from None
    if on > today:
        raise DomainError("", "date_in_future", f"{on.isoformat()} is in the future")
    return on


# Matching ------------------------------------------------------------------------------------


def match(
    remittance: Remittance, holders: Mapping[str, str]
) -> RemittanceMatched | RemittanceUnmatched:
    """The union a remittance belongs to, as its event; ``holders`` maps the credit codes of
    standing (non-dissolved) unions' employers to those unions."""
    union_id = holders.get(remittance.credit_code)
    if union_id is not None:
        return RemittanceMatched(
            credit_code=remittance.credit_code,
            union_id=union_id,
            period=str(remittance.period),
            amount_fen=remittance.amount_fen,
        )
    return RemittanceUnmatched(
        credit_code=remittance.credit_code,
        employer_name=remittance.employer_name,
        period=str(remittance.period),
        amount_fen=remittance.amount_fen,
    )


# A batch -------------------------------------------------------------------------------------


def batch_digest(records: list[Any]) -> str:
    """What makes a batch the same batch: its records, whatever their keys' order."""
    # The standard library's encoder, not orjson: a record may carry an integer beyond 64 bits,
    # which read_record then refuses.
    canonical = json.dumps(records, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Outcome(StrEnum):
    MATCHED = "matched"
    UNMATCHED = "unmatched"
    DUPLICATE = "duplicate"  # already recorded (earlier in this batch or in another): not counted
    REJECTED = "rejected"


@dataclass
class BatchReport:
    """What became of each record of a batch: the answer to tax, stored for a resent batch."""

    batch_id: str
    size: int
    outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)
    errors: list[RecordError] = field(default_factory=list)

    def reject(self, errors: Sequence[RecordError]) -> None:
        self.errors.extend(errors)
        for error in errors:
            self.outcomes[error.index] = {"index": error.index, "outcome": Outcome.REJECTED}

    def recorded(
        self, index: int, remittance: Remittance, remittance_id: int, union: str | None
    ) -> None:
        outcome = Outcome.MATCHED if union is not None else Outcome.UNMATCHED
        self.outcomes[index] = {
            "index": index,
            "outcome": outcome,
            "remittance_id": remittance_id,
            "union_id": union,
        } | _rate_view(remittance)

    def duplicate(self, index: int, remittance: Remittance, remittance_id: int | None) -> None:
        self.outcomes[index] = {
            "index": index,
            "outcome": Outcome.DUPLICATE,
            "remittance_id": remittance_id,
        } | _rate_view(remittance)

    def as_dict(self) -> dict[str, Any]:
        records = [self.outcomes[i] for i in sorted(self.outcomes)]
        counts = {o.value: 0 for o in Outcome}
        for record in records:
            counts[record["outcome"]] += 1
        return {
            "batch_id": self.batch_id,
            "received": self.size,
            "recorded": counts[Outcome.MATCHED] + counts[Outcome.UNMATCHED],
            **counts,
            "off_rate": sum(1 for r in records if "rate" in r),
            "records": records,
            "errors": [
                {"index": e.index, "field": e.field, "code": e.code, "message": e.message}
                for e in self.errors
            ],
        }


def _rate_view(remittance: Remittance) -> dict[str, Any]:
    check = remittance.rate
    if not check.flagged:
        return {}
    return {"rate": {"expected_fen": check.expected_fen, "deviation_fen": check.deviation_fen}}


@dataclass
class ReadBatch:
    """A batch's records after reading: the good ones (first of each identity), the rest."""

    fresh: list[tuple[int, Remittance]]
    # (index, remittance, index of the earlier record of this batch with the same identity)
    repeats: list[tuple[int, Remittance, int]]
    errors: list[RecordError]


def read_batch(raws: Sequence[Any], *, today: date) -> ReadBatch:
    """Read every record; a record repeating an earlier one of the same batch is a duplicate when
    it says the same, an error when its amounts differ (tax must say which one is right)."""
    fresh: list[tuple[int, Remittance]] = []
    repeats: list[tuple[int, Remittance, int]] = []
    errors: list[RecordError] = []
    first: dict[tuple[str, str, str], tuple[int, Remittance]] = {}
    for index, raw in enumerate(raws):
        read = read_record(index, raw, today=today)
        if isinstance(read, list):
            errors.extend(read)
            continue
        earlier = first.get(read.identity)
        if earlier is None:
            first[read.identity] = (index, read)
            fresh.append((index, read))
        elif earlier[1].same_payment(read.payroll_base_fen, read.amount_fen, read.paid_on):
            repeats.append((index, read, earlier[0]))
        else:
            message = f"repeats record {earlier[0]} of this batch with other amounts or date"
            errors.append(RecordError(index, "record_id", "conflicting_repeat", message))
    return ReadBatch(fresh, repeats, errors)
