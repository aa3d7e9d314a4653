"""The finance backstop: pay in approval order while the fund allows, ask finance for exactly the
shortfall, never twice, and follow the request until it is granted."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.mutual_aid.backstop import (
    BackstopRequest,
    BackstopStatus,
    FollowUp,
    FollowUpPolicy,
    PayableClaim,
    decide_payouts,
    open_request_for,
    withdraw_surplus,
)
from services.mutual_aid.errors import DuplicateEntry, GrantRefused
from services.mutual_aid.ledger import JournalEntry, Ledger
from services.mutual_aid.money import yuan
from shared.errors import DomainError
from shared.events.mutual_aid import (
    BackstopEscalated,
    BackstopGranted,
    BackstopReminded,
    BackstopRequested,
    BackstopWithdrawn,
)

START = datetime(2024, 6, 1, 9)
DAY = date(2024, 7, 1)


def approved(n: int, amount: int) -> PayableClaim:
    return PayableClaim(f"c-{n:03d}", f"m-{n:03d}", amount, START + timedelta(minutes=n))


def two_hundred_claims() -> list[PayableClaim]:
    return [approved(n, yuan("1000")) for n in range(200)]


def test_200_claims_against_a_small_fund() -> None:
    # 200 claims of 1,000.00; the fund holds 150,500.00
    # → claims 0..149 paid now (150,000.00), 500.00 left in the fund
    # → 50 claims unpaid = 50,000.00; the fund's 500.00 goes towards them: ask for 49,500.00
    decision = decide_payouts(yuan("150500"), two_hundred_claims())
    assert [c.claim_id for c in decision.pay_now] == [f"c-{n:03d}" for n in range(150)]
    assert decision.balance_after_payouts == yuan("500")
    assert decision.shortfall == yuan("49500")
    assert [c.claim_id for c in decision.to_request] == [f"c-{n:03d}" for n in range(150, 200)]
    assert decision.waiting == ()

    request = decision.request("req-1", DAY)
    assert request is not None
    [asked] = request.events
    assert isinstance(asked, BackstopRequested)
    assert asked.amount_fen == yuan("49500")
    assert asked.fund_balance_fen == yuan("500")
    assert len(asked.claim_ids) == 50
    assert asked.subject() == "req-1"


def test_a_second_evaluation_asks_for_nothing_new() -> None:
    claims = two_hundred_claims()
    first = decide_payouts(yuan("150500"), claims)
    request = first.request("req-1", DAY)
    assert request is not None
    unpaid = list(first.unpaid)
    again = decide_payouts(first.balance_after_payouts, unpaid, [request])
    assert again.pay_now == ()
    assert again.shortfall == 0
    assert again.request("req-2", DAY) is None
    assert [c.claim_id for c in again.waiting] == [c.claim_id for c in unpaid]

    # a claim approved later is asked for on its own, and only for what it needs
    late = approved(500, yuan("1000"))
    third = decide_payouts(first.balance_after_payouts, [*unpaid, late], [request])
    assert third.shortfall == yuan("1000")
    assert [c.claim_id for c in third.to_request] == ["c-500"]


def test_claims_are_paid_strictly_in_approval_order() -> None:
    # the fund holds 1,500.00: claim 0 (1,000.00) fits; claim 1 (800.00) does not fit in the
    # 500.00 left, so claim 2 (100.00) waits behind it even though it would fit
    claims = [approved(2, yuan("100")), approved(0, yuan("1000")), approved(1, yuan("800"))]
    decision = decide_payouts(yuan("1500"), claims)
    assert [c.claim_id for c in decision.pay_now] == ["c-000"]
    # 900.00 unpaid − 500.00 left = 400.00
    assert decision.shortfall == yuan("400")
    assert [c.claim_id for c in decision.unpaid] == ["c-001", "c-002"]


def test_a_fund_that_can_pay_everything_asks_nothing() -> None:
    decision = decide_payouts(yuan("10000"), [approved(0, yuan("1000")), approved(1, 0)])
    assert len(decision.pay_now) == 2
    assert decision.request("req-1", DAY) is None


def test_partial_grant_leaves_the_rest_outstanding_and_pays_what_it_can() -> None:
    # the whole loop a handler runs: fund, decide, pay, ask, grant, decide again
    ledger = Ledger(entries=[JournalEntry.contribution("e-in", yuan("150500"), DAY, "R-1")])
    first = decide_payouts(ledger.fund_balance, two_hundred_claims())
    for claim in first.pay_now:
        ledger.post(JournalEntry.payout(f"pay-{claim.claim_id}", claim.amount, DAY, claim.claim_id))
    request = first.request("req-1", DAY)
    assert request is not None and ledger.fund_balance == yuan("500")

    grant = request.grant("req-1", yuan("20000"), "CZ-2024-001", DAY + timedelta(days=3))
    ledger.post(JournalEntry.backstop_grant("e-g1", grant.amount, grant.granted_on, "req-1", "CZ"))
    assert request.status is BackstopStatus.PARTIALLY_GRANTED
    assert request.outstanding == yuan("29500")
    granted = request.events[-1]
    assert isinstance(granted, BackstopGranted)
    assert (granted.amount_fen, granted.outstanding_fen) == (yuan("20000"), yuan("29500"))

    # 20,500.00 in the fund pays 20 more claims; the 29,500.00 still outstanding covers the rest
    second = decide_payouts(ledger.fund_balance, first.unpaid, [request])
    assert len(second.pay_now) == 20
    assert second.shortfall == 0

    request.grant("req-1", yuan("29500"), "CZ-2024-002", DAY + timedelta(days=9))
    assert request.status is BackstopStatus.GRANTED and not request.is_open
    # everything granted: 500 + 49,500 = 50,000.00 pays all 50 remaining claims
    assert decide_payouts(yuan("50000"), first.unpaid, [request]).unpaid == ()


def test_a_grant_that_matches_no_open_request_is_refused() -> None:
    request = BackstopRequest.open("req-1", yuan("1000"), ["c-1"], 0, DAY)
    with pytest.raises(GrantRefused) as wrong_id:
        request.grant("req-9", yuan("100"), "CZ-1", DAY)
    assert wrong_id.value.field == "request_id"
    with pytest.raises(GrantRefused) as too_much:
        request.grant("req-1", yuan("1000.01"), "CZ-1", DAY)
    assert too_much.value.field == "amount"
    with pytest.raises(GrantRefused):
        request.grant("req-1", 0, "CZ-1", DAY)
    request.grant("req-1", yuan("400"), "CZ-1", DAY)
    with pytest.raises(DuplicateEntry):
        request.grant("req-1", yuan("400"), "CZ-1", DAY)
    request.grant("req-1", yuan("600"), "CZ-2", DAY)
    with pytest.raises(GrantRefused):  # nothing is open any more
        request.grant("req-1", 1, "CZ-3", DAY)
    assert request.granted == yuan("1000")

    with pytest.raises(GrantRefused):
        open_request_for([request], "req-1")
    other = BackstopRequest.open("req-2", 5, ["c-2"], 0, DAY)
    assert open_request_for([request, other], "req-2") is other
    with pytest.raises(GrantRefused):
        open_request_for([request, other], "req-3")


def test_reminders_then_escalation_on_the_clock() -> None:
    policy = FollowUpPolicy(remind_after_days=7, escalate_after_days=30)
    request = BackstopRequest.open("req-1", yuan("1000"), ["c-1"], 0, DAY)
    request.events.clear()

    def on(days: int) -> FollowUp | None:
        return request.follow_up(DAY + timedelta(days=days), policy)

    assert on(6) is None
    assert on(7) is FollowUp.REMIND
    assert on(8) is None  # the reminder restarted the clock
    assert on(14) is FollowUp.REMIND
    request.grant("req-1", yuan("100"), "CZ-1", DAY + timedelta(days=18))  # news from finance
    assert on(21) is None
    assert on(25) is FollowUp.REMIND
    assert on(30) is FollowUp.ESCALATE
    assert request.status is BackstopStatus.ESCALATED
    assert on(31) is None
    assert on(37) is FollowUp.REMIND  # still unpaid: keep reminding, never escalate twice
    assert [type(e) for e in request.events] == [
        BackstopReminded,
        BackstopReminded,
        BackstopGranted,
        BackstopReminded,
        BackstopEscalated,
        BackstopReminded,
    ]
    reminded = request.events[-1]
    assert isinstance(reminded, BackstopReminded)
    assert (reminded.reminder_number, reminded.days_open) == (4, 37)

    # a partial grant keeps an escalated request escalated; the last one closes it
    request.grant("req-1", yuan("100"), "CZ-2", DAY + timedelta(days=40))
    assert request.status is BackstopStatus.ESCALATED
    request.grant("req-1", request.outstanding, "CZ-3", DAY + timedelta(days=41))
    assert request.status is BackstopStatus.GRANTED
    assert on(90) is None


def test_follow_up_policy_is_checked() -> None:
    with pytest.raises(DomainError):
        FollowUpPolicy(remind_after_days=0)
    with pytest.raises(DomainError):
        FollowUpPolicy(remind_after_days=10, escalate_after_days=10)


def test_a_request_is_for_a_positive_amount() -> None:
    with pytest.raises(DomainError):
        BackstopRequest.open("req-1", 0, [], 0, DAY)


@given(
    balance=st.integers(min_value=0, max_value=yuan("50000")),
    amounts=st.lists(st.integers(min_value=0, max_value=yuan("20000")), max_size=40),
)
def test_granting_exactly_what_was_asked_pays_every_claim(balance: int, amounts: list[int]) -> None:
    claims = [approved(n, amount) for n, amount in enumerate(amounts)]
    first = decide_payouts(balance, claims)
    assert first.paid_now_total <= balance
    # the fund pays a prefix in approval order
    assert list(first.pay_now) == claims[: len(first.pay_now)]
    request = first.request("req-1", DAY)
    again = decide_payouts(first.balance_after_payouts, first.unpaid, [r for r in [request] if r])
    assert again.shortfall == 0
    granted = first.balance_after_payouts + (request.amount if request else 0)
    assert decide_payouts(granted, first.unpaid).unpaid == ()


def test_contributions_before_the_grant_withdraw_the_surplus_newest_request_first() -> None:
    claims = [approved(n, yuan("1000")) for n in range(3)]
    older = BackstopRequest.open("BR-2024-0009", yuan("2000"), ["c-000", "c-001"], 0, DAY)
    newer = BackstopRequest.open("BR-2024-0010", yuan("1000"), ["c-002"], 0, DAY)
    # 1,500.00 arrived: one claim paid, 500.00 left; the other two need 1,500.00 more, and
    # 3,000.00 is asked for: 1,500.00 is no longer needed.
    decision = decide_payouts(yuan("1500"), claims, [older, newer])
    assert (decision.shortfall, decision.surplus) == (0, yuan("1500"))

    changed = withdraw_surplus([older, newer], decision.surplus, DAY)

    assert changed == [newer, older]
    assert (newer.status, newer.outstanding) == (BackstopStatus.WITHDRAWN, 0)
    assert (older.status, older.outstanding, older.withdrawn) == (
        BackstopStatus.OPEN,
        yuan("1500"),
        yuan("500"),
    )
    assert older.is_open and not newer.is_open
    withdrawn = newer.events[-1]
    assert isinstance(withdrawn, BackstopWithdrawn)
    assert (withdrawn.amount_fen, withdrawn.outstanding_fen) == (yuan("1000"), 0)
    with pytest.raises(GrantRefused):
        open_request_for([newer], newer.request_id)  # a late grant matches no open request


def test_no_surplus_while_the_unpaid_claims_need_everything_asked_for() -> None:
    claims = [approved(n, yuan("1000")) for n in range(3)]
    request = BackstopRequest.open("BR-2024-0001", yuan("1500"), ["c-001", "c-002"], 0, DAY)
    decision = decide_payouts(yuan("1500"), claims, [request])
    assert (decision.shortfall, decision.surplus) == (0, 0)
    assert withdraw_surplus([request], decision.surplus, DAY) == []
