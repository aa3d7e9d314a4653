"""One member's place in one class: its status, attendance, minutes, score and completion.

An enrolment is an entity inside the class aggregate: only ``TrainingClass`` changes it, because
whether a member gets a seat depends on everyone else's enrolments in the class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from services.training.certificates import Certificate


class EnrolmentStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    OFFERED = "offered"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


# Statuses that hold one of the class's seats. An enrolment awaiting approval holds its seat, so
# members are served in the order they enrolled and approval cannot overfill the class.
SEAT_HOLDING = frozenset(
    {EnrolmentStatus.PENDING_APPROVAL, EnrolmentStatus.OFFERED, EnrolmentStatus.CONFIRMED}
)
# Statuses that are still in play: a member in one of them cannot enrol again.
ACTIVE = SEAT_HOLDING | {EnrolmentStatus.WAITLISTED}


class Actor(StrEnum):
    MEMBER = "member"
    STAFF = "staff"
    SYSTEM = "system"


class CheckInMethod(StrEnum):
    STAFF = "staff"
    CODE = "code"


@dataclass(frozen=True)
class CheckIn:
    session_id: str
    method: CheckInMethod
    recorded_at: datetime


@dataclass(eq=False)
class Enrolment:
    enrolment_id: str
    class_id: str
    member_id: str
    member_name: str
    # Where the member was when they enrolled: reports count training where it happened, even if
    # the member moves union later.
    union_id: str
    union_path: tuple[str, ...]
    status: EnrolmentStatus
    # Enrolment order within the class: the waitlist is served in this order.
    sequence: int
    enrolled_at: datetime
    offer_expires_at: datetime | None = None
    cancel_reason: str | None = None
    cancelled_by: Actor | None = None
    check_ins: dict[str, CheckIn] = field(default_factory=dict)
    watched_minutes: int = 0
    score: Decimal | None = None
    completed_on: date | None = None
    certificate: Certificate | None = None

    @property
    def holds_seat(self) -> bool:
        return self.status in SEAT_HOLDING

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def attended(self) -> bool:
        """Took part at all: checked in to a session or watched some minutes."""
        return bool(self.check_ins) or self.watched_minutes > 0
