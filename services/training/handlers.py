"""Use cases of the training service: one function per command or followed event, each in one unit
of work. Every function takes ``now`` (an aware datetime in the federation's time zone) from its
caller, so the rules never read a clock of their own.

Seat decisions (enrol, cancel, approve, reject, offers, capacity, no-shows) lock the whole class;
attendance, minutes and scores lock one member's enrolment (see ``repository``). Certificates are
issued in the same transaction as the completion that earns them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from services.training import commands as c
from services.training.certificates import Certificate, new_certificate_number
from services.training.classes import TrainingClass
from services.training.commands import fields_renamed
from services.training.completion import CompletionRule
from services.training.courses import Audience, Course
from services.training.enrolment import Actor, Enrolment
from services.training.members import apply_membership_event
from services.training.policies import EnrolmentWindow, WaitlistPolicy
from services.training.repository import Members
from services.training.sessions import Session
from services.training.unit_of_work import TrainingUnitOfWork, retry_on_deadlock
from shared.consumer import Batched, Handler, Run
from shared.errors import Conflict, DomainError
from shared.events import membership as m
from shared.events.base import EventData
from shared.events.envelope import Envelope

log = logging.getLogger(__name__)
Placed = tuple[TrainingClass, Enrolment]
WINDOW_FIELDS = {"opens_at": "enrolment_opens_at", "closes_at": "enrolment_closes_at"}


# ----- courses and classes -----


async def create_course(cmd: c.CreateCourse, uow: TrainingUnitOfWork) -> Course:
    # Both of Audience's refusals are about the target: missing, or given where none belongs.
    with fields_renamed({"audience": "audience.target"}):
        audience = Audience(cmd.audience.kind, cmd.audience.target)
    with fields_renamed({"completion_rule": "completion"}):
        rule = CompletionRule(**cmd.completion.model_dump())
    course = Course(
        course_id=str(uuid.uuid4()),
        title=cmd.title,
        kind=cmd.kind,
        provider=cmd.provider,
        description=cmd.description,
        audience=audience,
        completion=rule,
    )
    async with uow:
        await uow.courses.add(course)
        await uow.commit()
    return course


def _sessions(bodies: list[c.SessionBody]) -> list[Session]:
    sessions = []
    for i, body in enumerate(bodies):
        fields = {name: f"sessions[{i}].{name}" for name in ("starts_at", "ends_at", "venue")}
        with fields_renamed(fields):
            # Globally unique ids: the check-in code is a MAC of the session id alone.
            sessions.append(
                Session(
                    str(uuid.uuid4()), body.starts_at, body.ends_at, body.venue, body.online_link
                )
            )
    return sessions


async def schedule_class(
    course_id: str, cmd: c.ScheduleClass, uow: TrainingUnitOfWork
) -> TrainingClass:
    sessions = _sessions(cmd.sessions)
    with fields_renamed(WINDOW_FIELDS):
        window = EnrolmentWindow(cmd.enrolment_opens_at, cmd.enrolment_closes_at)
    with fields_renamed({"offer_hours": "waitlist.offer_hours"}):
        waitlist = WaitlistPolicy(**cmd.waitlist.model_dump())
    async with uow:
        course = await uow.courses.get(course_id)
        with fields_renamed(WINDOW_FIELDS):
            tc = TrainingClass.schedule(
                str(uuid.uuid4()),
                course,
                cmd.name,
                sessions,
                cmd.capacity,
                window,
                waitlist,
                cmd.requires_approval,
                cmd.releases_no_shows,
            )
        await uow.classes.add(tc)
        await uow.commit_classes(tc)
    return tc


async def change_capacity(
    class_id: str, cmd: c.ChangeCapacity, uow: TrainingUnitOfWork, now: datetime
) -> TrainingClass:
    async with uow:
        tc = await uow.classes.lock(class_id)
        tc.change_capacity(cmd.capacity, now)
        await uow.commit_classes(tc)
    return tc


# ----- seats -----


@retry_on_deadlock
async def enrol(class_id: str, cmd: c.Enrol, uow: TrainingUnitOfWork, now: datetime) -> Placed:
    async with uow:
        # The member first, then the class: the consumer applying MemberLeft takes them in the
        # same order (it updates the member row before it looks for enrolments to cancel).
        member = await uow.members.get(cmd.member_id, share_lock=True)
        tc = await uow.classes.lock(class_id)
        if member is None:
            raise DomainError("member_id", "not_a_member", "no union member has this id")
        enrolment = tc.enrol(member, now)
        try:
            await uow.commit_classes(tc)
        except asyncpg.UniqueViolationError as clash:
            # Unreachable while the class lock holds; the constraints are the net under it.
            if clash.constraint_name == "enrolments_one_per_member":
                raise Conflict("member_id", "already_enrolled", "already enrolled") from None
            raise Conflict("class_id", "concurrent_change", "the class changed; retry") from None
    return tc, enrolment


async def _seat_change(
    uow: TrainingUnitOfWork, class_id: str, change: Callable[[TrainingClass], Enrolment]
) -> Placed:
    async with uow:
        tc = await uow.classes.lock(class_id)
        enrolment = change(tc)
        await uow.commit_classes(tc)
    return tc, enrolment


async def cancel(
    class_id: str,
    member_id: str,
    cmd: c.Cancel,
    by: Actor,
    uow: TrainingUnitOfWork,
    now: datetime,
) -> Placed:
    return await _seat_change(uow, class_id, lambda tc: tc.cancel(member_id, by, cmd.reason, now))


async def approve(class_id: str, member_id: str, uow: TrainingUnitOfWork, now: datetime) -> Placed:
    return await _seat_change(uow, class_id, lambda tc: tc.approve(member_id, now))


async def reject(
    class_id: str, member_id: str, cmd: c.Reject, uow: TrainingUnitOfWork, now: datetime
) -> Placed:
    return await _seat_change(uow, class_id, lambda tc: tc.reject(member_id, cmd.reason, now))


async def accept_offer(
    class_id: str, member_id: str, uow: TrainingUnitOfWork, now: datetime
) -> Placed:
    return await _seat_change(uow, class_id, lambda tc: tc.accept_offer(member_id, now))


async def release_no_shows(
    class_id: str, uow: TrainingUnitOfWork, now: datetime
) -> tuple[TrainingClass, list[Enrolment]]:
    async with uow:
        tc = await uow.classes.lock(class_id)
        released = tc.release_no_shows(now)
        await uow.commit_classes(tc)
    return tc, released


# ----- attendance, minutes, scores, certificates -----


async def _progress(
    uow: TrainingUnitOfWork,
    class_id: str,
    member_id: str,
    now: datetime,
    change: Callable[[TrainingClass], Enrolment],
) -> Placed:
    async with uow:
        tc = await uow.classes.lock_member(class_id, member_id)
        enrolment = change(tc)
        await _certify(uow, tc, now)
        await uow.commit_classes(tc)
    return tc, enrolment


async def _certify(uow: TrainingUnitOfWork, tc: TrainingClass, now: datetime) -> None:
    """Issue the certificate of every member of ``tc`` who has completed and has none yet."""
    for enrolment in tc.enrolments:
        if enrolment.completed_on is not None and enrolment.certificate is None:
            number = new_certificate_number()
            # 31**10 numbers: a clash is vanishingly rare, but a clash must not fail the request.
            while await uow.certificates.taken(number):
                number = new_certificate_number()
            tc.issue_certificate(enrolment.member_id, number, now)


async def check_in_by_staff(
    class_id: str, session_id: str, cmd: c.StaffCheckIn, uow: TrainingUnitOfWork, now: datetime
) -> Placed:
    return await _progress(
        uow,
        class_id,
        cmd.member_id,
        now,
        lambda tc: tc.check_in_by_staff(session_id, cmd.member_id, now),
    )


async def check_in_with_code(
    class_id: str,
    session_id: str,
    cmd: c.CodeCheckIn,
    secret: bytes,
    uow: TrainingUnitOfWork,
    now: datetime,
) -> Placed:
    return await _progress(
        uow,
        class_id,
        cmd.member_id,
        now,
        lambda tc: tc.check_in_with_code(session_id, cmd.member_id, cmd.code, secret, now),
    )


async def record_score(
    class_id: str, member_id: str, cmd: c.RecordScore, uow: TrainingUnitOfWork, now: datetime
) -> Placed:
    return await _progress(
        uow, class_id, member_id, now, lambda tc: tc.record_score(member_id, cmd.score, now)
    )


async def report_viewing(
    class_id: str, cmd: c.ViewingReport, uow: TrainingUnitOfWork, now: datetime
) -> tuple[Enrolment, bool]:
    """Add a viewing report's minutes; (enrolment, False) when the report id was seen before."""
    async with uow:
        tc = await uow.classes.lock_member(class_id, cmd.member_id)
        enrolment = tc.enrolment_of(cmd.member_id)
        if not await uow.viewing.first_time(cmd.report_id, enrolment.enrolment_id, cmd.minutes):
            return enrolment, False
        tc.record_watched_minutes(cmd.member_id, cmd.minutes, now)
        await _certify(uow, tc, now)
        await uow.commit_classes(tc)
    return enrolment, True


