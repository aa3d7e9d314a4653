"""HTTP routes of the training service: validate, call a handler, shape the answer.

Every route declares the scope it needs next to itself:

* ``training:manage``  staff: courses, classes, capacity, approval, cancellation, attendance, scores
* ``training:read``    the catalogue: courses, classes and their sessions
* ``training:enrol``   the member portal, acting for the member it has signed in: enrol, see and
                       cancel their own enrolment, accept an offer, check in with a session's code,
                       see their enrolments and certificates across classes
* ``training:viewing`` the streaming side: minutes of online lectures watched
* ``reports:read``     the roll-ups

The one exception is the public certificate verification, which needs no credential and answers
only what a certificate's holder shows anyway, masked (see ``api_public``).

The routes live in a few modules: this one (the catalogue and what they all share),
``api_enrolment`` (seats and a member's record), ``api_attendance`` (attendance, minutes,
scores), ``api_reports`` and ``api_public``.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Depends, Path, Query

from services.training import commands as c
from services.training import handlers
from services.training.catalogue import Catalogue, one_class
from services.training.courses import AudienceKind, CourseKind
from services.training.repository import Courses
from services.training.rosters import Rosters
from services.training.unit_of_work import TrainingUnitOfWork
from services.training.views import ClassPage, ClassView, CoursePage, CourseView, EnrolmentView
from shared.auth import Caller, require_scope
from shared.http import router as new_router
from shared.inputs import IsoDateTime, Limit, Offset
from shared.routes import Pool, action, unit_of_work

router = new_router()
MANAGE = "training:manage"
READ = "training:read"
ENROL = "training:enrol"
VIEWING = "training:viewing"
REPORTS = "reports:read"

Uow = Annotated[TrainingUnitOfWork, Depends(unit_of_work)]

# Ids the service made (UUIDs) or membership's member ids: 64 characters is plenty for either.
CourseId = Annotated[str, Path(min_length=1, max_length=64, description="A course id.")]
ClassId = Annotated[str, Path(min_length=1, max_length=64, description="A class id.")]
MemberId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The member's id in the membership service.",
        examples=["m-20260105-0001"],
    ),
]
OpenForEnrolment = Annotated[
    bool | None,
    Query(
        description="true: only those with a class taking enrolments now; false: only those "
        "without one; absent: all."
    ),
]
# A page: ``offset`` items skipped, at most ``limit`` returned.
PAGE_LIMIT = 50


async def class_answer(pool: Pool, class_id: str, caller: Caller) -> ClassView:
    """A class as it is now, for every answer about one class."""
    return await one_class(pool, class_id)


async def enrolment_answer(pool: Pool, class_id: str, member_id: str, _: Caller) -> EnrolmentView:
    """A member's enrolment in a class as it is now, for every answer about one enrolment."""
    return await Rosters(pool).enrolment(class_id, member_id)


# An action on one member's enrolment in one class (``/classes/{class_id}/enrolments/{member_id}/
# <verb>``), answered with the enrolment as it is now.
on_enrolment = partial(
    action,
    uow=Uow,
    answer=enrolment_answer,
    response_model=EnrolmentView,
    subject=ClassId,
    path_types={"member_id": MemberId},
)


# ----- catalogue (staff write, everyone signed reads) -----


@router.post("/courses", status_code=201, tags=["courses"], summary="Create a course")
async def create_course(
    cmd: c.CreateCourse, u: Uow, _: Caller = Depends(require_scope(MANAGE))
) -> CourseView:
    """Staff add a course to the catalogue: what is taught, by whom, to whom (the audience) and
    what completing it takes (the completion rule). Classes of the course are scheduled next
    (`POST /courses/{course_id}/classes`).

    Not idempotent: each call creates a new course with a new `course_id`.

    Errors (422): `target_required` / `unexpected_target` on `audience.target` (a `category` or
    `union_subtree` audience needs a target, the others take none); `no_criterion` on
    `completion` (a rule needs at least one criterion)."""
    return CourseView.model_validate(await handlers.create_course(cmd, u))


@router.get("/courses", tags=["courses"], summary="Find courses")
async def list_courses(
    pool: Pool,
    u: Uow,
    title: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Any part of the title, any case."),
    ] = None,
    kind: CourseKind | None = None,
    audience: Annotated[
        AudienceKind | None, Query(description="Courses for this kind of audience.")
    ] = None,
    open_for_enrolment: OpenForEnrolment = None,
    offset: Offset = 0,
    limit: Limit = PAGE_LIMIT,
    _: Caller = Depends(require_scope(READ)),
) -> CoursePage:
    """The catalogue a page at a time, newest course first: for the member portal's course list
    and staff's course search. Filters combine (all must hold). Follow `next_offset` for the
    next page; `total` counts every match."""
    return await Catalogue(pool).courses(
        u.clock.now(),
        title=title,
        kind=kind,
        audience=audience,
        open_for_enrolment=open_for_enrolment,
        offset=offset,
        limit=limit,
    )


