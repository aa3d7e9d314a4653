"""What staff, the member portal and the streaming side ask the training service to do.

Each command is also the body of its HTTP request, so the API validates it once, with the field
names the error answers use. The rules beyond shape (a session ends after it starts, a window
closes before the class ends...) are the domain's, which names the field too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from services.training.courses import AudienceKind, CourseKind
from services.training.enrolment import Actor
from services.training.policies import PromotionMode
from shared.errors import DomainError
from shared.inputs import FROM_ROUTE, Command, FromRoute, IsoDateTime

MEMBER_ID = "m-20260105-0001"
# Who cancelled: the route says (the member portal's route or staff's), never the body.
ActorFromRoute = Annotated[SkipJsonSchema[Actor], FROM_ROUTE]
# The most viewers one batch may report: a city-wide online lecture.
MAX_VIEWERS_PER_BATCH = 300_000


def member_id() -> Any:
    return Field(
        min_length=1,
        max_length=64,
        description="The member's id in the membership service.",
        examples=[MEMBER_ID],
    )


def reason() -> Any:
    return Field(
        min_length=1, max_length=500, description="Told to the member.", examples=["单位工作冲突"]
    )


def example(*bodies: dict[str, Any]) -> ConfigDict:
    """Whole request bodies for the OpenAPI document."""
    return ConfigDict(json_schema_extra={"examples": list(bodies)})


class AudienceBody(Command):
    kind: AudienceKind = Field(
        default=AudienceKind.ALL_MEMBERS,
        description="all_members, cadres, a member category, or a union and every union below it.",
    )
    target: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The category (`category`) or the subtree's root union id "
        "(`union_subtree`); absent for the other kinds.",
        examples=["new_employment_form"],
    )


class CompletionBody(Command):
    """Every criterion given must hold; at least one must be given (null drops a criterion)."""

    min_attendance_percent: int | None = Field(
        default=80, ge=1, le=100, description="Sessions attended, percent of the class's."
    )
    pass_mark: Decimal | None = Field(
        default=None,
        ge=0,
        max_digits=6,
        decimal_places=2,
        description="The lowest passing score; absent: no assessment.",
        examples=["60"],
    )
    min_watched_minutes: int | None = Field(
        default=None, ge=1, le=100_000, description="Minutes of online lectures watched."
    )


class CreateCourse(Command):
    model_config = example(
        {
            "title": "工会干部业务培训",
            "kind": "cadre_training",
            "provider": "亳州市总工会",
            "description": "基层工会主席履职能力培训",
            "audience": {"kind": "cadres"},
            "completion": {"min_attendance_percent": 80, "pass_mark": "60"},
        },
        {
            "title": "新就业形态劳动者权益讲座",
            "kind": "lecture_series",
            "provider": "市总工会法律部",
            "audience": {"kind": "category", "target": "new_employment_form"},
            "completion": {"min_attendance_percent": None, "min_watched_minutes": 90},
        },
    )
    title: str = Field(min_length=1, max_length=200)
    kind: CourseKind
    provider: str = Field(min_length=1, max_length=200, description="Who teaches it.")
    description: str = Field(default="", max_length=4000)
    audience: AudienceBody = Field(default_factory=AudienceBody, description="Who may enrol.")
    completion: CompletionBody = Field(
        default_factory=CompletionBody,
        description="What completing takes; by default 80% of the sessions attended.",
    )


class SessionBody(Command):
    starts_at: IsoDateTime
    ends_at: IsoDateTime = Field(description="After `starts_at`.")
    venue: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A venue or an online link, or both.",
    )
    online_link: str | None = Field(default=None, min_length=1, max_length=500)


class WaitlistBody(Command):
    enabled: bool = Field(default=True, description="false: a full class refuses enrolments.")
    promotion: PromotionMode = Field(
        default=PromotionMode.AUTOMATIC,
        description="`automatic`: a freed seat goes to the next in line at once; `offer`: it is "
        "held for them until they accept or `offer_hours` pass.",
    )
    offer_hours: int = Field(default=48, ge=1, le=24 * 30)


class ScheduleClass(Command):
    course_id: FromRoute = ""
    model_config = example(
        {
            "name": "2026年第一期",
            "capacity": 50,
            "enrolment_opens_at": "2026-06-01T09:00:00+08:00",
            "enrolment_closes_at": "2026-06-20T18:00:00+08:00",
            "sessions": [
                {
                    "starts_at": "2026-06-25T09:00:00+08:00",
                    "ends_at": "2026-06-25T12:00:00+08:00",
                    "venue": "市总工会201会议室",
                }
            ],
            "waitlist": {"enabled": True, "promotion": "offer", "offer_hours": 24},
            "requires_approval": True,
            "releases_no_shows": True,
        }
    )
    name: str = Field(min_length=1, max_length=200)
    capacity: int | None = Field(ge=1, le=100_000, description="Seats; null: no seat limit.")
    enrolment_opens_at: IsoDateTime
    enrolment_closes_at: IsoDateTime = Field(
        description="Enrolment is open until (excluded); no later than the last session's end."
    )
    sessions: list[SessionBody] = Field(min_length=1, max_length=200)
    waitlist: WaitlistBody = Field(default_factory=WaitlistBody)
    requires_approval: bool = Field(
        default=False, description="Staff approve each enrolment; it holds its seat meanwhile."
    )
    releases_no_shows: bool = Field(
        default=False,
        description="Confirmed members absent from the first session lose their seat.",
    )


class Enrol(Command):
    model_config = example({"member_id": MEMBER_ID})
    class_id: FromRoute = ""
    member_id: str = member_id()


class OnEnrolment(Command):
    """A command about one member's enrolment in one class, both named by the path."""

    class_id: FromRoute = ""
    member_id: FromRoute = ""


