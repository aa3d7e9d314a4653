"""A ledger resumed from stored balances posts, refuses and announces exactly as one that replayed
the same entries (the service resumes it under the fund's row lock instead of replaying)."""

from __future__ import annotations

from datetime import date

import pytest

from services.mutual_aid.errors import FundOverdrawn
from services.mutual_aid.ledger import Account, JournalEntry, Ledger
from services.mutual_aid.money import yuan
from shared.events.mutual_aid import FundBalanceLow

DAY = date(2024, 6, 1)


def history() -> list[JournalEntry]:
    return [
        JournalEntry.contribution("e1", yuan("1000"), DAY, "R-1"),
        JournalEntry.benefit_approved("e2", yuan("700"), DAY, "c-1"),
    ]


def test_a_resumed_ledger_matches_a_replayed_one() -> None:
    replayed = Ledger(entries=history(), low_balance_threshold=yuan("500"))
    stored = {account: replayed.balance(account) for account in Account}
    resumed = Ledger.resume(stored, low_balance_threshold=yuan("500"))
    for ledger in (replayed, resumed):
        ledger.post(JournalEntry.payout("e3", yuan("700"), DAY, "c-1", "PAY-1"))
        assert ledger.fund_balance == yuan("300")
        assert ledger.balance(Account.CLAIMS_PAYABLE) == 0
        [low] = ledger.events
        assert isinstance(low, FundBalanceLow) and low.balance_fen == yuan("300")
    assert [e.entry_id for e in resumed.entries] == ["e3"]  # only what is left to store


def test_a_resumed_ledger_refuses_to_overdraw() -> None:
    resumed = Ledger.resume({Account.FUND_CASH: yuan("100"), Account.CLAIMS_PAYABLE: yuan("200")})
    with pytest.raises(FundOverdrawn):
        resumed.post(JournalEntry.payout("e9", yuan("100.01"), DAY, "c-9"))
    assert resumed.entries == [] and resumed.fund_balance == yuan("100")
