"""Routes for attendance, minutes watched and scores: what completion (and a certificate) rests on.

Each locks one member's enrolment only, so a room checking in at once does not queue on the class.
A change that completes the course issues its certificate in the same transaction; the answer
carries its number.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from services.training import commands as c
from services.training import handlers, viewing_export
from services.training.api import ENROL, MANAGE, VIEWING, ClassId, Uow, on_enrolment
from services.training.rosters import Rosters
from services.training.sessions import session_code
from services.training.views import (
    CheckInCode,
    EnrolmentView,
    RefusedViewing,
    ViewingAcknowledgement,
    ViewingBatchOutcome,
)
from shared.auth import Caller, require_scope
from shared.http import router as new_router
from shared.routes import Pool

router = new_router()
SessionId = Annotated[str, Path(min_length=1, max_length=64, description="A session id.")]


@router.get(
    "/classes/{class_id}/sessions/{session_id}/check-in-code",
    tags=["attendance"],
    summary="The check-in code staff show in the room",
)
async def check_in_code(
    class_id: ClassId,
    session_id: SessionId,
    u: Uow,
    _: Caller = Depends(require_scope(MANAGE)),
) -> CheckInCode:
    """The session's code, to show on screen or print as a QR code (`qr_text`). Members type or
    scan it in the portal (`POST .../check-in`); it is accepted from `valid_from` (30 minutes
    before the start) until `valid_until` (the end). The same code every time for a session.

    Errors: 404 `unknown_class`, `unknown_session` on `session_id`."""
    async with u:
        session = (await u.classes.timetable(class_id)).session(session_id)
    code = session_code(u.check_in_secret, session.session_id)
    return CheckInCode(
        class_id=class_id,
        session_id=session.session_id,
        code=code,
        valid_from=session.check_in_opens_at,
        valid_until=session.ends_at,
        # Digits, capitals and ':' only besides the session id: small in a QR code.
        qr_text=f"GHTRAIN:{session.session_id}:{code}",
    )


@router.post(
    "/classes/{class_id}/sessions/{session_id}/attendance",
    tags=["attendance"],
    summary="Staff record that a member attended",
)
async def check_in_by_staff(
    class_id: ClassId,
    session_id: SessionId,
    cmd: c.StaffCheckIn,
    u: Uow,
    pool: Pool,
    _: Caller = Depends(require_scope(MANAGE)),
) -> EnrolmentView:
    """From the paper list or the door: allowed from 30 minutes before the session starts, and
    any time after it. Idempotent: a member already checked in stays checked in once. May
    complete the course and issue the certificate (`certificate_number`).

    Errors: 404 `unknown_class`, `unknown_session`, `not_enrolled`; 422 `not_confirmed` on
    `member_id` (only confirmed members attend), `session_not_started` on `session_id`."""
    await handlers.check_in_by_staff(cmd.about(class_id=class_id, session_id=session_id), u)
    return await Rosters(pool).enrolment(class_id, cmd.member_id)


@router.post(
    "/classes/{class_id}/sessions/{session_id}/check-in",
    tags=["attendance"],
    summary="The member checks in with the session's code",
)
async def check_in_with_code(
    class_id: ClassId,
    session_id: SessionId,
    cmd: c.CodeCheckIn,
    u: Uow,
    pool: Pool,
    _: Caller = Depends(require_scope(ENROL)),
) -> EnrolmentView:
    """The member portal sends the code the member typed or scanned (spaces, hyphens and case do
    not matter). Idempotent: checking in twice records one attendance.

    Errors: 404 `unknown_class`, `unknown_session`, `not_enrolled`; 422 on `code`: `wrong_code`,
    `code_not_yet_valid` (more than 30 minutes before the start), `code_expired` (the session is
    over: staff can still record it); 422 `not_confirmed` on `member_id`."""
    await handlers.check_in_with_code(cmd.about(class_id=class_id, session_id=session_id), u)
    return await Rosters(pool).enrolment(class_id, cmd.member_id)


on_enrolment(
    router,
    "/classes/{class_id}/enrolments/{member_id}/score",
    method="PUT",
    command=c.RecordScore,
    handler=handlers.record_score,
    scope=MANAGE,
    tags=["attendance"],
    name="record_score",
    summary="Record a member's assessment score",
    description="""\
