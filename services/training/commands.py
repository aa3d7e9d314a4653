"""What staff, the member portal and the streaming side ask the training service to do.

Each command is also the body of its HTTP request, so the API validates it once, with the field
names the error answers use. The rules beyond shape (a session ends after it starts, a window
closes before the class ends...) are the domain's, which names the field too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.training.courses import AudienceKind, CourseKind
from services.training.errors import DomainError
from services.training.policies import PromotionMode

MemberId = Field(min_length=1, max_length=64)
Reason = Field(min_length=1, max_length=500)


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AudienceBody(Command):
    kind: AudienceKind = AudienceKind.ALL_MEMBERS
    # The category (e.g. platform workers) or the subtree's root union id.
    target: str | None = Field(default=None, min_length=1, max_length=64)


class CompletionBody(Command):
    min_attendance_percent: int | None = Field(default=80, ge=1, le=100)
    pass_mark: Decimal | None = Field(default=None, ge=0, max_digits=6, decimal_places=2)
    min_watched_minutes: int | None = Field(default=None, ge=1, le=100_000)


class CreateCourse(Command):
    title: str = Field(min_length=1, max_length=200)
    kind: CourseKind
    provider: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    audience: AudienceBody = Field(default_factory=AudienceBody)
    completion: CompletionBody = Field(default_factory=CompletionBody)


class SessionBody(Command):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    venue: str | None = Field(default=None, min_length=1, max_length=200)
    online_link: str | None = Field(default=None, min_length=1, max_length=500)


class WaitlistBody(Command):
    enabled: bool = True
    promotion: PromotionMode = PromotionMode.AUTOMATIC
    offer_hours: int = Field(default=48, ge=1, le=24 * 30)


class ScheduleClass(Command):
    name: str = Field(min_length=1, max_length=200)
    # None: no seat limit (an online lecture).
    capacity: int | None = Field(ge=1, le=100_000)
    enrolment_opens_at: AwareDatetime
    enrolment_closes_at: AwareDatetime
    sessions: list[SessionBody] = Field(min_length=1, max_length=200)
    waitlist: WaitlistBody = Field(default_factory=WaitlistBody)
    requires_approval: bool = False
    releases_no_shows: bool = False


class Enrol(Command):
    member_id: str = MemberId


class Cancel(Command):
    reason: str = Reason


class Reject(Command):
    reason: str = Reason


class ChangeCapacity(Command):
    capacity: int | None = Field(ge=1, le=100_000)


class StaffCheckIn(Command):
    member_id: str = MemberId


class CodeCheckIn(Command):
    member_id: str = MemberId
    code: str = Field(min_length=1, max_length=32)


class ViewingReport(Command):
    # Chosen by the streaming side; a report sent again with the same id is counted once.
    report_id: str = Field(min_length=1, max_length=100)
    member_id: str = MemberId
    minutes: int = Field(ge=1, le=24 * 60)


class RecordScore(Command):
    score: Decimal = Field(ge=0, max_digits=6, decimal_places=2)


@contextmanager
def fields_renamed(renames: dict[str, str]) -> Iterator[None]:
    """Let a refusal from a domain constructor name the request's field, not the domain's."""
    try:
        yield
    except DomainError as error:
        if error.field not in renames:
            raise
        raise type(error)(
            renames[error.field], error.reason, error.message, **error.extra
        ) from None
