"""Routes for seats (the member portal and staff) and a member's training record.

Seat decisions in a class with seats take the class's lock, so concurrent enrolments take turns;
enrolments in a class without seat limit do not queue (see ``handlers.enrol``). The answers say
where the member stands now (confirmed, waitlisted with a position, awaiting approval...).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from services.training import commands as c
from services.training import handlers
from services.training.api import (
    ENROL,
    MANAGE,
    PAGE_LIMIT,
    ClassId,
    MemberId,
    Uow,
    class_answer,
    on_enrolment,
)
from services.training.enrolment import EnrolmentStatus
from services.training.member_records import MemberRecords
from services.training.rosters import Rosters
from services.training.views import (
    CertificatePage,
    EnrolmentView,
    MemberEnrolmentPage,
    NoShowRelease,
    ProgressView,
    RosterPage,
)
from shared.auth import Caller, require_scope
from shared.http import router as new_router
from shared.inputs import Limit, Offset
from shared.routes import Pool

router = new_router()


# ----- seats: the member portal -----


@router.post(
    "/classes/{class_id}/enrolments", status_code=201, tags=["enrolment"], summary="Enrol a member"
)
async def enrol(
    class_id: ClassId, cmd: c.Enrol, u: Uow, pool: Pool, _: Caller = Depends(require_scope(ENROL))
) -> EnrolmentView:
    """The member portal enrols the member it has signed in. The answer's `status` is where they
    stand: `confirmed`, `pending_approval` (staff approve first), or `waitlisted` (with
    `waitlist_position`) when the class is full. A member who cancelled may enrol again, at the
    back of the queue.

    Not idempotent: a retry after a lost answer gets 409 `already_enrolled`; read the enrolment
    (`GET /classes/{class_id}/enrolments/{member_id}`) to see where it stands.

    Errors: 404 `unknown_class`; 409 `already_enrolled`, `enrolment_rejected` (staff rejected
    this member's enrolment), `concurrent_change` (retry); 422 on `member_id`: `not_a_member`
    (training has not heard of this member: just joined? retry shortly), `member_suspended`,
    `member_left`, `cadres_only`, `not_in_category`, `outside_union_subtree` (not in the
    course's audience); 422 on `enrolment_window`: `not_yet_open`, `closed`; 422 `class_full` on
    `class_id` (full and no waitlist)."""
    enrolment = await handlers.enrol(cmd.about(class_id=class_id), u)
    if enrolment.status is EnrolmentStatus.WAITLISTED:  # its place in line is counted afresh
        return await Rosters(pool).enrolment(class_id, enrolment.member_id)
    # The enrolment as this request wrote it: a city-wide lecture's enrolments are answered
    # without reading each one back.
    return EnrolmentView.of_written(enrolment)


@router.get(
    "/classes/{class_id}/enrolments/{member_id}",
    tags=["enrolment"],
    summary="A member's enrolment and what they still lack",
)
async def my_enrolment(
    class_id: ClassId,
    member_id: MemberId,
    pool: Pool,
    u: Uow,
    _: Caller = Depends(require_scope(ENROL)),
) -> ProgressView:
    """The member's enrolment in one class, with `missing_for_completion`: each criterion of the
    course's completion rule not met yet (attendance, score, minutes watched), what is needed
    and what the member has.

    Errors: 404 `unknown_class`, `not_enrolled` on `member_id`."""
    enrolment = await Rosters(pool).enrolment(class_id, member_id)
    async with u:
        tc = await u.classes.with_member(class_id, member_id)
    return ProgressView.of_member(enrolment, tc.completion_of(member_id))


on_enrolment(
    router,
    "/classes/{class_id}/enrolments/{member_id}/cancellation",
    command=c.Cancel,
    handler=handlers.cancel,
    scope=ENROL,
    tags=["enrolment"],
    name="cancel_own",
    summary="The member cancels their enrolment",
    description="""\
The member gives up their seat or their place in line (declining an offer is cancelling
too); the seat goes to the next in line at once. Records `EnrolmentCancelled`.

Errors: 404 `unknown_class`, `not_enrolled`; 409 `already_cancelled` / `already_rejected`
(nothing to cancel: a repeated cancellation lands here); 422 `class_ended` (a confirmed
enrolment of a class that is over stays on record).""",
)
on_enrolment(
    router,
    "/classes/{class_id}/enrolments/{member_id}/offer-acceptance",
    command=c.AcceptOffer,
    handler=handlers.accept_offer,
    scope=ENROL,
    tags=["enrolment"],
    name="accept_offer",
    summary="The member accepts an offered seat",
    description="""\
A waitlisted member offered a seat (`status` `offered`) takes it before
`offer_expires_at`: they are confirmed, or await approval if the class requires it.

Errors: 404 `unknown_class`, `not_enrolled`; 409 `not_offered` (no offer to accept: already
accepted, or it expired and was cancelled); 422 `offer_expired`.""",
)


# ----- seats: staff -----


@router.get("/classes/{class_id}/enrolments", tags=["enrolment"], summary="A class's roster")
async def roster(
    class_id: ClassId,
    pool: Pool,
    status: Annotated[EnrolmentStatus | None, Query(description="Only this status.")] = None,
    offset: Offset = 0,
    limit: Limit = PAGE_LIMIT,
    _: Caller = Depends(require_scope(MANAGE)),
) -> RosterPage:
    """Staff's list of the class's enrolments in enrolment order, a page at a time, cancelled
    and rejected ones included unless `status` picks one status (e.g. `pending_approval` for
    the approval queue, `waitlisted` for the line). 404 `unknown_class`."""
    return await Rosters(pool).page(class_id, status, offset, limit)


on_enrolment(
    router,
    "/classes/{class_id}/enrolments/{member_id}/approval",
    command=c.Approve,
    handler=handlers.approve,
    scope=MANAGE,
    tags=["enrolment"],
    name="approve",
    summary="Staff approve an enrolment",
    description="""\
An enrolment awaiting approval is confirmed (its seat was held since it was made).

Errors: 404 `unknown_class`, `not_enrolled`; 409 `not_pending_approval` (approved, rejected
or cancelled already: a repeated approval lands here).""",
)
on_enrolment(
    router,
    "/classes/{class_id}/enrolments/{member_id}/rejection",
    command=c.Reject,
    handler=handlers.reject,
    scope=MANAGE,
    tags=["enrolment"],
    name="reject",
    summary="Staff reject an enrolment",
    description="""\
An enrolment awaiting approval is turned down with a reason the member is told; its seat
goes to the next in line. The member cannot enrol in this class again.

Errors: 404 `unknown_class`, `not_enrolled`; 409 `not_pending_approval`.""",
)
on_enrolment(
    router,
    "/classes/{class_id}/enrolments/{member_id}/staff-cancellation",
    command=c.Cancel,
    handler=handlers.cancel_by_staff,
    scope=MANAGE,
    tags=["enrolment"],
    name="cancel_by_staff",
    summary="Staff cancel an enrolment",
    description="""\
As the member's own cancellation, recorded as staff's, with their reason.

Errors: 404 `unknown_class`, `not_enrolled`; 409 `already_cancelled` / `already_rejected`;
422 `class_ended`.""",
)


@router.post(
    "/classes/{class_id}/no-show-release",
    tags=["enrolment"],
    summary="Release the seats of the first session's no-shows",
)
async def release_no_shows(
    class_id: ClassId, u: Uow, pool: Pool, _: Caller = Depends(require_scope(MANAGE))
) -> NoShowRelease:
    """For a class with `releases_no_shows`: confirmed members absent from the first session lose
    their seat to the waitlist. The sweep does it on its own some hours after the first session;
    staff call this once they have recorded attendance. Runs once per class: later calls (and
    calls before the first session ends or after the class ends) release nothing.
    404 `unknown_class`."""
    released = await handlers.release_no_shows(c.ReleaseNoShows().about(class_id=class_id), u)
    after = await class_answer(pool, class_id, _)
    return NoShowRelease.of_release(after, [e.member_id for e in released])


# ----- a member's record -----


@router.get(
    "/members/{member_id}/enrolments",
    tags=["member record"],
    summary="A member's enrolments in every class",
)
async def member_enrolments(
    member_id: MemberId,
    pool: Pool,
    status: Annotated[EnrolmentStatus | None, Query(description="Only this status.")] = None,
    offset: Offset = 0,
    limit: Limit = PAGE_LIMIT,
    _: Caller = Depends(require_scope(ENROL)),
) -> MemberEnrolmentPage:
    """The member portal's "my training": every enrolment of the member, the latest class first,
    with its class, course, status, attendance, minutes, score, completion and certificate. A
    member training has not heard of (or who never enrolled) has an empty page, not a 404."""
    async with pool.acquire() as conn:
        return await MemberRecords(conn).enrolments(
            member_id, status=status, offset=offset, limit=limit
        )


@router.get(
    "/members/{member_id}/certificates",
    tags=["member record"],
    summary="A member's certificates",
)
async def member_certificates(
    member_id: MemberId,
    pool: Pool,
    offset: Offset = 0,
    limit: Limit = PAGE_LIMIT,
    _: Caller = Depends(require_scope(ENROL)),
) -> CertificatePage:
    """Every certificate issued to the member, the latest first, holder's name masked. Each
    number can be checked by anyone at `GET /certificates/{number}/verification`. An empty page
    for a member without certificates."""
    async with pool.acquire() as conn:
        return await MemberRecords(conn).certificates(member_id, offset=offset, limit=limit)
