"""How a class takes enrolments: when, and what happens to the waitlist when a seat frees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.training.sessions import require_aware
from shared.errors import DomainError


@dataclass(frozen=True)
class EnrolmentWindow:
    """Members may enrol from ``opens_at`` (inclusive) until ``closes_at`` (exclusive)."""

    opens_at: datetime
    closes_at: datetime

    def __post_init__(self) -> None:
        require_aware("opens_at", self.opens_at)
        require_aware("closes_at", self.closes_at)
        if self.closes_at <= self.opens_at:
            raise DomainError("closes_at", "before_opening", "enrolment must close after it opens")

    def check(self, now: datetime) -> None:
        if now < self.opens_at:
            raise DomainError(
                "enrolment_window",
                "not_yet_open",
                f"enrolment opens at {self.opens_at.isoformat()}",
            )
        if now >= self.closes_at:
            raise DomainError(
                "enrolment_window", "closed", f"enrolment closed at {self.closes_at.isoformat()}"
            )


class PromotionMode(StrEnum):
    # The next waitlisted member takes the freed seat at once.
    AUTOMATIC = "automatic"
    # The seat is held for the next waitlisted member, who must accept before the deadline.
    OFFER = "offer"


@dataclass(frozen=True)
class WaitlistPolicy:
    enabled: bool = True
    promotion: PromotionMode = PromotionMode.AUTOMATIC
    offer_hours: int = 48

    def __post_init__(self) -> None:
        if self.offer_hours <= 0:
            raise DomainError("offer_hours", "not_positive", "an offer must last some hours")
