from __future__ import annotations

from datetime import date
from itertools import count

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.mutual_aid.errors import DuplicateEntry, FundOverdrawn
from services.mutual_aid.ledger import (
    Account,
    EntryKind,
    JournalEntry,
    Ledger,
    Line,
    balances,
)
from services.mutual_aid.money import yuan
from shared.events.mutual_aid import FundBalanceLow

DAY = date(2024, 6, 1)


def test_a_contribution_then_an_approved_claim_paid() -> None:
    ledger = Ledger()
    ledger.post(JournalEntry.contribution("e1", yuan("360"), DAY, "R-1"))
    ledger.post(JournalEntry.benefit_approved("e2", yuan("250"), DAY, "c-1"))
    assert ledger.fund_balance == yuan("360")
    assert ledger.balance(Account.CLAIMS_PAYABLE) == yuan("250")
    ledger.post(JournalEntry.payout("e3", yuan("250"), DAY, "c-1", "BANK-1"))
    assert ledger.fund_balance == yuan("110")
    assert ledger.balance(Account.CLAIMS_PAYABLE) == 0
    assert ledger.balance(Account.BENEFITS_EXPENSE) == yuan("250")
    assert ledger.balance(Account.CONTRIBUTIONS_INCOME) == yuan("360")
    assert ledger.totals() == (yuan("860"), yuan("860"))


def test_a_payout_larger_than_the_fund_is_refused_whole() -> None:
    ledger = Ledger(entries=[JournalEntry.contribution("e1", yuan("100"), DAY, "R-1")])
    with pytest.raises(FundOverdrawn) as refused:
        ledger.post(JournalEntry.payout("e2", yuan("100.01"), DAY, "c-1"))
    assert refused.value.extra["balance_fen"] == yuan("100")
    assert ledger.fund_balance == yuan("100")
    assert len(ledger.entries) == 1


def test_entries_must_balance_and_amounts_be_positive() -> None:
    with pytest.raises(ValidationError, match="must equal credits"):
        JournalEntry(
            entry_id="e1",
            posted_on=DAY,
            kind=EntryKind.CORRECTION,
            reference="x",
            lines=(
                Line(account=Account.FUND_CASH, debit=100),
                Line(account=Account.CONTRIBUTIONS_INCOME, credit=99),
            ),
        )
    with pytest.raises(ValidationError, match="exactly one positive"):
        Line(account=Account.FUND_CASH)
    with pytest.raises(ValidationError, match="exactly one positive"):
        Line(account=Account.FUND_CASH, debit=1, credit=1)
    with pytest.raises(ValidationError):
        Line(account=Account.FUND_CASH, debit=-5)
    with pytest.raises(ValidationError):
        JournalEntry.contribution("e1", 0, DAY, "R-1")
    with pytest.raises(ValidationError):  # one line is not double entry
        JournalEntry(
            entry_id="e1",
            posted_on=DAY,
            kind=EntryKind.CORRECTION,
            reference="x",
            lines=(Line(account=Account.FUND_CASH, debit=100),),
        )


def test_an_entry_is_posted_once_and_corrected_once() -> None:
    ledger = Ledger()
    wrong = JournalEntry.contribution("e1", yuan("500"), DAY, "R-1")
    ledger.post(wrong)
    with pytest.raises(DuplicateEntry):
        ledger.post(wrong)
    ledger.post(JournalEntry.reversal("e2", wrong, DAY, "receipt entered twice"))
    assert ledger.fund_balance == 0
    assert ledger.balance(Account.CONTRIBUTIONS_INCOME) == 0
    with pytest.raises(DuplicateEntry):
        ledger.post(JournalEntry.reversal("e3", wrong, DAY, "again"))


def test_a_correction_cannot_overdraw_either() -> None:
    ledger = Ledger()
    received = JournalEntry.contribution("e1", yuan("500"), DAY, "R-1")
    ledger.post(received)
    ledger.post(JournalEntry.benefit_approved("e2", yuan("400"), DAY, "c-1"))
    ledger.post(JournalEntry.payout("e3", yuan("400"), DAY, "c-1"))
    with pytest.raises(FundOverdrawn):
        ledger.post(JournalEntry.reversal("e4", received, DAY, "bounced"))


