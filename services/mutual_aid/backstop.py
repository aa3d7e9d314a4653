"""The finance backstop: an approved claim is always paid; when the fund cannot, city finance covers
the shortfall in full (互助金不足时由财政资金全额兜底).

``decide_payouts`` says which approved claims the fund pays now, how much finance must be asked
for, and how much of what was asked is no longer needed (contributions came first); a
``BackstopRequest`` follows that ask until finance has granted all of it, or the fund no longer
needs the rest, reminding and then escalating on a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from services.mutual_aid.errors import DuplicateEntry, GrantRefused
from services.mutual_aid.money import Fen, format_yuan
from shared.errors import DomainError
from shared.events.base import EventData
from shared.events.mutual_aid import (
    BackstopEscalated,
    BackstopGranted,
    BackstopReminded,
    BackstopRequested,
    BackstopWithdrawn,
)


@dataclass(frozen=True)
class PayableClaim:
    """An approved, unpaid claim as the fund sees it."""

    claim_id: str
    member_id: str
    amount: Fen
    approved_at: datetime


class BackstopStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_GRANTED = "partially_granted"
    GRANTED = "granted"
    # Still open, but overdue and handed to a person; stays so until fully granted.
    ESCALATED = "escalated"
    # Closed: contributions paid the claims, so finance is not asked for the rest.
    WITHDRAWN = "withdrawn"


CLOSED = frozenset({BackstopStatus.GRANTED, BackstopStatus.WITHDRAWN})


class FollowUp(StrEnum):
    REMIND = "remind"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class FollowUpPolicy:
    """Remind finance every ``remind_after_days`` without news; escalate once, when the request
    has been open ``escalate_after_days``."""

    remind_after_days: int = 7
    escalate_after_days: int = 30

    def __post_init__(self) -> None:
        if self.remind_after_days <= 0:
            raise DomainError("remind_after_days", "must_be_positive", "must be positive")
        if self.escalate_after_days <= self.remind_after_days:
            raise DomainError(
                "escalate_after_days",
                "must_be_after_the_first_reminder",
                "must come after the first reminder",
            )


@dataclass(frozen=True)
class Grant:
    amount: Fen
    reference: str
    granted_on: date


@dataclass(eq=False)
class BackstopRequest:
    request_id: str
    amount: Fen
    claim_ids: tuple[str, ...]
    # The fund's balance when the request was made, after paying what it could.
    fund_balance: Fen
    requested_on: date
    status: BackstopStatus = BackstopStatus.OPEN
    grants: list[Grant] = field(default_factory=list)
    reminders: list[date] = field(default_factory=list)
    escalated_on: date | None = None
    # Asked for, but no longer needed: the fund paid those claims from contributions.
    withdrawn: Fen = 0
    events: list[EventData] = field(default_factory=list, repr=False)

    @classmethod
    def open(
        cls,
        request_id: str,
        amount: Fen,
        claim_ids: Sequence[str],
        fund_balance: Fen,
        on: date,
    ) -> BackstopRequest:
        if amount <= 0:
            raise DomainError("amount", "must_be_positive", "must be positive")
        request = cls(request_id, amount, tuple(claim_ids), fund_balance, on)
        request.events.append(
            BackstopRequested(
                request_id=request_id,
                amount_fen=amount,
                claim_ids=list(claim_ids),
                fund_balance_fen=fund_balance,
                requested_on=on,
            )
        )
        return request

    @property
    def granted(self) -> Fen:
        return sum(grant.amount for grant in self.grants)

    @property
    def outstanding(self) -> Fen:
        return self.amount - self.granted - self.withdrawn

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED

    def grant(self, request_id: str, amount: Fen, reference: str, on: date) -> Grant:
        """Record money finance sent for this request. A grant must name this request and may
        be partial; one above what is outstanding is refused (it matches no ask)."""
        if request_id != self.request_id:
            raise GrantRefused(
                "request_id",
                "wrong_request",
                "the grant names another request",
                request_id=request_id,
            )
        if not self.is_open:
            raise GrantRefused(
                "request_id",
                "request_closed",
                f"the request is {self.status.value}: nothing is outstanding",
                request_id=request_id,
            )
        if amount <= 0:
            raise GrantRefused("amount", "must_be_positive", "must be positive")
        if amount > self.outstanding:
            raise GrantRefused(
                "amount",
                "above_outstanding",
                f"{format_yuan(amount)} granted, {format_yuan(self.outstanding)} outstanding",
            )
        if any(g.reference == reference for g in self.grants):
            raise DuplicateEntry(
                "reference",
                "already_recorded",
                "this reference is already recorded for this request",
                reference=reference,
            )
        grant = Grant(amount, reference, on)
        self.grants.append(grant)
        if self.outstanding == 0:
            self.status = BackstopStatus.GRANTED
        elif self.status is not BackstopStatus.ESCALATED:
            self.status = BackstopStatus.PARTIALLY_GRANTED
        self.events.append(
            BackstopGranted(
                request_id=self.request_id,
                amount_fen=amount,
                reference=reference,
                granted_on=on,
                outstanding_fen=self.outstanding,
            )
        )
        return grant

    def withdraw(self, amount: Fen, on: date) -> None:
        """Stop asking for ``amount`` of what is outstanding; with nothing left, it closes."""
        if not 0 < amount <= self.outstanding:
            raise ValueError(f"cannot withdraw {amount} of {self.outstanding} outstanding")
        self.withdrawn += amount
        if self.outstanding == 0:
            self.status = BackstopStatus.WITHDRAWN
        self.events.append(
            BackstopWithdrawn(
                request_id=self.request_id,
                amount_fen=amount,
                outstanding_fen=self.outstanding,
                withdrawn_on=on,
            )
        )

    def due_follow_up(self, today: date, policy: FollowUpPolicy) -> FollowUp | None:
        """What the clock says to do today, without doing it."""
        if not self.is_open:
            return None
        if self.escalated_on is None and self._days_open(today) >= policy.escalate_after_days:
            return FollowUp.ESCALATE
        # Any contact (the request, a reminder, a grant, the escalation) restarts the reminders.
        contacts = [self.requested_on, *self.reminders, *(g.granted_on for g in self.grants)]
        if self.escalated_on is not None:
            contacts.append(self.escalated_on)
        if (today - max(contacts)).days >= policy.remind_after_days:
            return FollowUp.REMIND
        return None

    def follow_up(self, today: date, policy: FollowUpPolicy) -> FollowUp | None:
        """Do what the clock says (remind or escalate) and say which, or None."""
        action = self.due_follow_up(today, policy)
        if action is FollowUp.ESCALATE:
            self.escalate(today)
        elif action is FollowUp.REMIND:
            self.remind(today)
        return action

    def remind(self, on: date) -> None:
        self.reminders.append(on)
        self.events.append(
            BackstopReminded(
                request_id=self.request_id,
                outstanding_fen=self.outstanding,
                reminded_on=on,
                reminder_number=len(self.reminders),
                days_open=self._days_open(on),
            )
        )

    def escalate(self, on: date) -> None:
        self.escalated_on = on
        self.status = BackstopStatus.ESCALATED
        self.events.append(
            BackstopEscalated(
                request_id=self.request_id,
                outstanding_fen=self.outstanding,
                escalated_on=on,
                days_open=self._days_open(on),
            )
        )

    def _days_open(self, today: date) -> int:
        return (today - self.requested_on).days


def open_request_for(requests: Iterable[BackstopRequest], request_id: str) -> BackstopRequest:
    """The open request a grant names; a grant naming none is refused, never guessed at."""
    for request in requests:
        if request.request_id == request_id and request.is_open:
            return request
    raise GrantRefused(
        "request_id",
        "no_open_request",
        "no open backstop request has this id (unknown, granted or withdrawn)",
        request_id=request_id,
    )


@dataclass(frozen=True)
class BackstopDecision:
    fund_balance: Fen
    pay_now: tuple[PayableClaim, ...]
    # Unpaid claims the new request covers (empty when nothing new must be asked for).
    to_request: tuple[PayableClaim, ...]
    # Unpaid claims waiting on money already asked for (in an open request, or covered by what
    # open requests still have outstanding).
    waiting: tuple[PayableClaim, ...]
    shortfall: Fen
    # What open requests still ask for beyond what the unpaid claims need: no longer needed.
    surplus: Fen = 0

    @property
    def paid_now_total(self) -> Fen:
        return sum(claim.amount for claim in self.pay_now)

    @property
    def balance_after_payouts(self) -> Fen:
        return self.fund_balance - self.paid_now_total

    @property
    def unpaid(self) -> tuple[PayableClaim, ...]:
        """Every claim not paid now, in approval order: each should be marked awaiting funds."""
        return tuple(sorted((*self.to_request, *self.waiting), key=lambda c: c.approved_at))

    def request(self, request_id: str, on: date) -> BackstopRequest | None:
        """The new backstop request this decision calls for, or None if nothing new is needed."""
        if self.shortfall == 0:
            return None
        return BackstopRequest.open(
            request_id,
            self.shortfall,
            [claim.claim_id for claim in self.to_request],
            self.balance_after_payouts,
            on,
        )


def decide_payouts(
    fund_balance: Fen,
    approved_unpaid: Sequence[PayableClaim],
    open_requests: Iterable[BackstopRequest] = (),
) -> BackstopDecision:
    """Which approved claims the fund pays now, and what new shortfall finance must be asked for.

    Claims are paid strictly in approval order while the balance allows: the first claim that does
    not fit stops the run, so a large claim approved early is never starved by smaller later ones.

    The new request is what the unpaid claims need beyond the balance left and beyond what open
    requests still have outstanding, so the same shortfall is never asked for twice: running this
    again with the new request among ``open_requests`` asks for nothing. The other way round, what
    open requests have outstanding beyond that need (contributions arrived before finance's
    grant) is the ``surplus``, to be withdrawn.
    """
    if fund_balance < 0:
        raise ValueError("the fund balance cannot be negative")
    queue = sorted(approved_unpaid, key=lambda claim: claim.approved_at)
    remaining = fund_balance
    paid: list[PayableClaim] = []
    for claim in queue:
        if claim.amount > remaining:
            break
        paid.append(claim)
        remaining -= claim.amount
    unpaid = queue[len(paid) :]

    open_list = [request for request in open_requests if request.is_open]
    asked_for = {claim_id for request in open_list for claim_id in request.claim_ids}
    outstanding = sum(request.outstanding for request in open_list)
    new = [claim for claim in unpaid if claim.claim_id not in asked_for]
    still_needed = max(0, sum(claim.amount for claim in unpaid) - remaining)
    needed = still_needed - outstanding
    shortfall = min(sum(claim.amount for claim in new), max(0, needed))
    to_request = tuple(new) if shortfall > 0 else ()
    requested_ids = {claim.claim_id for claim in to_request}
    return BackstopDecision(
        fund_balance=fund_balance,
        pay_now=tuple(paid),
        to_request=to_request,
        waiting=tuple(claim for claim in unpaid if claim.claim_id not in requested_ids),
        shortfall=shortfall,
        surplus=max(0, outstanding - still_needed),
    )


def withdraw_surplus(
    open_requests: Iterable[BackstopRequest], surplus: Fen, on: date
) -> list[BackstopRequest]:
    """Take ``surplus`` back from open requests, newest first (the oldest ask stays the one
    finance is chased for); returns the requests changed."""
    changed = []
    # Numbers grow: a longer one is newer (BR-2026-10000 after BR-2026-9999).
    newest_first = sorted(
        open_requests, key=lambda r: (r.requested_on, len(r.request_id), r.request_id), reverse=True
    )
    for request in newest_first:
        if surplus == 0:
            break
        cut = min(surplus, request.outstanding)
        if request.is_open and cut > 0:
            request.withdraw(cut, on)
            surplus -= cut
            changed.append(request)
    return changed
