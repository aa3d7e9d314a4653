"""How the API answers about the fund, its journal and the finance backstop.

Amounts are integer fen (``*_fen``), the main ones also as ``*_yuan`` text for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from pydantic import AliasChoices, Field

from services.mutual_aid.backstop import BackstopRequest, BackstopStatus
from services.mutual_aid.ledger import Account, EntryKind
from services.mutual_aid.money import Fen, format_yuan
from services.mutual_aid.views import Money, Yuan
from shared.views import View


class Balances(View):
    """One amount per account of the fund's ledger, each in its normal direction."""

    fund_cash_fen: Money = Field(description="what the fund holds; never below zero")
    claims_payable_fen: Money = Field(description="approved benefits not yet paid")
    contributions_income_fen: Money
    backstop_income_fen: Money = Field(description="what finance granted")
    benefits_expense_fen: Money = Field(description="benefits approved")

    @classmethod
    def of(cls, amounts: Mapping[Account, Fen]) -> Balances:
        return cls(**{f"{a.value}_fen": amounts.get(a, 0) for a in Account})


class FundView(View):
    balances: Balances
    fund_cash_fen: Money
    fund_cash_yuan: Yuan
    balances_match_journal: bool = Field(
        description="the kept balances equal the sums of the journal lines (they always should)"
    )


class JournalLineView(View):
    account: Account
    debit_fen: Money
    credit_fen: Money


class JournalEntryView(View):
    seq: int = Field(description="posting order")
    entry_id: str = Field(examples=["contribution:R-2026-000123"])
    posted_on: date
    kind: EntryKind
    reference: str = Field(description="a receipt, claim id, request id or corrected entry")
    memo: str
    posted_at: datetime
    lines: list[JournalLineView] = Field(description="debits equal credits")


class GrantView(View):
    reference: str = Field(examples=["CZ-2026-0042"])
    amount_fen: Money = Field(validation_alias=AliasChoices("amount_fen", "amount"))
    granted_on: date


class BackstopRequestView(View):
    request_id: str = Field(examples=["BR-2026-0001"])
    status: BackstopStatus
    amount_fen: Money = Field(description="the shortfall asked for")
    amount_yuan: Yuan
    granted_fen: Money
    granted_yuan: Yuan
    withdrawn_fen: Money = Field(description="no longer needed: contributions paid those claims")
    withdrawn_yuan: Yuan
    outstanding_fen: Money
    outstanding_yuan: Yuan
    claim_ids: list[str]
    claim_count: int
    fund_balance_fen: Money = Field(
        description="the fund's balance when asked, after paying what it could"
    )
    requested_on: date
    grants: list[GrantView]
    reminders: list[date]
    escalated_on: date | None

    @classmethod
    def of(cls, r: BackstopRequest) -> BackstopRequestView:
        return cls(
            request_id=r.request_id,
            status=r.status,
            amount_fen=r.amount,
            amount_yuan=format_yuan(r.amount),
            granted_fen=r.granted,
            granted_yuan=format_yuan(r.granted),
            withdrawn_fen=r.withdrawn,
            withdrawn_yuan=format_yuan(r.withdrawn),
            outstanding_fen=r.outstanding,
            outstanding_yuan=format_yuan(r.outstanding),
            claim_ids=list(r.claim_ids),
            claim_count=len(r.claim_ids),
            fund_balance_fen=r.fund_balance,
            requested_on=r.requested_on,
            grants=[GrantView.model_validate(g) for g in r.grants],
            reminders=r.reminders,
            escalated_on=r.escalated_on,
        )
