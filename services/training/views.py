"""How the training API answers: one ``shared.views.View`` per answer, read off domain objects
and rows by attribute name (``CourseView.model_validate(course)``).

Names are masked in every answer (the house rule for default responses); member ids are not
personal data here: they are the membership service's opaque ids. Scores and pass marks are
decimals written as strings ("85.50"), so they survive JSON without float rounding.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Generic, Self, TypeVar

from pydantic import BaseModel, Field, computed_field, field_validator

from services.training.certificates import Certificate, mask_name
from services.training.completion import Completed, Criterion, Outcome
from services.training.courses import AudienceKind, CourseKind
from services.training.enrolment import Actor, Enrolment, EnrolmentStatus
from services.training.policies import PromotionMode
from services.training.roll_ups import UnionReport
from shared.views import View

MASKED_NAME = "The name with all but its first character masked, e.g. 张*."


# ----- courses -----


class AudienceView(View):
    kind: AudienceKind = Field(description="Who may enrol.")
    target: str | None = Field(
        description="The member category (for `category`) or the subtree's root union id (for "
        "`union_subtree`); null for the other kinds.",
        examples=["new_employment_form"],
    )


class CompletionView(View):
    """What completing the course takes: every criterion that is not null must hold."""

    min_attendance_percent: int | None = Field(
        description="Sessions attended, as a percentage of the class's sessions.", examples=[80]
    )
    pass_mark: Decimal | None = Field(
        description="The lowest passing assessment score; null: no assessment.", examples=["60"]
    )
    min_watched_minutes: int | None = Field(
        description="Minutes of online lectures watched (lecture series).", examples=[120]
    )


class CourseView(View):
    course_id: str = Field(examples=["0b6f4c8e-5d1a-4c3e-9a43-2f1d7b0f9e11"])
    title: str = Field(examples=["工会干部业务培训"])
    kind: CourseKind
    provider: str = Field(description="Who teaches it.", examples=["亳州市总工会"])
    description: str
    audience: AudienceView
    completion: CompletionView


# ----- classes -----


class SessionView(View):
    session_id: str = Field(description="Unique across classes; check-in codes are per session.")
    starts_at: datetime
    ends_at: datetime
    venue: str | None = Field(examples=["市总工会201会议室"])
    online_link: str | None = Field(examples=["https://live.example.cn/lecture/42"])


class WaitlistView(View):
    enabled: bool = Field(description="False: a full class refuses enrolments (class_full).")
    promotion: PromotionMode = Field(
        description="`automatic`: a freed seat goes to the next in line at once; `offer`: it is "
        "offered and held until the offer expires."
    )
    offer_hours: int = Field(description="How long an offered seat is held.", examples=[48])


class ClassView(View):
    class_id: str = Field(examples=["5f0c2a7e-8a8b-4d7e-b1f0-3f9f3c1d2e4a"])
    course_id: str
    course_title: str
    name: str = Field(examples=["2026年第一期"])
    capacity: int | None = Field(description="Seats; null: no seat limit (an online lecture).")
    seats_held: int = Field(description="Enrolments confirmed, offered or awaiting approval.")
    waitlisted: int = Field(description="Enrolments waiting for a seat.")
    enrolment_opens_at: datetime
    enrolment_closes_at: datetime = Field(description="Enrolment is open until (excluded).")
    requires_approval: bool = Field(description="Staff approve each enrolment before it counts.")
    releases_no_shows: bool = Field(
        description="Confirmed members absent from the first session lose their seat."
    )
    waitlist: WaitlistView
    sessions: list[SessionView] = Field(description="In the order they take place.")

    @computed_field(description="Seats nobody holds; null for a class without capacity.")
    def seats_free(self) -> int | None:
        return None if self.capacity is None else self.capacity - self.seats_held


class NoShowRelease(ClassView):
    released_member_ids: list[str] = Field(
        description="Members whose seats this call released; empty when the rule had already "
        "run, is not due yet, or the class does not use it."
    )

    @classmethod
    def of_release(cls, after: ClassView, released: list[str]) -> NoShowRelease:
        return cls(**after.model_dump(exclude={"seats_free"}), released_member_ids=released)


# ----- enrolments -----


class EnrolmentView(View):
    enrolment_id: str
    class_id: str
    member_id: str = Field(examples=["m-20260105-0001"])
    member_name: str = Field(description=MASKED_NAME, examples=["张*"])
    status: EnrolmentStatus
    waitlist_position: int | None = Field(
        description="1 for the next in line; null unless waitlisted.", examples=[3]
    )
    offer_expires_at: datetime | None = Field(
        description="Until when an offered seat is held; null unless offered."
    )
    enrolled_at: datetime
    cancel_reason: str | None = Field(
        description="Why it was cancelled: the text given, or `left_union`, `offer_expired`, "
        "`no_show` when the service cancelled it."
    )
    cancelled_by: Actor | None
    attended_sessions: list[str] = Field(description="Ids of the sessions checked in to.")
    watched_minutes: int
    score: Decimal | None = Field(description="The assessment score, if recorded.")
    completed_on: date | None = Field(description="In the federation's time zone.")
    certificate_number: str | None = Field(examples=["GH-7KQ3-M9XA-PR4"])

    @field_validator("member_name")
    @classmethod
    def _masked(cls, name: str) -> str:
        return mask_name(name)

    @classmethod
    def of_written(cls, e: Enrolment, waitlist_position: int | None = None) -> EnrolmentView:
        """The answer about an enrolment this request wrote, without reading it back."""
        return cls.model_validate(
            {f.name: getattr(e, f.name) for f in fields(e)}
            | {
                "enrolled_at": e.enrolled_at.astimezone(UTC),  # as Postgres gives it back
                "waitlist_position": waitlist_position,
                "attended_sessions": sorted(e.check_ins),
                "certificate_number": e.certificate.number if e.certificate else None,
            }
        )


class ShortfallView(View):
    criterion: Criterion
    needed: int | Decimal = Field(
        description="Percent or minutes as an integer; a pass mark as a decimal string."
    )
    actual: int | Decimal | None = Field(description="What the member has; null: nothing yet.")


class ProgressView(EnrolmentView):
    missing_for_completion: list[ShortfallView] = Field(
        description="Every criterion not met yet; empty once completed."
    )

    @classmethod
    def of_member(cls, enrolment: EnrolmentView, outcome: Outcome) -> ProgressView:
        missing = [] if isinstance(outcome, Completed) else outcome.reasons
        return cls(
            **enrolment.model_dump(),
            missing_for_completion=[ShortfallView.model_validate(s) for s in missing],
        )


class CheckInCode(View):
    class_id: str
    session_id: str
    code: str = Field(description="Six characters of 23456789ABCDEFGHJKMNPQRSTUVWXYZ.")
    valid_from: datetime = Field(description="30 minutes before the session starts.")
    valid_until: datetime = Field(description="When the session ends.")
    qr_text: str = Field(
        description="What to print as a QR code: GHTRAIN:{session_id}:{code}.",
        examples=["GHTRAIN:9d1c...:7KQ3M9"],
    )


class ViewingAcknowledgement(View):
    """One report's effect."""

    report_id: str
    counted: bool = Field(description="False: this report id was counted before (a resend).")
    member_id: str
    watched_minutes: int = Field(description="The member's total minutes in this class.")
    completed_on: date | None
    certificate_number: str | None