def test_falling_below_the_threshold_is_announced_once() -> None:
    ledger = Ledger("fund-2024", low_balance_threshold=yuan("1000"))
    ledger.post(JournalEntry.contribution("e1", yuan("1500"), DAY, "R-1"))
    ledger.post(JournalEntry.payout("e2", yuan("600"), DAY, "c-1"))
    ledger.post(JournalEntry.payout("e3", yuan("100"), DAY, "c-2"))  # still low: no new event
    [low] = ledger.events
    assert isinstance(low, FundBalanceLow)
    assert (low.balance_fen, low.threshold_fen, low.subject()) == (
        yuan("900"),
        yuan("1000"),
        "fund-2024",
    )


def test_replaying_history_announces_nothing() -> None:
    history = [
        JournalEntry.contribution("e1", yuan("1500"), DAY, "R-1"),
        JournalEntry.payout("e2", yuan("600"), DAY, "c-1"),
    ]
    ledger = Ledger("fund", history, low_balance_threshold=yuan("1000"))
    assert ledger.events == []
    assert ledger.fund_balance == yuan("900")


# Any sequence of postings: (kind, amount). Payouts may be larger than the fund: those must raise.
operations = st.lists(
    st.tuples(
        st.sampled_from(["contribution", "grant", "approve", "payout", "reverse"]),
        st.integers(min_value=1, max_value=yuan("100000")),
    ),
    max_size=60,
)


@given(operations)
def test_any_postings_keep_the_books_balanced_and_the_fund_never_negative(
    ops: list[tuple[str, int]],
) -> None:
    ledger = Ledger()
    ids = (f"e{n}" for n in count())
    contributions = grants = payouts = 0
    for kind, amount in ops:
        before = ledger.fund_balance
        if kind == "contribution":
            ledger.post(JournalEntry.contribution(next(ids), amount, DAY, "R"))
            contributions += amount
        elif kind == "grant":
            ledger.post(JournalEntry.backstop_grant(next(ids), amount, DAY, "req", "FIN"))
            grants += amount
        elif kind == "approve":
            ledger.post(JournalEntry.benefit_approved(next(ids), amount, DAY, "c"))
        elif kind == "payout" and amount > before:
            with pytest.raises(FundOverdrawn):
                ledger.post(JournalEntry.payout(next(ids), amount, DAY, "c"))
            assert ledger.fund_balance == before
        elif kind == "payout":
            ledger.post(JournalEntry.payout(next(ids), amount, DAY, "c"))
            payouts += amount
        elif kind == "reverse":
            # undo the latest contribution not yet undone, if the fund still holds it
            undone = {e.reference for e in ledger.entries if e.kind is EntryKind.CORRECTION}
            candidates = [
                e
                for e in ledger.entries
                if e.kind is EntryKind.CONTRIBUTION and e.entry_id not in undone
            ]
            if not candidates:
                continue
            last = candidates[-1]
            reversal = JournalEntry.reversal(next(ids), last, DAY, "wrong receipt")
            if last.movement(Account.FUND_CASH) > before:
                with pytest.raises(FundOverdrawn):
                    ledger.post(reversal)
            else:
                ledger.post(reversal)
                contributions -= last.movement(Account.FUND_CASH)

        debits, credits = ledger.totals()
        assert debits == credits
        assert ledger.fund_balance == contributions + grants - payouts
        assert ledger.fund_balance >= 0
        # the balances are derived from the entries alone
        derived = balances(ledger.entries)
        assert derived == {account: ledger.balance(account) for account in Account}
        # assets + expenses = liabilities + income
        assert (
            derived[Account.FUND_CASH] + derived[Account.BENEFITS_EXPENSE]
            == derived[Account.CLAIMS_PAYABLE]
            + derived[Account.CONTRIBUTIONS_INCOME]
            + derived[Account.BACKSTOP_INCOME]
        )