async def certificate(number: str, uow: TrainingUnitOfWork) -> Certificate | None:
    async with uow:
        return await uow.certificates.get(number)


# ----- followed events and the sweep -----


async def member_event(event: m.MemberEvent, uow: TrainingUnitOfWork, now: datetime) -> None:
    """Keep the member view; a member who left loses every enrolment still in play."""
    async with uow:
        view = apply_membership_event(await uow.members.get(event.member_id), event)
        if view is None:
            # Never saw them join: nothing to keep (their MemberJoined will come first).
            await uow.commit()
            return
        await uow.members.save(view)
        changed = []
        if isinstance(event, m.MemberLeft):
            # In class id order, so two consumers (or replicas) lock classes in the same order.
            for class_id in await uow.classes.with_active_enrolment(event.member_id):
                tc = await uow.classes.lock(class_id)
                if tc.member_left(event.member_id, now) is not None:
                    changed.append(tc)
        await uow.commit_classes(*changed)


def membership_handlers(topic: str, clock: Callable[[], datetime]) -> dict[str, Handler]:
    async def follow(conn: asyncpg.Connection, event: EventData, envelope: Envelope) -> None:
        assert isinstance(event, m.MemberEvent)
        uow = TrainingUnitOfWork.joining(conn, topic, envelope)
        await member_event(event, uow, clock())

    async def view_changed(conn: asyncpg.Connection, events: Run) -> None:
        """Every member event but leaving changes the member view alone, no class: a run of them
        (a roster's joins) is two statements, one when it only joins."""
        members = Members(conn)
        joins_only = all(isinstance(e, m.MemberJoined) for e, _ in events)
        known = {} if joins_only else await members.get_many([e.subject() for e, _ in events])
        views = [apply_membership_event(known.get(e.subject()), e) for e, _ in events]
        await members.save_many([view for view in views if view is not None])

    return {m.MemberLeft.type: follow} | dict.fromkeys(
        (
            m.MemberJoined.type,
            m.MemberDetailsChanged.type,
            m.MemberTransferred.type,
            m.MemberSuspended.type,
            m.MemberReinstated.type,
        ),
        Batched(view_changed),
    )