Record or correct the score (up to two decimals). Idempotent: the same score again changes
nothing. A passing score may complete the course; a completion is never undone by a lower
correction.

Errors: 404 `unknown_class`, `not_enrolled`; 422 `no_assessment` on `score` (the course has no
pass mark), `not_confirmed` on `member_id`.""",
)


@router.post(
    "/classes/{class_id}/viewing-reports",
    tags=["attendance"],
    summary="Minutes of an online lecture a member watched",
)
async def report_viewing(
    class_id: ClassId,
    cmd: c.ViewingReport,
    u: Uow,
    _: Caller = Depends(require_scope(VIEWING)),
) -> ViewingAcknowledgement:
    """The streaming side reports minutes watched (live or replay), at most a day's worth per
    report. Idempotent by `report_id`: a report sent again is acknowledged with `counted` false
    and not counted twice, so resend whenever unsure. Enough minutes complete the course.

    Errors: 404 `unknown_class`, `not_enrolled` on `member_id`; 422 `not_confirmed` on
    `member_id`."""
    enrolment, counted = await handlers.report_viewing(cmd.about(class_id=class_id), u)
    return ViewingAcknowledgement(
        report_id=cmd.report_id,
        counted=counted,
        member_id=enrolment.member_id,
        watched_minutes=enrolment.watched_minutes,
        completed_on=enrolment.completed_on,
        certificate_number=enrolment.certificate.number if enrolment.certificate else None,
    )


@router.post(
    "/classes/{class_id}/viewing-reports/batches",
    tags=["attendance"],
    summary="Minutes every viewer of an online lecture watched, in one batch",
    # Read from the raw body a slice at a time (services.training.viewing_export), not as a
    # ViewingBatch parameter: published with the same schema.
    openapi_extra={"requestBody": viewing_export.REQUEST_BODY},
)
async def report_viewing_batch(
    class_id: ClassId,
    request: Request,
    u: Uow,
    _: Caller = Depends(require_scope(VIEWING)),
) -> ViewingBatchOutcome:
    """The streaming side's export after a lecture: up to 300,000 viewers' minutes in one body
    (at most 24 MiB), applied in transactions of 2,000 lines in order. Send `reports` (one object a
    line) or, about half the size, three columns of one length: `report_ids`, `member_ids` and
    `minutes` (300,000 viewers with 20-character report ids: about 12 MB). Each line is
    idempotent by its `report_id` as a single report is: a batch sent again counts nothing twice
    (its lines come back under `repeated`), so resend whenever unsure. Enough minutes complete
    the course and issue the certificate (`CourseCompleted`, `CertificateIssued` per member).

    A line for a member with no enrolment (`not_enrolled`) or one not confirmed
    (`not_confirmed`) is refused on its own under `refused`; the other lines count.

    Errors: 404 `unknown_class`; 422 on `reports[i]...` or `member_ids[i]`... for a malformed
    line, `two_forms` (both forms sent), `required` (a column missing), `length_mismatch` on
    `member_ids` (the whole batch is refused, nothing counted); 413 for a body over 24 MiB
    (split it). A batch cut short by an error (a 5xx) may have counted its first slices: resend
    it whole."""
    export = await viewing_export.read(request, class_id)
    outcome = await handlers.report_viewing_batch(export, u)
    return ViewingBatchOutcome(
        counted=outcome.counted,
        repeated=outcome.repeated,
        refused=[
            RefusedViewing(report_id=r, member_id=m, code=code) for r, m, code in outcome.refused
        ],
        completed=outcome.completed,
        certified=outcome.certified,
    )
