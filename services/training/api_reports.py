"""Routes for the federation's roll-ups: per class, per course, per union subtree and year.

Counts are of enrolments, person-times (人次) as the federation reports them (``roll_ups``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Path, Query, Request

from services.training.api import REPORTS, ClassId, CourseId
from services.training.catalogue import one_class
from services.training.reports import Reports
from services.training.repository import Courses
from services.training.roll_ups import count, roll_up_by, roll_up_union
from services.training.views import ClassReport, CountsView, CourseReport, UnionReportView
from shared.auth import Caller, require_scope
from shared.http import router as new_router
from shared.routes import Pool

router = new_router()


def _zone(request: Request) -> str:
    """The federation's calendar, by which a class belongs to a year's report."""
    zone: str = request.app.state.runtime.settings.timezone
    return zone


@router.get("/reports/classes/{class_id}", tags=["reports"], summary="Counts for one class")
async def class_report(
    class_id: ClassId, pool: Pool, request: Request, _: Caller = Depends(require_scope(REPORTS))
) -> ClassReport:
    """Enrolments of the class by status, attendance, completions and certificates.
    404 `unknown_class`."""
    await one_class(pool, class_id)  # 404 for an unknown class
    async with pool.acquire() as conn:
        facts = await Reports(conn, _zone(request)).of_class(class_id)
    return ClassReport(class_id=class_id, **CountsView.model_validate(count(facts)).model_dump())


@router.get(
    "/reports/courses/{course_id}", tags=["reports"], summary="Counts for a course, per class"
)
async def course_report(
    course_id: CourseId, pool: Pool, request: Request, _: Caller = Depends(require_scope(REPORTS))
) -> CourseReport:
    """The course's totals over all its classes, and each class's. 404 `unknown_course`."""
    async with pool.acquire() as conn:
        await Courses(conn).get(course_id)
        facts = await Reports(conn, _zone(request)).of_course(course_id)
    by_class = roll_up_by(facts, "class_id")
    return CourseReport(
        course_id=course_id,
        total=CountsView.model_validate(count(facts)),
        by_class={k: CountsView.model_validate(v) for k, v in by_class.items()},
    )


@router.get(
    "/reports/unions/{union_id}",
    tags=["reports"],
    summary="Counts for a union subtree in one year",
)
async def union_report(
    union_id: Annotated[
        str,
        Path(min_length=1, max_length=64, description="The root of the subtree."),
    ],
    pool: Pool,
    request: Request,
    year: Annotated[
        int,
        Query(
            ge=2000,
            le=2100,
            description="Classes starting in this year, by the federation's "
            "calendar (its time zone).",
            examples=[2026],
        ),
    ],
    caller: Caller = Depends(require_scope(REPORTS)),
) -> UnionReportView:
    """Enrolments of members of the union and every union below it (where they were when they
    enrolled), in classes starting in `year`, in all and per union directly below the root.
    A union nobody enrolled from answers zeros.

    Errors: 403 `organisation_not_allowed` on `union_id` (the credential is limited to other
    organisations)."""
    caller.ensure_organisation(union_id, field="union_id")
    zone = ZoneInfo(_zone(request))
    starts, ends = datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    async with pool.acquire() as conn:
        facts = await Reports(conn, _zone(request)).of_union(union_id, starts, ends)
    return UnionReportView.of(roll_up_union(facts, union_id, year))
