"""Events the training service publishes: classes, enrolments, attendance, completion, certificates.

Every event's subject (the Kafka key) is the class id, enrolment events included. Seats are a
class-wide resource: one member's cancellation and the next member's promotion are two events of
one decision, and consumers (notifications, reports) must see them in that order. Keying by class
keeps all of a class's events in one partition, in order; an enrolment's own events are a subset
of its class's, so they stay in order too.

Enrolment events carry the member id (notifications addresses the member), the class id, the course
title and the class name, so a message can be rendered without asking training anything.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from shared.events.base import EventData, event

SOURCE = "gonghui/training"


class ClassEvent(EventData):
    source: ClassVar[str] = SOURCE
    class_id: str

    def subject(self) -> str:
        return self.class_id


@event
class ClassScheduled(ClassEvent):
    type: ClassVar[str] = "gonghui.training.class.scheduled"
    course_id: str
    course_title: str
    course_kind: str
    class_name: str
    # None: an online lecture without a seat limit.
    capacity: int | None
    enrolment_opens_at: datetime
    enrolment_closes_at: datetime
    starts_at: datetime
    ends_at: datetime
    session_count: int
    requires_approval: bool
    waitlist: bool


@event
class ClassCapacityChanged(ClassEvent):
    type: ClassVar[str] = "gonghui.training.class.capacity_changed"
    course_id: str
    previous_capacity: int | None
    capacity: int | None


class EnrolmentEvent(ClassEvent):
    """Events about one member's enrolment. Their ``starts_at`` fields say when the member should
    come: the class's first session, or the next one if the class has already begun."""

    enrolment_id: str
    member_id: str
    course_id: str
    course_title: str
    class_name: str


@event
class EnrolmentAwaitingApproval(EnrolmentEvent):
    """A seat is held for the member until staff approve or reject the enrolment."""

    type: ClassVar[str] = "gonghui.training.enrolment.awaiting_approval"


@event
class EnrolmentConfirmed(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.training.enrolment.confirmed"
    # How the seat was confirmed: "enrolled", "approved" or "offer_accepted".
    via: str
    starts_at: datetime


@event
class EnrolmentWaitlisted(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.training.enrolment.waitlisted"
    # 1 = next in line when the event was recorded.
    position: int


@event
class EnrolmentPromoted(EnrolmentEvent):
    """Moved from the waitlist into a freed seat without being asked."""

    type: ClassVar[str] = "gonghui.training.enrolment.promoted"
    # "confirmed", or "pending_approval" when the class needs staff approval.
    status: str
    starts_at: datetime


@event
class EnrolmentOffered(EnrolmentEvent):
    """A freed seat is offered to the next waitlisted member, held for them until the deadline."""

    type: ClassVar[str] = "gonghui.training.enrolment.offered"
    offer_expires_at: datetime
    starts_at: datetime


@event
class EnrolmentRejected(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.training.enrolment.rejected"
    reason: str


@event
class EnrolmentCancelled(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.training.enrolment.cancelled"
    # e.g. "left_union", "offer_expired", "no_show", or what the member or staff wrote.
    reason: str
    # "member", "staff" or "system".
    cancelled_by: str
    previous_status: str


@event
class ClassReminder(EnrolmentEvent):
    """A confirmed member's session starts soon (the day before, by default): once per session."""

    type: ClassVar[str] = "gonghui.training.class.reminder"
    session_id: str
    starts_at: datetime
    ends_at: datetime
    venue: str | None
    online_link: str | None


@event
class AttendanceRecorded(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.training.attendance.recorded"
    session_id: str
    session_starts_at: datetime
    # "staff" or "code" (the member's own check-in).
    method: str
    recorded_at: datetime


@event
class CourseCompleted(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.training.course.completed"
    completed_on: date


@event
class CertificateIssued(EnrolmentEvent):
    type: ClassVar[str] = "gonghui.training.certificate.issued"
    certificate_number: str
    issued_on: date