# ----- a member's record -----


class MemberEnrolment(View):
    """One of a member's enrolments, with its class and course."""

    enrolment_id: str
    class_id: str
    class_name: str
    course_id: str
    course_title: str
    course_kind: CourseKind
    class_starts_at: datetime
    class_ends_at: datetime
    status: EnrolmentStatus
    waitlist_position: int | None = Field(
        description="1 for the next in line; null unless waitlisted."
    )
    offer_expires_at: datetime | None
    enrolled_at: datetime
    cancel_reason: str | None
    cancelled_by: Actor | None
    attended_sessions: int = Field(description="Sessions checked in to.")
    session_count: int = Field(description="Sessions the class has.")
    watched_minutes: int
    score: Decimal | None
    completed_on: date | None
    certificate_number: str | None


class CertificateView(View):
    number: str = Field(examples=["GH-7KQ3-M9XA-PR4"])
    holder: str = Field(description=MASKED_NAME, examples=["张*"])
    course_id: str
    course_title: str
    class_id: str
    class_name: str
    completed_on: date
    issued_on: date

    @classmethod
    def of(cls, c: Certificate) -> CertificateView:
        return cls(
            number=c.number,
            holder=mask_name(c.holder_name),
            course_id=c.course_id,
            course_title=c.course_title,
            class_id=c.class_id,
            class_name=c.class_name,
            completed_on=c.completed_on,
            issued_on=c.issued_on,
        )


