"""Use cases of the training service: ``async def use_case(cmd, uow)``, each in one unit of work.

The command names what the use case acts on (its route fills those fields); the time is
``uow.clock``'s. Repositories hand every class they load to the unit of work, which sends the
class's events with the change: a use case saves what it changed and never publishes a class's
events itself.

Enrolling touches the class's counters and the member's own enrolment; seat decisions that may
serve the waitlist lock the whole class; attendance, minutes and scores lock the members' own
enrolments (see ``class_repository``). Certificates are issued in the same transaction as the
completion that earns them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.training import commands as c
from services.training.certificates import Certificate, new_certificate_number
from services.training.classes import TrainingClass
from services.training.commands import fields_renamed
from services.training.completion import CompletionRule
from services.training.courses import Audience, Course
from services.training.enrolment import Actor, Enrolment, EnrolmentStatus
from services.training.members import MemberView, apply_membership_event
from services.training.policies import EnrolmentWindow, WaitlistPolicy
from services.training.progress import check_minutes
from services.training.repository import Members
from services.training.sessions import Session
from services.training.unit_of_work import TrainingUnitOfWork
from services.training.viewing_export import ViewingExport
from services.training.watched_minutes import Counted, Lines
from shared.clock import Clock
from shared.consumer import Batched, Handler, Run
from shared.errors import Conflict, DomainError
from shared.events import membership as m
from shared.events.training import CertificateIssued, CourseCompleted
from shared.uow import following, retry_on_deadlock

log = logging.getLogger(__name__)
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


async def schedule_class(cmd: c.ScheduleClass, uow: TrainingUnitOfWork) -> TrainingClass:
    sessions = _sessions(cmd.sessions)
    with fields_renamed(WINDOW_FIELDS):
        window = EnrolmentWindow(cmd.enrolment_opens_at, cmd.enrolment_closes_at)
    with fields_renamed({"offer_hours": "waitlist.offer_hours"}):
        waitlist = WaitlistPolicy(**cmd.waitlist.model_dump())
    async with uow:
        course = await uow.courses.get(cmd.course_id)
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
        await uow.commit()
    return tc


async def _on_class(
    uow: TrainingUnitOfWork, class_id: str, change: Callable[[TrainingClass], object]
) -> TrainingClass:
    """A seat decision on the whole class, under its lock."""
    async with uow:
        tc = await uow.classes.lock(class_id)
        change(tc)
        await uow.classes.save(tc)
        await uow.commit()
    return tc


async def change_capacity(cmd: c.ChangeCapacity, uow: TrainingUnitOfWork) -> TrainingClass:
    now = uow.clock.now()
    return await _on_class(uow, cmd.class_id, lambda tc: tc.change_capacity(cmd.capacity, now))


async def release_no_shows(cmd: c.ReleaseNoShows, uow: TrainingUnitOfWork) -> list[Enrolment]:
    released: list[Enrolment] = []
    now = uow.clock.now()
    await _on_class(uow, cmd.class_id, lambda tc: released.extend(tc.release_no_shows(now)))
    return released


# ----- seats -----


@retry_on_deadlock
async def enrol(cmd: c.Enrol, uow: TrainingUnitOfWork) -> Enrolment:
    """Enrolment reads the class's counters and writes the member's own row, nothing else.

    A member's first enrolment in a class without seat limit (an online lecture, 300,000 members
    on one day) is two round trips and no transaction of its own: one statement reads the class
    and the member, one writes the enrolment and its event if both are still as read. The rest
    (and one whose class or member changed in between) count seats under the class's lock.
    """
    now = uow.clock.now()
    async with uow.in_one_statement():
        found = await uow.classes.for_new_enrolment(cmd.class_id, cmd.member_id)
        if found is not None:
            enrolment = found.tc.enrol(_known(found.member), now, place=found.place)
            async with _one_per_member():
                added = await uow.commit_with(
                    *uow.classes.adding_enrolment(enrolment, found.member_version)
                )
            if added:
                return enrolment
    async with uow:
        # The member first, then the class: the consumer applying MemberLeft takes them in the
        # same order (it updates the member row before it looks for enrolments to cancel).
        member = await uow.members.get(cmd.member_id, share_lock=True)
        tc = await uow.classes.for_enrolment(cmd.class_id, cmd.member_id, now)
        enrolment = tc.enrol(_known(member), now, place=await uow.classes.next_place())
        async with _one_per_member():
            await uow.classes.save(tc)
        await uow.commit()
    return enrolment


def _known(member: MemberView | None) -> MemberView:
    if member is None:
        raise DomainError("member_id", "not_a_member", "no union member has this id")
    return member


@asynccontextmanager
async def _one_per_member() -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as clash:
        # Two enrolments of one member in a class without capacity (no row lock between them).
        if clash.constraint_name == "enrolments_one_per_member":
            raise Conflict("member_id", "already_enrolled", "already enrolled") from None
        raise Conflict("class_id", "concurrent_change", "the class changed; retry") from None


async def _on_enrolment(
    uow: TrainingUnitOfWork, cmd: c.OnEnrolment, change: Callable[[TrainingClass], Enrolment]
) -> Enrolment:
    enrolment: list[Enrolment] = []
    await _on_class(uow, cmd.class_id, lambda tc: enrolment.append(change(tc)))
    return enrolment[0]


async def cancel(cmd: c.Cancel, uow: TrainingUnitOfWork) -> Enrolment:
    now = uow.clock.now()
    return await _on_enrolment(
        uow, cmd, lambda tc: tc.cancel(cmd.member_id, cmd.by, cmd.reason, now)
    )


async def cancel_by_staff(cmd: c.Cancel, uow: TrainingUnitOfWork) -> Enrolment:
    """As the member's own cancellation, recorded as staff's (the staff route's command)."""
    return await cancel(cmd.model_copy(update={"by": Actor.STAFF}), uow)


async def approve(cmd: c.Approve, uow: TrainingUnitOfWork) -> Enrolment:
    now = uow.clock.now()
    return await _on_enrolment(uow, cmd, lambda tc: tc.approve(cmd.member_id, now))


async def reject(cmd: c.Reject, uow: TrainingUnitOfWork) -> Enrolment:
    now = uow.clock.now()
    return await _on_enrolment(uow, cmd, lambda tc: tc.reject(cmd.member_id, cmd.reason, now))


async def accept_offer(cmd: c.AcceptOffer, uow: TrainingUnitOfWork) -> Enrolment:
    now = uow.clock.now()
    return await _on_enrolment(uow, cmd, lambda tc: tc.accept_offer(cmd.member_id, now))


# ----- attendance, minutes, scores, certificates -----


async def _progress(
    uow: TrainingUnitOfWork,
    class_id: str,
    member_id: str,
    change: Callable[[TrainingClass], Enrolment],
) -> Enrolment:
    async with uow:
        tc = await uow.classes.lock_member(class_id, member_id)
        enrolment = change(tc)
        await _certify(uow, tc)
        await uow.classes.save(tc)
        await uow.commit()
    return enrolment


async def _certify(uow: TrainingUnitOfWork, tc: TrainingClass) -> None:
    """Issue the certificate of every loaded member of ``tc`` who has completed and has none."""
    due = [e for e in tc.enrolments if e.completed_on is not None and e.certificate is None]
    numbers = await _fresh_numbers(uow, len(due))
    for enrolment, number in zip(due, numbers, strict=True):
        tc.progress.issue_certificate(enrolment.member_id, number, uow.clock.today())


async def _fresh_numbers(uow: TrainingUnitOfWork, count: int) -> list[str]:
    """``count`` certificate numbers nobody has: 31**10 numbers make a clash vanishingly rare,
    but a clash must not fail the request, so clashes are drawn again."""
    numbers: set[str] = set()
    while len(numbers) < count:
        drawn = {new_certificate_number() for _ in range(count - len(numbers))}
        numbers |= drawn - await uow.certificates.taken(list(drawn))
    return sorted(numbers)


async def check_in_by_staff(cmd: c.StaffCheckIn, uow: TrainingUnitOfWork) -> Enrolment:
    now, today = uow.clock.now(), uow.clock.today()
    return await _progress(
        uow,
        cmd.class_id,
        cmd.member_id,
        lambda tc: tc.check_in_by_staff(cmd.session_id, cmd.member_id, now, today),
    )


async def check_in_with_code(cmd: c.CodeCheckIn, uow: TrainingUnitOfWork) -> Enrolment:
    now, today, secret = uow.clock.now(), uow.clock.today(), uow.check_in_secret
    return await _progress(
        uow,
        cmd.class_id,
        cmd.member_id,
        lambda tc: tc.check_in_with_code(
            cmd.session_id, cmd.member_id, cmd.code, secret, now, today
        ),
    )


async def record_score(cmd: c.RecordScore, uow: TrainingUnitOfWork) -> Enrolment:
    now, today = uow.clock.now(), uow.clock.today()
    return await _progress(
        uow,
        cmd.class_id,
        cmd.member_id,
        lambda tc: tc.record_score(cmd.member_id, cmd.score, now, today),
    )


async def report_viewing(cmd: c.ViewingReport, uow: TrainingUnitOfWork) -> tuple[Enrolment, bool]:
    """Add a viewing report's minutes; (enrolment, False) when the report id was seen before."""
    async with uow:
        tc = await uow.classes.lock_member(cmd.class_id, cmd.member_id)
        enrolment = tc.progress.attending(cmd.member_id)
        check_minutes(cmd.minutes)
        line = (cmd.report_id, enrolment.enrolment_id, cmd.minutes)
        if not await uow.viewing.first_time([line]):
            return enrolment, False
        tc.progress.watched(cmd.member_id, cmd.minutes, uow.clock.today())
        await _certify(uow, tc)
        await uow.classes.save(tc)
        await uow.commit()
    return enrolment, True


@dataclass
class ViewingOutcome:
    """What a batch of viewing reports did, line by line where a line was not counted."""

    counted: int = 0
    repeated: list[str] = field(default_factory=list)  # report ids counted before
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # report, member, code
    completed: int = 0
    certified: int = 0

    def add(self, lines: Lines, done: Counted, certified: int) -> None:
        """What one slice of ``lines`` did."""
        self.counted += done.counted
        self.completed += len(done.completed)
        self.certified += certified
        for i, status in done.not_counted:
            if status == EnrolmentStatus.CONFIRMED:
                self.repeated.append(lines[0][i])
            else:
                code = "not_enrolled" if status is None else "not_confirmed"
                self.refused.append((lines[0][i], lines[1][i], code))


# Slices of a batch in flight at once, each in a transaction of its own: while one writes its
# certificates and events (the API's Python, then Postgres), the next is being counted, so the
# two overlap instead of taking turns. A 300,000-line export alone: 34-36 s -> 22-31 s, for
# about 10 MB more held (a second slice's events).
VIEWING_IN_FLIGHT = 2


async def report_viewing_batch(cmd: ViewingExport, uow: TrainingUnitOfWork) -> ViewingOutcome:
    """A lecture's viewers at once, set-based whatever the batch's size: per slice of
    ``viewing_export.VIEWING_SLICE`` lines, one statement counts the lines and completes
    members, one issues the certificates, one writes the events, in one transaction.

    A line for a member who is not enrolled, or not confirmed, is refused on its own; the others
    count. Completions and certificates follow as for single reports. Slices are counted in
    order: one is counted only once the slice before it has been, and the enrolments and report
    ids they share wait for that slice's commit, so a report id's first line counts wherever its
    repeats are. A batch cut short by an error is resent whole (what counted comes back as
    repeated).
    """
    outcome = ViewingOutcome()
    units = [uow, *(uow.sibling() for _ in range(VIEWING_IN_FLIGHT - 1))]
    in_flight: deque[_SliceInFlight] = deque()
    try:
        for n, part in enumerate(cmd.slices):
            if len(in_flight) == VIEWING_IN_FLIGHT:  # its unit of work is the one to reuse
                done = in_flight.popleft()
                outcome.add(done.lines, *await done.task)
            if in_flight:
                await in_flight[-1].until_counted()
            lines, counted = part.columns(), asyncio.get_running_loop().create_future()
            unit = units[n % VIEWING_IN_FLIGHT]
            # ensure_future: the retrying wrapper is an awaitable, not a coroutine function's own
            task = asyncio.ensure_future(_count_slice(cmd.class_id, lines, unit, counted))
            in_flight.append(_SliceInFlight(lines, task, counted))
        while in_flight:
            done = in_flight.popleft()
            outcome.add(done.lines, *await done.task)
    finally:  # failed: the slices still in flight roll back
        for left in in_flight:
            left.task.cancel()
        await asyncio.gather(*(left.task for left in in_flight), return_exceptions=True)
    return outcome


@dataclass
class _SliceInFlight:
    lines: Lines
    task: asyncio.Future[tuple[Counted, int]]
    counted: asyncio.Future[None]

    async def until_counted(self) -> None:
        """Wait until the slice has counted its lines; if it failed before, raise why."""
        either: list[asyncio.Future[Any]] = [self.counted, self.task]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not self.counted.done():
            self.task.result()


@retry_on_deadlock
async def _count_slice(
    class_id: str,
    lines: Lines,
    uow: TrainingUnitOfWork,
    counted: asyncio.Future[None],
) -> tuple[Counted, int]:
    """Count one slice of a batch in one transaction: what it did, and certificates issued.
    ``counted`` is set once its lines are counted, before its certificates and events."""
    today = uow.clock.today()
    async with uow:
        tc = await uow.classes.lock_members(class_id, [])
        done = await uow.watched.count(
            tc.class_id, lines, tc.course.completion, len(tc.sessions), today
        )
        if not counted.done():  # a deadlock's second attempt was counted already
            counted.set_result(None)
        numbers = await _fresh_numbers(uow, len(done.completed))
        certificates = [
            tc.progress.certificate(
                number, one.enrolment_id, one.member_id, one.member_name, today, today
            )
            for one, number in zip(done.completed, numbers, strict=True)
        ]
        await uow.certificates.add(certificates)
        uow.publish(
            *(
                tc.enrolment_event(
                    CourseCompleted, one.enrolment_id, one.member_id, completed_on=today
                )
                for one in done.completed
            ),
            *(
                tc.enrolment_event(
                    CertificateIssued,
                    cert.enrolment_id,
                    cert.member_id,
                    certificate_number=cert.number,
                    issued_on=cert.issued_on,
                )
                for cert in certificates
            ),
        )
        await uow.commit()
    return done, len(certificates)


async def certificate(number: str, uow: TrainingUnitOfWork) -> Certificate | None:
    async with uow:
        return await uow.certificates.get(number)


# ----- followed events and the sweep -----


async def member_left(event: m.MemberLeft, uow: TrainingUnitOfWork) -> None:
    """Keep the member view; a member who left loses every enrolment still in play."""
    now = uow.clock.now()
    async with uow:
        view = apply_membership_event(await uow.members.get(event.member_id), event)
        if view is not None:  # never seen joining: nothing to keep (MemberJoined comes first)
            await uow.members.save(view)
            # In class id order, so two consumers (or replicas) lock classes in the same order.
            for class_id in await uow.classes.with_active_enrolment(event.member_id):
                tc = await uow.classes.for_leaving(class_id, event.member_id)
                tc.member_left(event.member_id, now)
                await uow.classes.save(tc)
        await uow.commit()


async def view_changed(conn: asyncpg.Connection, events: Run) -> None:
    """Every member event but leaving changes the member view alone, no class. Batched (not
    ``(event, uow)``): a run of them (a roster's joins) is two statements, one when it only
    joins, and publishes nothing."""
    members = Members(conn)
    joins_only = all(isinstance(e, m.MemberJoined) for e, _ in events)
    known = {} if joins_only else await members.get_many([e.subject() for e, _ in events])
    views = [apply_membership_event(known.get(e.subject()), e) for e, _ in events]
    await members.save_many([view for view in views if view is not None])


def membership_handlers(topic: str, clock: Clock) -> dict[str, Handler]:
    left = following(TrainingUnitOfWork, topic, clock, member_left)
    return {m.MemberLeft.type: left} | dict.fromkeys(
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
    no_show_grace: timedelta,
    remind_ahead: timedelta = timedelta(hours=24),
) -> int:
    """Expire overdue offers, apply due no-show rules and send due session reminders, one class
    per transaction (reminders in slices, see ``_remind``).

    The no-show rule waits ``no_show_grace`` after the first session ends, so staff have time to
    record the attendance they took on paper. Confirmed members are reminded of each session
    ``remind_ahead`` before it starts. Returns the number of classes swept.
    """
    uow = new_uow()
    now = uow.clock.now()
    async with uow:
        offers = await uow.classes.with_offers_due(now)
        no_shows = await uow.classes.with_no_shows_due(now - no_show_grace, now)
        reminders = await uow.classes.with_reminders_due(now, now + remind_ahead)
    swept = 0
    for class_id in sorted({*offers, *no_shows, *reminders}):

        def due(tc: TrainingClass, class_id: str = class_id) -> None:
            tc.expire_offers(now)
            if class_id in no_shows:
                tc.release_no_shows(now)

        try:
            if class_id in offers or class_id in no_shows:
                await _on_class(new_uow(), class_id, due)
            if class_id in reminders:
                await _remind(new_uow, class_id, now, remind_ahead)
        except Exception:  # one class that cannot be swept must not hold up the others
            log.exception("sweeping class %s failed", class_id)
            continue
        swept += 1
    return swept


# Reminders a transaction writes: a lecture's 300,000 confirmed members are reminded in slices,
# each slice's events (about 2 KB each until written) the most the worker holds at once.
REMINDER_SLICE = 2_000


async def _remind(
    new_uow: Callable[[], TrainingUnitOfWork], class_id: str, now: datetime, ahead: timedelta
) -> None:
    """The class's sessions due a reminder are marked reminded, to reach every member confirmed
    at that moment; then the reminders go out ``REMINDER_SLICE`` at a time, in order of place,
    each slice in a transaction that also records how far they got. The class's enrolments are
    never loaded as a whole, nor held under its lock."""
    uow = new_uow()
    async with uow:
        tc = await uow.classes.lock_timetable(class_id)
        due = tc.remind(now, ahead)  # no enrolment loaded: it marks the sessions, records none
        await uow.classes.save(tc)
        await uow.classes.start_reminders(class_id, [s.session_id for s in due])
        await uow.commit()
    while True:  # the class's name and course, as read above, go in every slice's reminders
        uow = new_uow()
        async with uow:
            found = await uow.classes.next_reminders(class_id, REMINDER_SLICE)
            if found is None:
                return
            session, members = found
            uow.publish(*(tc.reminder(session, e, m) for e, m in members))
            await uow.commit()
