"""What the union funds service answers. Money is whole fen (分, a hundredth of a yuan)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import asyncpg
from pydantic import BaseModel, Field

from services.union_funds.remittances import Outcome

Fen = Annotated[int, Field(description="Whole fen (分): 100 fen are one yuan")]
PeriodText = Annotated[
    str, Field(description='A month "2026-10", a quarter "2026Q4" or a year "2026"')
]


class RateView(BaseModel):
    """An amount more than rounding away from 2% of the payroll base: flagged, not refused."""

    expected_fen: Fen
    deviation_fen: Fen = Field(description="Amount minus expected: negative when paid too little")


class RecordOutcome(BaseModel):
    index: int = Field(description="The record's position in the batch, from 0")
    outcome: Outcome
    remittance_id: int | None = Field(None, description="The recorded remittance")
    union_id: str | None = Field(None, description="The union it was matched to; None: unmatched")
    rate: RateView | None = Field(None, description="Present when the amount is off the 2% rate")


class RecordErrorView(BaseModel):
    index: int = Field(description="The record's position in the batch, from 0")
    field: str = Field(examples=["period"])
    code: str = Field(examples=["no_such_month"])
    message: str = Field(examples=["month 13 does not exist"])


class BatchReportView(BaseModel):
    """What became of each record. A resent batch (same id, same records) gets this again."""

    batch_id: str
    received: int
    recorded: int = Field(description="matched + unmatched: new records now recorded")
    matched: int
    unmatched: int = Field(description="Recorded without a union: the employer has none yet")
    duplicate: int = Field(description="Recorded before (an overlapping batch): not counted")
    rejected: int
    off_rate: int = Field(description="Records whose amount is off the 2% rate")
    records: list[RecordOutcome]
    errors: list[RecordErrorView]


class RemittanceView(BaseModel):
    id: int
    credit_code: str
    employer_name: str
    period: PeriodText
    payroll_base_fen: Fen
    amount_fen: Fen
    expected_fen: Fen = Field(description="2% of the payroll base")
    deviation_fen: Fen = Field(description="Amount minus expected")
    paid_on: date
    record_id: str | None = Field(description="The tax bureau's own record id, if it sent one")
    matched_union_id: str | None = Field(description="The union matched when the record arrived")
    batch_id: str


def remittance_view(r: asyncpg.Record) -> RemittanceView:
    return RemittanceView(
        id=r["id"],
        credit_code=r["credit_code"],
        employer_name=r["employer_name"],
        period=r["period"],
        payroll_base_fen=r["payroll_base_fen"],
        amount_fen=r["amount_fen"],
        expected_fen=r["expected_fen"],
        deviation_fen=r["amount_fen"] - r["expected_fen"],
        paid_on=r["paid_on"],
        record_id=r["record_id"],
        matched_union_id=r["union_id"],
        batch_id=r["batch_id"],
    )


class RemittanceList(BaseModel):
    union_id: str | None
    credit_code: str | None = Field(description="The employer's; None for a union without one")
    period: PeriodText | None
    items: list[RemittanceView]


class Arrear(BaseModel):
    union_id: str
    name: str
    credit_code: str
    employer_name: str | None = Field(
        description="As membership recorded it; None for a union announced before its events"
        " carried the employer's name"
    )
    missing_months: list[str] = Field(examples=[["2026-11", "2026-12"]])


class ArrearsReport(BaseModel):
    period: PeriodText
    under: str | None
    unions_checked: int
    items: list[Arrear]


class UnorganisedEmployer(BaseModel):
    credit_code: str
    employer_name: str = Field(description="As on its latest record")
    periods: list[str]
    records: int
    payroll_base_fen: Fen
    amount_fen: Fen


class UnorganisedReport(BaseModel):
    period: PeriodText
    items: list[UnorganisedEmployer]


class SubsidyView(BaseModel):
    reference: str
    union_id: str
    amount_fen: Fen
    period: PeriodText
    year: int
    members_covered: int
    recorded_at: datetime


def subsidy_view(r: Any) -> SubsidyView:
    return SubsidyView(
        reference=r["reference"],
        union_id=r["union_id"],
        amount_fen=r["amount_fen"],
        period=r["period"],
        year=r["year"],
        members_covered=r["members_covered"],
        recorded_at=r["recorded_at"],
    )


class SubsidyTotal(BaseModel):
    union_id: str
    name: str
    year: int
    amount_fen: Fen
    members_covered: int = Field(description="The year's largest period's: periods do not add up")
    count: int = Field(description="Subsidies recorded")


class SubsidyTotals(BaseModel):
    year: int | None
    under: str | None
    items: list[SubsidyTotal]
