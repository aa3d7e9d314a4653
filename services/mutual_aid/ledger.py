"""The fund ledger: double entry, so every yuan that moves has a source and a destination.

Every movement is a balanced ``JournalEntry`` (debits = credits, each line one positive amount).
Balances are derived from the entries, never typed in. The fund's cash can never go below zero:
a posting that would overdraw it is refused whole, which is exactly when the finance backstop has to
be asked instead.

Accounts and the usual entries:

    contribution received   Dr fund_cash         Cr contributions_income
    claim approved          Dr benefits_expense  Cr claims_payable       (the fund owes the member)
    claim paid              Dr claims_payable    Cr fund_cash
    backstop granted        Dr fund_cash         Cr backstop_income
    correction              the reverse of an earlier entry (or any balanced lines, with a reason)

So fund cash = contributions + grants − payouts (± corrections) by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.mutual_aid.errors import DuplicateEntry, FundOverdrawn
from services.mutual_aid.money import Fen, NonNegativeFen, format_yuan
from shared.events.base import EventData
from shared.events.mutual_aid import FundBalanceLow


class Account(StrEnum):
    FUND_CASH = "fund_cash"
    CLAIMS_PAYABLE = "claims_payable"
    CONTRIBUTIONS_INCOME = "contributions_income"
    BACKSTOP_INCOME = "backstop_income"
    BENEFITS_EXPENSE = "benefits_expense"


# Accounts whose balance grows with debits (assets, expenses); the others grow with credits.
DEBIT_NORMAL = frozenset({Account.FUND_CASH, Account.BENEFITS_EXPENSE})


class EntryKind(StrEnum):
    CONTRIBUTION = "contribution"
    BENEFIT_APPROVED = "benefit_approved"
    PAYOUT = "payout"
    BACKSTOP_GRANT = "backstop_grant"
    CORRECTION = "correction"


class Line(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: Account
    debit: NonNegativeFen = 0
    credit: NonNegativeFen = 0

    @model_validator(mode="after")
    def _one_side(self) -> Self:
        if (self.debit > 0) == (self.credit > 0):
            raise ValueError("a line has exactly one positive amount: a debit or a credit")
        return self

    def movement(self) -> Fen:
        """The change to the account's balance, in its normal direction."""
        change = self.debit - self.credit
        return change if self.account in DEBIT_NORMAL else -change


class JournalEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry_id: str = Field(min_length=1)
    posted_on: date
    kind: EntryKind
    # What the entry is about: a receipt number, a claim id, a grant reference, an entry corrected.
    reference: str = Field(min_length=1)
    memo: str = ""
    lines: tuple[Line, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _balanced(self) -> Self:
        debits = sum(line.debit for line in self.lines)
        credits = sum(line.credit for line in self.lines)
        if debits != credits:
            raise ValueError(
                f"debits {format_yuan(debits)} must equal credits {format_yuan(credits)}"
            )
        return self

    def movement(self, account: Account) -> Fen:
        return sum(line.movement() for line in self.lines if line.account == account)

    @classmethod
    def _pair(
        cls,
        entry_id: str,
        kind: EntryKind,
        debit: Account,
        credit: Account,
        amount: Fen,
        on: date,
        reference: str,
        memo: str = "",
    ) -> JournalEntry:
        return cls(
            entry_id=entry_id,
            posted_on=on,
            kind=kind,
            reference=reference,
            memo=memo,
            lines=(Line(account=debit, debit=amount), Line(account=credit, credit=amount)),
        )

    @classmethod
    def contribution(cls, entry_id: str, amount: Fen, on: date, receipt: str) -> JournalEntry:
        return cls._pair(
            entry_id,
            EntryKind.CONTRIBUTION,
            Account.FUND_CASH,
            Account.CONTRIBUTIONS_INCOME,
            amount,
            on,
            receipt,
        )

    @classmethod
    def benefit_approved(cls, entry_id: str, amount: Fen, on: date, claim_id: str) -> JournalEntry:
        return cls._pair(
            entry_id,
            EntryKind.BENEFIT_APPROVED,
            Account.BENEFITS_EXPENSE,
            Account.CLAIMS_PAYABLE,
            amount,
            on,
            claim_id,
        )

    @classmethod
    def payout(
        cls, entry_id: str, amount: Fen, on: date, claim_id: str, payment_reference: str = ""
    ) -> JournalEntry:
        return cls._pair(
            entry_id,
            EntryKind.PAYOUT,
            Account.CLAIMS_PAYABLE,
            Account.FUND_CASH,
            amount,
            on,
            claim_id,
            payment_reference,
        )

    @classmethod
    def backstop_grant(
        cls, entry_id: str, amount: Fen, on: date, request_id: str, grant_reference: str
    ) -> JournalEntry:
        return cls._pair(
            entry_id,
            EntryKind.BACKSTOP_GRANT,
            Account.FUND_CASH,
            Account.BACKSTOP_INCOME,
            amount,
            on,
            request_id,
            grant_reference,
        )

    @classmethod
    def reversal(cls, entry_id: str, of: JournalEntry, on: date, reason: str) -> JournalEntry:
        """Undo an entry by posting its mirror: history is corrected, never rewritten."""
        lines = tuple(
            Line(account=line.account, debit=line.credit, credit=line.debit) for line in of.lines
        )
        return cls(
            entry_id=entry_id,
            posted_on=on,
            kind=EntryKind.CORRECTION,
            reference=of.entry_id,
            memo=reason,
            lines=lines,
        )


def balances(entries: Iterable[JournalEntry]) -> dict[Account, Fen]:
    """Every account's balance, in its normal direction, derived from the entries alone."""
    result = dict.fromkeys(Account, 0)
    for entry in entries:
        for line in entry.lines:
            result[line.account] += line.movement()
    return result


# The federation's rule: a posting that takes the fund below 50,000.00 yuan announces
# FundBalanceLow, so finance hears before the fund runs dry.
LOW_BALANCE: Fen = 5_000_000


class Ledger:
    """The fund's journal. ``post`` is the only way money moves."""

    def __init__(
        self,
        fund_id: str = "fund",
        entries: Iterable[JournalEntry] = (),
        low_balance_threshold: Fen = 0,
    ) -> None:
        self.fund_id = fund_id
        self.low_balance_threshold = low_balance_threshold
        self.entries: list[JournalEntry] = []
        self._ids: set[str] = set()
        self._reversed: set[str] = set()
        self._balances = dict.fromkeys(Account, 0)
        self.events: list[EventData] = []
        for entry in entries:
            self.post(entry)
        self.events.clear()  # replaying history announces nothing

    @classmethod
    def resume(
        cls,
        balances: Mapping[Account, Fen],
        fund_id: str = "fund",
        low_balance_threshold: Fen = 0,
    ) -> Ledger:
        """A ledger that carries on from balances already derived from its entries (the service
        keeps them in the database), so posting does not replay the whole journal. ``entries``
        then holds only what is posted from here on: exactly what is left to store."""
        ledger = cls(fund_id, (), low_balance_threshold)
        ledger._balances.update(balances)
        return ledger

    def balance(self, account: Account) -> Fen:
        return self._balances[account]

    @property
    def fund_balance(self) -> Fen:
        return self._balances[Account.FUND_CASH]

    def totals(self) -> tuple[Fen, Fen]:
        """(all debits, all credits): equal in any ledger this class accepted."""
        debits = sum(line.debit for entry in self.entries for line in entry.lines)
        credits = sum(line.credit for entry in self.entries for line in entry.lines)
        return debits, credits

    def post(self, entry: JournalEntry) -> None:
        if entry.entry_id in self._ids:
            raise DuplicateEntry(
                "entry_id",
                "already_posted",
                "this entry is already posted",
                entry_id=entry.entry_id,
            )
        if entry.kind is EntryKind.CORRECTION and entry.reference in self._reversed:
            raise DuplicateEntry(
                "reference",
                "already_corrected",
                "this entry is already corrected",
                entry_id=entry.reference,
            )
        before = self.fund_balance
        after = before + entry.movement(Account.FUND_CASH)
        if after < 0:
            raise FundOverdrawn(
                "amount",
                "fund_overdrawn",
                f"the fund holds {format_yuan(before)}, "
                f"the entry takes {format_yuan(before - after)}",
                balance_fen=before,
                takes_fen=before - after,
            )
        self.entries.append(entry)
        self._ids.add(entry.entry_id)
        if entry.kind is EntryKind.CORRECTION:
            self._reversed.add(entry.reference)
        for line in entry.lines:
            self._balances[line.account] += line.movement()
        if after < self.low_balance_threshold <= before:
            self.events.append(
                FundBalanceLow(
                    fund_id=self.fund_id,
                    balance_fen=after,
                    threshold_fen=self.low_balance_threshold,
                    on=entry.posted_on,
                )
            )