@router.get("/courses/{course_id}", tags=["courses"], summary="A course")
async def get_course(
    course_id: CourseId, pool: Pool, _: Caller = Depends(require_scope(READ))
) -> CourseView:
    """One course of the catalogue. 404 `unknown_course` if there is none with this id."""
    async with pool.acquire() as conn:
        return CourseView.model_validate(await Courses(conn).get(course_id))


@router.get("/courses/{course_id}/classes", tags=["courses"], summary="Classes of a course")
async def list_course_classes(
    course_id: CourseId,
    pool: Pool,
    u: Uow,
    open_for_enrolment: OpenForEnrolment = None,
    offset: Offset = 0,
    limit: Limit = PAGE_LIMIT,
    _: Caller = Depends(require_scope(READ)),
) -> ClassPage:
    """The course's classes a page at a time, in the order they start, with their sessions and
    free seats. 404 `unknown_course` for an unknown course (not an empty page)."""
    async with pool.acquire() as conn:
        await Courses(conn).get(course_id)
        return await Catalogue(conn).classes(
            u.clock.now(),
            course_id=course_id,
            open_for_enrolment=open_for_enrolment,
            offset=offset,
            limit=limit,
        )


@router.post(
    "/courses/{course_id}/classes", status_code=201, tags=["classes"], summary="Schedule a class"
)
async def schedule_class(
    course_id: CourseId,
    cmd: c.ScheduleClass,
    u: Uow,
    pool: Pool,
    _: Caller = Depends(require_scope(MANAGE)),
) -> ClassView:
    """Staff schedule a class of a course: its sessions, seats, enrolment window, waitlist and
    approval. Members enrol from `enrolment_opens_at` until `enrolment_closes_at`. Records
    `ClassScheduled`.

    Not idempotent: each call schedules a new class.

    Errors: 404 `unknown_course`; 422 `before_start` on `sessions[i].ends_at` (a session must end
    after it starts), `required` on `sessions[i].venue` (a venue or an online link),
    `before_opening` on `enrolment_closes_at`, `after_class_end` on `enrolment_closes_at`
    (enrolment cannot stay open after the last session ends), `required` on `name`."""
    tc = await handlers.schedule_class(cmd.about(course_id=course_id), u)
    return await one_class(pool, tc.class_id)


@router.get("/classes", tags=["classes"], summary="Find classes")
async def list_classes(
    pool: Pool,
    u: Uow,
    course_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    open_for_enrolment: OpenForEnrolment = None,
    starts_from: Annotated[
        IsoDateTime | None, Query(description="Classes starting at or after this instant.")
    ] = None,
    starts_before: Annotated[
        IsoDateTime | None, Query(description="Classes starting before this instant.")
    ] = None,
    offset: Offset = 0,
    limit: Limit = PAGE_LIMIT,
    _: Caller = Depends(require_scope(READ)),
) -> ClassPage:
    """Classes of every course a page at a time, in the order they start: e.g. what is open for
    enrolment now, or this month's classes for staff's calendar. Filters combine; instants need
    their UTC offset (`2026-07-01T00:00:00+08:00`). An unknown `course_id` is an empty page."""
    return await Catalogue(pool).classes(
        u.clock.now(),
        course_id=course_id,
        open_for_enrolment=open_for_enrolment,
        starts_from=starts_from,
        starts_before=starts_before,
        offset=offset,
        limit=limit,
    )


@router.get("/classes/{class_id}", tags=["classes"], summary="A class")
async def get_class(
    class_id: ClassId, pool: Pool, _: Caller = Depends(require_scope(READ))
) -> ClassView:
    """One class with its sessions, seats held and free, and the waitlist's length. 404
    `unknown_class` if there is none with this id."""
    return await one_class(pool, class_id)


action(
    router,
    "/classes/{class_id}/capacity",
    method="PUT",
    command=c.ChangeCapacity,
    handler=handlers.change_capacity,
    uow=Uow,
    scope=MANAGE,
    answer=class_answer,
    response_model=ClassView,
    subject=ClassId,
    tags=["classes"],
    summary="Change a class's seats",
    description="""Staff set the number of seats (null: no limit). More seats go to the waitlist at
once, in enrolment order, as the class's promotion policy says. Idempotent: the same capacity
again changes nothing.

Errors: 404 `unknown_class`; 422 `below_seats_held` on `capacity` (fewer seats than are already
held: the answer's `seats_held` says how many; cancel enrolments first).""",
)