async def sweep(
    new_uow: Callable[[], TrainingUnitOfWork],
    now: datetime,
    no_show_grace: timedelta,
    remind_ahead: timedelta = timedelta(hours=24),
) -> int:
    """Expire overdue offers, apply due no-show rules and send due session reminders, one class
    per transaction.

    The no-show rule waits ``no_show_grace`` after the first session ends, so staff have time to
    record the attendance they took on paper. Confirmed members are reminded of each session
    ``remind_ahead`` before it starts. Returns the number of classes swept.
    """
    uow = new_uow()
    async with uow:
        offers = await uow.classes.with_offers_due(now)
        no_shows = await uow.classes.with_no_shows_due(now - no_show_grace, now)
        reminders = await uow.classes.with_reminders_due(now, now + remind_ahead)
    swept = 0
    for class_id in sorted({*offers, *no_shows, *reminders}):
        uow = new_uow()
        try:
            async with uow:
                tc = await uow.classes.lock(class_id)
                tc.expire_offers(now)
                if class_id in no_shows:
                    tc.release_no_shows(now)
                tc.remind(now, remind_ahead)
                await uow.commit_classes(tc)
        except Exception:  # one class that cannot be swept must not hold up the others
            log.exception("sweeping class %s failed", class_id)
            continue
        swept += 1
    return swept
