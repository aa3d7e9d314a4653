"""How the training API answers: one pydantic model per answer, built from domain objects.

Names are masked in every answer (the house rule for default responses); member ids are not
personal data here: they are the membership service's opaque ids. Scores and pass marks are
decimals written as strings ("85.50"), so they survive JSON without float rounding.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Generic, Self, TypeVar

from pydantic import BaseModel, Field, computed_field

from services.training.certificates import Certificate, Verification, mask_name
from services.training.classes import TrainingClass
from services.training.completion import Completed, Criterion
from services.training.courses import AudienceKind, Course, CourseKind
from services.training.enrolment import Actor, Enrolment, EnrolmentStatus
from services.training.policies import PromotionMode
from services.training.reports import Counts, UnionReport
from services.training.sessions import Session

MASKED_NAME = "The name with all but its first character masked, e.g. 张*."


# ----- courses -----


class AudienceView(BaseModel):
    kind: AudienceKind = Field(description="Who may enrol.")
    target: str | None = Field(
        description="The member category (for `category`) or the subtree's root union id (for "
        "`union_subtree`); null for the other kinds.",
        examples=["new_employment_form"],
    )


class CompletionView(BaseModel):
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


class CourseView(BaseModel):
    course_id: str = Field(examples=["0b6f4c8e-5d1a-4c3e-9a43-2f1d7b0f9e11"])
    title: str = Field(examples=["工会干部业务培训"])
    kind: CourseKind
    provider: str = Field(description="Who teaches it.", examples=["亳州市总工会"])
    description: str
    audience: AudienceView
    completion: CompletionView

    @classmethod
    def of(cls, course: Course) -> CourseView:
        rule = course.completion
        return cls(
            course_id=course.course_id,
            title=course.title,
            kind=course.kind,
            provider=course.provider,
            description=course.description,
            audience=AudienceView(kind=course.audience.kind, target=course.audience.target),
            completion=CompletionView(
                min_attendance_percent=rule.min_attendance_percent,
                pass_mark=rule.pass_mark,
                min_watched_minutes=rule.min_watched_minutes,
            ),
        )


# ----- classes -----


class SessionView(BaseModel):
    session_id: str = Field(description="Unique across classes; check-in codes are per session.")
    starts_at: datetime
    ends_at: datetime
    venue: str | None = Field(examples=["市总工会201会议室"])
    online_link: str | None = Field(examples=["https://live.example.cn/lecture/42"])

    @classmethod
    def of(cls, s: Session) -> SessionView:
        return cls(
            session_id=s.session_id,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            venue=s.venue,
            online_link=s.online_link,
        )


class WaitlistView(BaseModel):
    enabled: bool = Field(description="False: a full class refuses enrolments (class_full).")
    promotion: PromotionMode = Field(
        description="`automatic`: a freed seat goes to the next in line at once; `offer`: it is "
        "offered and held until the offer expires."
    )
    offer_hours: int = Field(description="How long an offered seat is held.", examples=[48])


class ClassView(BaseModel):
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

    @classmethod
    def of(cls, tc: TrainingClass) -> ClassView:
        policy = tc.waitlist_policy
        return cls(
            class_id=tc.class_id,
            course_id=tc.course.course_id,
            course_title=tc.course.title,
            name=tc.name,
            capacity=tc.capacity,
            seats_held=tc.seats_held(),
            waitlisted=len(tc.waitlist()),
            enrolment_opens_at=tc.window.opens_at,
            enrolment_closes_at=tc.window.closes_at,
            requires_approval=tc.requires_approval,
            releases_no_shows=tc.releases_no_shows,
            waitlist=WaitlistView(
                enabled=policy.enabled, promotion=policy.promotion, offer_hours=policy.offer_hours
            ),
            sessions=[SessionView.of(s) for s in tc.sessions],
        )


class NoShowRelease(ClassView):
    released_member_ids: list[str] = Field(
        description="Members whose seats this call released; empty when the rule had already "
        "run, is not due yet, or the class does not use it."
    )

    @classmethod
    def of_release(cls, tc: TrainingClass, released: list[Enrolment]) -> NoShowRelease:
        after = ClassView.of(tc).model_dump(exclude={"seats_free"})
        return cls(**after, released_member_ids=[e.member_id for e in released])


# ----- enrolments -----


class EnrolmentView(BaseModel):
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

    @classmethod
    def of(cls, tc: TrainingClass, e: Enrolment) -> EnrolmentView:
        waiting = e.status is EnrolmentStatus.WAITLISTED
        return cls(
            enrolment_id=e.enrolment_id,
            class_id=e.class_id,
            member_id=e.member_id,
            member_name=mask_name(e.member_name),
            status=e.status,
            waitlist_position=tc.waitlist_position(e.member_id) if waiting else None,
            offer_expires_at=e.offer_expires_at,
            enrolled_at=e.enrolled_at,
            cancel_reason=e.cancel_reason,
            cancelled_by=e.cancelled_by,
            attended_sessions=sorted(e.check_ins),
            watched_minutes=e.watched_minutes,
            score=e.score,
            completed_on=e.completed_on,
            certificate_number=e.certificate.number if e.certificate else None,
        )


class ShortfallView(BaseModel):
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
    def of_member(cls, tc: TrainingClass, e: Enrolment) -> ProgressView:
        outcome = tc.completion_of(e.member_id)
        missing = (
            []
            if isinstance(outcome, Completed)
            else [
                ShortfallView(criterion=s.criterion, needed=s.needed, actual=s.actual)
                for s in outcome.reasons
            ]
        )
        base = EnrolmentView.of(tc, e)
        return cls(**base.model_dump(), missing_for_completion=missing)


class CheckInCode(BaseModel):
    class_id: str
    session_id: str
    code: str = Field(description="Six characters of 23456789ABCDEFGHJKMNPQRSTUVWXYZ.")
    valid_from: datetime = Field(description="30 minutes before the session starts.")
    valid_until: datetime = Field(description="When the session ends.")
    qr_text: str = Field(
        description="What to print as a QR code: GHTRAIN:{session_id}:{code}.",
        examples=["GHTRAIN:9d1c...:7KQ3M9"],
    )


class ViewingAcknowledgement(BaseModel):
    report_id: str
    counted: bool = Field(description="False: this report id was counted before (a resend).")
    member_id: str
    watched_minutes: int = Field(description="The member's total minutes in this class.")
    completed_on: date | None
    certificate_number: str | None


# ----- a member's record -----


class MemberEnrolment(BaseModel):
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


class CertificateView(BaseModel):
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


class CertificateVerification(BaseModel):
    """What a genuine certificate shows; never the full name, never a member id."""

    number: str = Field(
        description="The number in its canonical form.", examples=["GH-7KQ3-M9XA-PR4"]
    )
    holder: str = Field(description=MASKED_NAME, examples=["张*"])
    course_title: str
    class_name: str
    completed_on: date
    issued_on: date

    @classmethod
    def of(cls, v: Verification) -> CertificateVerification:
        return cls(**asdict(v))


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


class CountsView(BaseModel):
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

    @classmethod
    def of(cls, counts: Counts) -> CountsView:
        return cls(**asdict(counts))


class ClassReport(CountsView):
    class_id: str


class CourseReport(BaseModel):
    course_id: str
    total: CountsView
    by_class: dict[str, CountsView] = Field(description="Keyed by class id.")


class UnionReportView(BaseModel):
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
            total=CountsView.of(report.total),
            by_union={child: CountsView.of(c) for child, c in report.by_child.items()},
        )
