"""HTTP routes of the training service: validate, call a handler, shape the answer.

Every route declares the scope it needs next to itself:

* ``training:manage``  staff: courses, classes, capacity, approval, cancellation, attendance, scores
* ``training:read``    the catalogue: courses, classes and their sessions
* ``training:enrol``   the member portal, acting for the member it has signed in: enrol, see and
                       cancel their own enrolment, accept an offer, check in with a session's code
* ``training:viewing`` the streaming side: minutes of online lectures watched
* ``reports:read``     the roll-ups

The one exception is the public certificate verification, which needs no credential and answers
only what a certificate's holder shows anyway, masked (see ``api_public``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from services.training import commands as c
from services.training import handlers
from services.training.enrolment import Actor
from services.training.reports import count, roll_up_by, roll_up_union
from services.training.repository import Reports
from services.training.sessions import session_code
from services.training.unit_of_work import TrainingUnitOfWork
from services.training.views import (
    class_view,
    counts_view,
    course_view,
    enrolment_view,
    progress_view,
    union_report_view,
)
from shared.auth import Caller, require_scope

router = APIRouter()
MANAGE = "training:manage"
READ = "training:read"
ENROL = "training:enrol"
VIEWING = "training:viewing"
REPORTS = "reports:read"


def uow(request: Request) -> TrainingUnitOfWork:
    runtime = request.app.state.runtime
    return TrainingUnitOfWork(runtime.pool, runtime.settings.events_topic)


def now(request: Request) -> datetime:
    clock = request.app.state.clock
    moment: datetime = clock()
    return moment


Uow = Annotated[TrainingUnitOfWork, Depends(uow)]
Now = Annotated[datetime, Depends(now)]


# ----- catalogue (staff write, everyone signed reads) -----


@router.post("/courses", status_code=201, tags=["courses"])
async def create_course(
    cmd: c.CreateCourse, u: Uow, _: Caller = Depends(require_scope(MANAGE))
) -> dict[str, Any]:
    return course_view(await handlers.create_course(cmd, u))


@router.get("/courses/{course_id}", tags=["courses"])
async def get_course(
    course_id: str, u: Uow, _: Caller = Depends(require_scope(READ))
) -> dict[str, Any]:
    async with u:
        return course_view(await u.courses.get(course_id))


@router.get("/courses/{course_id}/classes", tags=["courses"])
async def list_classes(
    course_id: str, u: Uow, _: Caller = Depends(require_scope(READ))
) -> list[dict[str, Any]]:
    async with u:
        await u.courses.get(course_id)  # 404 for an unknown course, not an empty list
        return [class_view(await u.classes.get(i)) for i in await u.courses.class_ids(course_id)]


@router.post("/courses/{course_id}/classes", status_code=201, tags=["classes"])
async def schedule_class(
    course_id: str, cmd: c.ScheduleClass, u: Uow, _: Caller = Depends(require_scope(MANAGE))
) -> dict[str, Any]:
    return class_view(await handlers.schedule_class(course_id, cmd, u))


@router.get("/classes/{class_id}", tags=["classes"])
async def get_class(
    class_id: str, u: Uow, _: Caller = Depends(require_scope(READ))
) -> dict[str, Any]:
    async with u:
        return class_view(await u.classes.get(class_id))


@router.put("/classes/{class_id}/capacity", tags=["classes"])
async def change_capacity(
    class_id: str,
    cmd: c.ChangeCapacity,
    u: Uow,
    at: Now,
    _: Caller = Depends(require_scope(MANAGE)),
) -> dict[str, Any]:
    return class_view(await handlers.change_capacity(class_id, cmd, u, at))


@router.get("/classes/{class_id}/enrolments", tags=["enrolment"])
async def roster(
    class_id: str, u: Uow, _: Caller = Depends(require_scope(MANAGE))
) -> list[dict[str, Any]]:
    async with u:
        tc = await u.classes.get(class_id)
    return [enrolment_view(tc, e) for e in sorted(tc.enrolments, key=lambda e: e.sequence)]


# ----- seats: the member portal -----


@router.post("/classes/{class_id}/enrolments", status_code=201, tags=["enrolment"])
async def enrol(
    class_id: str, cmd: c.Enrol, u: Uow, at: Now, _: Caller = Depends(require_scope(ENROL))
) -> dict[str, Any]:
    return enrolment_view(*await handlers.enrol(class_id, cmd, u, at))


@router.get("/classes/{class_id}/enrolments/{member_id}", tags=["enrolment"])
async def my_enrolment(
    class_id: str, member_id: str, u: Uow, _: Caller = Depends(require_scope(ENROL))
) -> dict[str, Any]:
    async with u:
        tc = await u.classes.get(class_id)
    return progress_view(tc, tc.enrolment_of(member_id))


@router.post("/classes/{class_id}/enrolments/{member_id}/cancellation", tags=["enrolment"])
async def cancel_own(
    class_id: str,
    member_id: str,
    cmd: c.Cancel,
    u: Uow,
    at: Now,
    _: Caller = Depends(require_scope(ENROL)),
) -> dict[str, Any]:
    return enrolment_view(*await handlers.cancel(class_id, member_id, cmd, Actor.MEMBER, u, at))


@router.post("/classes/{class_id}/enrolments/{member_id}/offer-acceptance", tags=["enrolment"])
async def accept_offer(
    class_id: str, member_id: str, u: Uow, at: Now, _: Caller = Depends(require_scope(ENROL))
) -> dict[str, Any]:
    return enrolment_view(*await handlers.accept_offer(class_id, member_id, u, at))


# ----- seats: staff -----


@router.post("/classes/{class_id}/enrolments/{member_id}/approval", tags=["enrolment"])
async def approve(
    class_id: str, member_id: str, u: Uow, at: Now, _: Caller = Depends(require_scope(MANAGE))
) -> dict[str, Any]:
    return enrolment_view(*await handlers.approve(class_id, member_id, u, at))


@router.post("/classes/{class_id}/enrolments/{member_id}/rejection", tags=["enrolment"])
async def reject(
    class_id: str,
    member_id: str,
    cmd: c.Reject,
    u: Uow,
    at: Now,
    _: Caller = Depends(require_scope(MANAGE)),
) -> dict[str, Any]:
    return enrolment_view(*await handlers.reject(class_id, member_id, cmd, u, at))


@router.post("/classes/{class_id}/enrolments/{member_id}/staff-cancellation", tags=["enrolment"])
async def cancel_by_staff(
    class_id: str,
    member_id: str,
    cmd: c.Cancel,
    u: Uow,
    at: Now,
    _: Caller = Depends(require_scope(MANAGE)),
) -> dict[str, Any]:
    return enrolment_view(*await handlers.cancel(class_id, member_id, cmd, Actor.STAFF, u, at))


@router.post("/classes/{class_id}/no-show-release", tags=["enrolment"])
async def release_no_shows(
    class_id: str, u: Uow, at: Now, _: Caller = Depends(require_scope(MANAGE))
) -> dict[str, Any]:
    tc, released = await handlers.release_no_shows(class_id, u, at)
    return class_view(tc) | {"released_member_ids": [e.member_id for e in released]}


# ----- attendance, minutes, scores -----


@router.get("/classes/{class_id}/sessions/{session_id}/check-in-code", tags=["attendance"])
async def check_in_code(
    class_id: str,
    session_id: str,
    u: Uow,
    request: Request,
    _: Caller = Depends(require_scope(MANAGE)),
) -> dict[str, Any]:
    """The code staff show (or print as a QR code) in the room; valid only during the session."""
    async with u:
        session = (await u.classes.get(class_id)).session(session_id)
    code = session_code(request.app.state.check_in_secret, session.session_id)
    return {
        "class_id": class_id,
        "session_id": session.session_id,
        "code": code,
        "valid_from": session.check_in_opens_at.isoformat(),
        "valid_until": session.ends_at.isoformat(),
        # Digits, capitals and ':' only besides the session id: small in a QR code.
        "qr_text": f"GHTRAIN:{session.session_id}:{code}",
    }


@router.post("/classes/{class_id}/sessions/{session_id}/attendance", tags=["attendance"])
async def check_in_by_staff(
    class_id: str,
    session_id: str,
    cmd: c.StaffCheckIn,
    u: Uow,
    at: Now,
    _: Caller = Depends(require_scope(MANAGE)),
) -> dict[str, Any]:
    return enrolment_view(*await handlers.check_in_by_staff(class_id, session_id, cmd, u, at))


@router.post("/classes/{class_id}/sessions/{session_id}/check-in", tags=["attendance"])
async def check_in_with_code(
    class_id: str,
    session_id: str,
    cmd: c.CodeCheckIn,
    u: Uow,
    at: Now,
    request: Request,
    _: Caller = Depends(require_scope(ENROL)),
) -> dict[str, Any]:
    secret = request.app.state.check_in_secret
    placed = await handlers.check_in_with_code(class_id, session_id, cmd, secret, u, at)
    return enrolment_view(*placed)


@router.put("/classes/{class_id}/enrolments/{member_id}/score", tags=["attendance"])
async def record_score(
    class_id: str,
    member_id: str,
    cmd: c.RecordScore,
    u: Uow,
    at: Now,
    _: Caller = Depends(require_scope(MANAGE)),
) -> dict[str, Any]:
    return enrolment_view(*await handlers.record_score(class_id, member_id, cmd, u, at))


@router.post("/classes/{class_id}/viewing-reports", tags=["attendance"])
async def report_viewing(
    class_id: str,
    cmd: c.ViewingReport,
    u: Uow,
    at: Now,
    _: Caller = Depends(require_scope(VIEWING)),
) -> dict[str, Any]:
    """Minutes a member watched; a report id sent again is acknowledged and not counted again."""
    enrolment, counted = await handlers.report_viewing(class_id, cmd, u, at)
    return {
        "report_id": cmd.report_id,
        "counted": counted,
        "member_id": enrolment.member_id,
        "watched_minutes": enrolment.watched_minutes,
        "completed_on": enrolment.completed_on.isoformat() if enrolment.completed_on else None,
        "certificate_number": enrolment.certificate.number if enrolment.certificate else None,
    }


# ----- reports -----


def _reports(u: TrainingUnitOfWork, request: Request) -> Reports:
    return Reports(u.conn, request.app.state.zone.key)


@router.get("/reports/classes/{class_id}", tags=["reports"])
async def class_report(
    class_id: str, u: Uow, request: Request, _: Caller = Depends(require_scope(REPORTS))
) -> dict[str, Any]:
    async with u:
        await u.classes.get(class_id)  # 404 for an unknown class
        facts = await _reports(u, request).of_class(class_id)
    return {"class_id": class_id, **counts_view(count(facts))}


@router.get("/reports/courses/{course_id}", tags=["reports"])
async def course_report(
    course_id: str, u: Uow, request: Request, _: Caller = Depends(require_scope(REPORTS))
) -> dict[str, Any]:
    async with u:
        await u.courses.get(course_id)
        facts = await _reports(u, request).of_course(course_id)
    return {
        "course_id": course_id,
        "total": counts_view(count(facts)),
        "by_class": {k: counts_view(v) for k, v in roll_up_by(facts, "class_id").items()},
    }


@router.get("/reports/unions/{union_id}", tags=["reports"])
async def union_report(
    union_id: str,
    u: Uow,
    request: Request,
    year: Annotated[int, Query(ge=2000, le=2100)],
    caller: Caller = Depends(require_scope(REPORTS)),
) -> dict[str, Any]:
    """A union subtree's enrolments in one year's classes (by the federation's calendar)."""
    caller.ensure_organisation(union_id, field="union_id")
    zone = request.app.state.zone
    starts, ends = datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    async with u:
        facts = await _reports(u, request).of_union(union_id, starts, ends)
    return union_report_view(roll_up_union(facts, union_id, year))