class Approve(OnEnrolment):
    pass


class AcceptOffer(OnEnrolment):
    pass


class Cancel(OnEnrolment):
    model_config = example({"reason": "单位工作冲突"})
    by: ActorFromRoute = Actor.MEMBER
    reason: str = reason()


class Reject(OnEnrolment):
    model_config = example({"reason": "名额优先安排基层工会主席"})
    reason: str = reason()


class ChangeCapacity(Command):
    model_config = example({"capacity": 60}, {"capacity": None})
    class_id: FromRoute = ""
    capacity: int | None = Field(ge=1, le=100_000, description="Seats; null: no seat limit.")


class ReleaseNoShows(Command):
    class_id: FromRoute = ""


class OnSession(Command):
    """A command about one session of a class, both named by the path."""

    class_id: FromRoute = ""
    session_id: FromRoute = ""


class StaffCheckIn(OnSession):
    model_config = example({"member_id": MEMBER_ID})
    member_id: str = member_id()


class CodeCheckIn(OnSession):
    model_config = example({"member_id": MEMBER_ID, "code": "7KQ3M9"})
    member_id: str = member_id()
    code: str = Field(min_length=1, max_length=32, description="As shown in the room.")


class ViewingReport(Command):
    model_config = example(
        {"report_id": "live-42-m0001-0930", "member_id": MEMBER_ID, "minutes": 45}
    )
    class_id: FromRoute = ""
    report_id: str = Field(
        min_length=1,
        max_length=100,
        description="Chosen by the streaming side; a report sent again with the same id is "
        "counted once.",
    )
    member_id: str = member_id()
    minutes: int = Field(ge=1, le=24 * 60)


class ViewingLine(BaseModel):
    """One viewer's minutes in a batch. A plain model: the batch (a Command) checks every string
    and number in it once, rather than 300,000 models each checking their own."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    report_id: str = Field(min_length=1, max_length=100, description="As in a single report.")
    member_id: str = member_id()
    minutes: int = Field(ge=1, le=24 * 60)


ReportId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
MemberId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Minutes = Annotated[int, Ge(1), Le(24 * 60)]


def column(description: str) -> Any:
    return Field(
        default=None, min_length=1, max_length=MAX_VIEWERS_PER_BATCH, description=description
    )


class ViewingBatch(Command):
    model_config = example(
        {
            "reports": [
                {"report_id": "live-42-m0001", "member_id": MEMBER_ID, "minutes": 95},
                {"report_id": "live-42-m0002", "member_id": "m-20260105-0002", "minutes": 40},
            ]
        },
        {
            "report_ids": ["live-42-m0001", "live-42-m0002"],
            "member_ids": [MEMBER_ID, "m-20260105-0002"],
            "minutes": [95, 40],
        },
    )
    class_id: FromRoute = ""
    reports: list[ViewingLine] | None = column(
        "Every viewer's minutes, e.g. the streaming platform's export after a live lecture, one "
        "object a line; a member may appear on several lines (different report ids). Or send "
        "the same as three columns (`report_ids`, `member_ids`, `minutes`) instead."
    )
    report_ids: list[ReportId] | None = column(
        "The columns form, about half the size: line i is (`report_ids[i]`, `member_ids[i]`, "
        "`minutes[i]`), each as in `reports`. The three have one length."
    )
    member_ids: list[MemberId] | None = column("See `report_ids`.")
    minutes: list[Minutes] | None = column("See `report_ids`.")

    def check_form(self) -> None:
        """Refuse a batch in neither form or in both, or with columns of different lengths."""
        given = (self.report_ids, self.member_ids, self.minutes)
        if self.reports is not None:
            if any(c is not None for c in given):
                raise DomainError("reports", "two_forms", "send reports or the columns, not both")
            return
        if any(c is None for c in given):
            name = ("report_ids", "member_ids", "minutes")[given.index(None)]
            raise DomainError(name, "required", "send reports, or all three columns")
        if len({len(c or ()) for c in given}) > 1:
            raise DomainError("member_ids", "length_mismatch", "the columns differ in length")

    def columns(self) -> tuple[list[str], list[str], list[int]]:
        """The batch's lines as (report ids, member ids, minutes), whichever form it came in."""
        self.check_form()
        if self.reports is not None:
            lines = self.reports
            return (
                [line.report_id for line in lines],
                [line.member_id for line in lines],
                [line.minutes for line in lines],
            )
        return self.report_ids or [], self.member_ids or [], self.minutes or []


class RecordScore(OnEnrolment):
    model_config = example({"score": "86.5"})
    score: Decimal = Field(ge=0, max_digits=6, decimal_places=2)


@contextmanager
def fields_renamed(renames: dict[str, str]) -> Iterator[None]:
    """Let a refusal from a domain constructor name the request's field, not the domain's."""
    try:
        yield
    except DomainError as error:
        if error.field not in renames:
            raise
        raise type(error)(renames[error.field], error.code, error.message, **error.extra) from None