class CertificateVerification(View):
    """What a genuine certificate shows; never the full name, never a member id."""

    number: str = Field(
        description="The number in its canonical form.", examples=["GH-7KQ3-M9XA-PR4"]
    )
    holder: str = Field(description=MASKED_NAME, examples=["张*"])
    course_title: str
    class_name: str
    completed_on: date
    issued_on: date


# ----- pages -----

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int = Field(description="How many match the filters, on every page.")
    next_offset: int | None = Field(
        description="The offset of the next page; null on the last page."
    )

    @classmethod
    def of(cls, items: list[Item], total: int, offset: int) -> Self:
        after = offset + len(items)
        return cls(items=items, total=total, next_offset=after if after < total else None)


class CoursePage(Page[CourseView]):
    pass


class ClassPage(Page[ClassView]):
    pass


class RosterPage(Page[EnrolmentView]):
    pass


class MemberEnrolmentPage(Page[MemberEnrolment]):
    pass


class CertificatePage(Page[CertificateView]):
    pass


# ----- reports -----


class CountsView(View):
    """Enrolments counted as person-times (人次): a member in two classes counts twice."""

    enrolled: int = Field(description="Confirmed now.")
    pending_approval: int
    offered: int
    waitlisted: int
    cancelled: int
    rejected: int
    attended: int = Field(description="Checked in to a session or watched some minutes.")
    attendances: int = Field(description="Session check-ins in all.")
    completed: int = Field(description="Completed, even if cancelled later.")
    certified: int


class ClassReport(CountsView):
    class_id: str


class CourseReport(View):
    course_id: str
    total: CountsView
    by_class: dict[str, CountsView] = Field(description="Keyed by class id.")


class UnionReportView(View):
    union_id: str
    year: int
    total: CountsView
    by_union: dict[str, CountsView] = Field(
        description="Keyed by the union directly below the root that members belong under; "
        "members of the root union itself are under the root's own id."
    )

    @classmethod
    def of(cls, report: UnionReport) -> UnionReportView:
        return cls(
            union_id=report.root_union_id,
            year=report.year,
            total=CountsView.model_validate(report.total),
            by_union={child: CountsView.model_validate(c) for child, c in report.by_child.items()},
        )


class RefusedViewing(View):
    report_id: str
    member_id: str
    code: str = Field(description="`not_enrolled` or `not_confirmed` (docs/errors/training.md).")


class ViewingBatchOutcome(View):
    """What a batch did: every line is counted, a repeat, or refused."""

    counted: int = Field(description="Lines whose minutes were added.")
    repeated: list[str] = Field(
        description="Report ids counted before (or earlier in this batch): not counted again."
    )
    refused: list[RefusedViewing] = Field(description="Lines for members who cannot attend.")
    completed: int = Field(description="Members who completed the course through this batch.")
    certified: int = Field(description="Certificates issued through this batch.")
