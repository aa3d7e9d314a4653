"""SQL for classes: the aggregate of sessions and enrolments, and the locks that keep it right.

A class is loaded in one of these ways, each with its lock:

* ``lock``: the whole class under ``FOR UPDATE`` on its row. Seat decisions that may serve the
  waitlist (cancel, approve, reject, offers, capacity, no-shows) take it, so they take turns.
* ``for_enrolment``: the class's row (its seat counters) and the member's own enrolment only. A
  class with a capacity is locked ``FOR UPDATE``, so concurrent enrolments take turns on the
  counters; a class without one ``FOR SHARE`` (nothing to count, so nothing to queue on). If an
  offer is overdue, the whole class is loaded, as expiring it serves the waitlist.
* ``lock_member``: the class ``FOR SHARE`` and one member's enrolment ``FOR UPDATE``. Attendance,
  minutes and scores touch one enrolment; many members of one lecture report at once, while seat
  decisions (which need the class exclusively) wait for them.
* ``for_leaving``: as ``for_enrolment``, for a member leaving the union; the whole class only when
  someone waits for the seat they free.

Every class loaded or added is handed to the unit of work (``track``), which sends its events on
commit. ``save`` writes back only what changed since the load: the class row, enrolments compared
with a snapshot taken at load time, check-ins and certificates that were not there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from services.training.classes import TrainingClass
from services.training.enrolment import ACTIVE, Enrolment
from services.training.members import MemberView
from services.training.policies import EnrolmentWindow, PromotionMode, WaitlistPolicy
from services.training.records import (
    INSERT_ENROLMENTS,
    UPDATE_ENROLMENTS,
    columns,
    course_of,
    enrolment_row,
    enrolments_of,
    insert_certificates,
    member_of,
    session_of,
)
from services.training.roster import Roster
from services.training.sessions import Session
from shared.errors import NotFound

ACTIVE_STATUSES = sorted(status.value for status in ACTIVE)
Track = Callable[[TrainingClass], TrainingClass]
ClassState = tuple[int | None, bool, int | None, int | None]


class NewEnrolment(NamedTuple):
    """What a member's first enrolment in a class without seat limit is decided on."""

    tc: TrainingClass
    member: MemberView | None
    place: int  # in line (``enrolment_places``)
    member_version: int | None  # the member row's ``xmin`` when read; None if unknown


class Classes:
    def __init__(self, conn: asyncpg.Connection, track: Track) -> None:
        self.conn = conn
        self.track = track
        # What each loaded class looked like when loaded: save() writes only the differences.
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._check_ins: set[tuple[str, str]] = set()
        self._certified: set[str] = set()
        self._class_state: dict[str, ClassState] = {}
        self._reminded: set[str] = set()  # session ids already reminded when loaded or saved

    async def add(self, tc: TrainingClass) -> None:
        await self.conn.execute(
            "INSERT INTO classes (class_id, course_id, name, capacity, enrolment_opens_at,"
            " enrolment_closes_at, waitlist_enabled, promotion, offer_hours, requires_approval,"
            " releases_no_shows, no_shows_released, starts_at, ends_at, first_session_ends_at,"
            " seats_held, waitlisted)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            tc.class_id,
            tc.course.course_id,
            tc.name,
            tc.capacity,
            tc.window.opens_at,
            tc.window.closes_at,
            tc.waitlist_policy.enabled,
            tc.waitlist_policy.promotion.value,
            tc.waitlist_policy.offer_hours,
            tc.requires_approval,
            tc.releases_no_shows,
            tc.no_shows_released,
            tc.starts_at,
            tc.ends_at,
            tc.sessions[0].ends_at,
            *_state(tc)[2:],
        )
        await self.conn.executemany(
            "INSERT INTO sessions (session_id, class_id, starts_at, ends_at, venue, online_link)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (s.session_id, tc.class_id, s.starts_at, s.ends_at, s.venue, s.online_link)
                for s in tc.sessions
            ],
        )
        self._class_state[tc.class_id] = _state(tc)
        self.track(tc)
        await self.save(tc)

    async def get(self, class_id: str) -> TrainingClass:
        """The whole class without a lock: for answers, never for changes."""
        return await self._load(class_id, lock="")

    async def with_member(self, class_id: str, member_id: str) -> TrainingClass:
        """The class with only ``member_id``'s enrolment, without a lock: for answers."""
        return await self._load(class_id, lock="", members=[member_id])

    async def timetable(self, class_id: str) -> TrainingClass:
        """The class with no enrolment loaded: its sessions and rules, for answers."""
        return await self._load(class_id, lock="", members=[])

    async def lock(self, class_id: str) -> TrainingClass:
        return await self._load(class_id, lock=" FOR UPDATE OF c")

    async def lock_member(self, class_id: str, member_id: str) -> TrainingClass:
        """The class with only ``member_id``'s enrolment, for attendance, minutes and scores."""
        return await self.lock_members(class_id, [member_id])

    async def lock_members(self, class_id: str, members: Sequence[str]) -> TrainingClass:
        """The class with only these members' enrolments (a batch of viewers), locked."""
        return await self._load(class_id, lock=" FOR SHARE OF c", members=members)

    async def for_enrolment(self, class_id: str, member_id: str, now: datetime) -> TrainingClass:
        """The class's counters and the member's own enrolment, locked for enrolling them."""
        limited = await self.conn.fetchval(
            "SELECT capacity IS NOT NULL FROM classes WHERE class_id = $1", class_id
        )
        if limited is None:
            raise NotFound("class_id", "unknown_class", f"there is no class {class_id}")
        lock = " FOR UPDATE OF c" if limited else " FOR SHARE OF c"
        tc = await self._load(class_id, lock=lock, members=[member_id])
        if (tc.capacity is not None) != limited:
            return await self.lock(class_id)  # the capacity changed meanwhile: count it all
        if limited and await self._offers_due(class_id, now):
            return await self.lock(class_id)  # expiring an offer serves the waitlist
        return tc

    async def for_leaving(self, class_id: str, member_id: str) -> TrainingClass:
        """The class with only ``member_id``'s enrolment, locked, for the member leaving the
        union: a 300,000-member lecture is not loaded (nor its row held FOR UPDATE, which would
        stop its enrolments and minutes) to cancel one enrolment. The whole class when someone
        waits for a seat, as for any seat decision: who is next needs every enrolment."""
        row = await self.conn.fetchrow(
            "SELECT capacity IS NOT NULL AS limited, coalesce(waitlisted, 0) > 0 AS waiting"
            " FROM classes WHERE class_id = $1",
            class_id,
        )
        if row is None:
            raise NotFound("class_id", "unknown_class", f"there is no class {class_id}")
        if row["waiting"]:
            return await self.lock(class_id)
        # A class with seats: its counters change, under the lock every seat decision takes.
        lock = " FOR UPDATE OF c" if row["limited"] else " FOR SHARE OF c"
        tc = await self._load(class_id, lock=lock, members=[member_id])
        if (tc.capacity is not None) != row["limited"] or tc.roster.waiting:
            return await self.lock(class_id)  # changed meanwhile: count it all
        return tc

    async def for_new_enrolment(self, class_id: str, member_id: str) -> NewEnrolment | None:
        """A class without seat limit and the member, read in one statement, for a member's
        first enrolment in it. None for a class with seats, or one the member enrolled in
        before: they take ``for_enrolment``.

        Nothing is locked: the read runs outside a transaction (``in_one_statement``), so a lock
        would end with it. ``adding_enrolment`` checks again, as it writes, what the read found.
        """
        row = await self.conn.fetchrow(_FOR_NEW_ENROLMENT, class_id, member_id)
        if row is None:
            raise NotFound("class_id", "unknown_class", f"there is no class {class_id}")
        if row["capacity"] is not None or row["enrolled_before"]:
            return None
        sessions = [
            Session(*columns)
            for columns in zip(
                row["session_ids"],
                row["starts"],
                row["ends"],
                row["venues"],
                row["links"],
                row["reminded"],
                strict=True,
            )
        ]
        tc = _class_of(row, sessions, Roster(complete=False))
        member = None
        if row["m_member_id"] is not None:
            member = member_of({k[2:]: v for k, v in row.items() if k.startswith("m_")})
        self._remember(tc, row)
        return NewEnrolment(self.track(tc), member, row["place"], row["member_version"])

    def adding_enrolment(
        self, enrolment: Enrolment, member_version: int | None
    ) -> tuple[str, *tuple[Any, ...]]:
        """The statement writing a new enrolment of a class read by ``for_new_enrolment``, for
        :meth:`UnitOfWork.commit_with`: it writes nothing (and returns nothing) unless the class
        still has no seat limit and the member's row is the version read (``xmin``), so the
        enrolment is decided on what is true as it is written.

        ``FOR KEY SHARE`` is the lock the enrolment's foreign key takes on the class's row
        anyway; taken here, it also re-reads the row should a capacity change hold it. ``FOR
        SHARE`` on the member keeps a MemberLeft being applied (which updates that row, then
        looks for enrolments to cancel) from slipping in before this enrolment is committed.
        Should the two lock each other's rows in turn, the deadlock's victim runs again
        (``retry_on_deadlock``).
        """
        return _ADD_NEW_ENROLMENT, *enrolment_row(enrolment), member_version

    async def next_place(self) -> int:
        """A place in line after every place handed out before (``enrolment_places``)."""
        place: int = await self.conn.fetchval("SELECT nextval('enrolment_places')::int")
        return place

    async def _offers_due(self, class_id: str, now: datetime) -> bool:
        return bool(
            await self.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM enrolments WHERE class_id = $1"
                " AND status = 'offered' AND offer_expires_at <= $2)",
                class_id,
                now,
            )
        )

    async def _load(
        self, class_id: str, lock: str, members: Sequence[str] | None = None
    ) -> TrainingClass:
        """The class with every enrolment (``members`` None) or only those of ``members``."""
        row = await self.conn.fetchrow(
            "SELECT c.*, co.title, co.kind, co.provider, co.description, co.audience_kind,"
            " co.audience_target, co.min_attendance_percent, co.pass_mark,"
            " co.min_watched_minutes FROM classes c JOIN courses co USING (course_id)"
            f" WHERE c.class_id = $1{lock}",
            class_id,
        )
        if row is None:
            raise NotFound("class_id", "unknown_class", f"there is no class {class_id}")
        sessions = await self.conn.fetch("SELECT * FROM sessions WHERE class_id = $1", class_id)
        # Only some members' enrolments: locked under a lock, as their progress is about to change.
        some = None if members is None else list(members)
        enrolment_lock = " FOR UPDATE" if some and lock else ""
        enrolments = await self.conn.fetch(
            "SELECT * FROM enrolments WHERE class_id = $1"
            # In one order, so two batches of one lecture lock their rows without a deadlock.
            f" AND ($2::text[] IS NULL OR member_id = ANY($2)) ORDER BY member_id{enrolment_lock}",
            class_id,
            some,
        )
        check_ins = await self.conn.fetch(
            "SELECT ci.* FROM check_ins ci JOIN enrolments e USING (enrolment_id)"
            " WHERE e.class_id = $1 AND ($2::text[] IS NULL OR e.member_id = ANY($2))",
            class_id,
            some,
        )
        certificates = await self.conn.fetch(
            "SELECT * FROM certificates WHERE class_id = $1"
            " AND ($2::text[] IS NULL OR member_id = ANY($2))",
            class_id,
            some,
        )
        loaded = enrolments_of(enrolments, check_ins, certificates)
        roster = (
            Roster(loaded)
            if some is None
            else Roster(loaded, complete=False, held=row["seats_held"], waiting=row["waitlisted"])
        )
        tc = _class_of(row, [session_of(s) for s in sessions], roster)
        self._remember(tc, row)
        return self.track(tc)

    def _remember(self, tc: TrainingClass, row: asyncpg.Record) -> None:
        self._class_state[tc.class_id] = (
            row["capacity"],
            row["no_shows_released"],
            row["seats_held"],
            row["waitlisted"],
        )
        self._reminded.update(s.session_id for s in tc.sessions if s.reminded_at is not None)
        for e in tc.enrolments:
            self._rows[e.enrolment_id] = enrolment_row(e)
            self._check_ins.update((e.enrolment_id, s) for s in e.check_ins)
            if e.certificate is not None:
                self._certified.add(e.enrolment_id)

    async def save(self, tc: TrainingClass) -> None:
        state = _state(tc)
        if self._class_state.get(tc.class_id) != state:
            await self.conn.execute(
                "UPDATE classes SET capacity = $2, no_shows_released = $3, seats_held = $4,"
                " waitlisted = $5 WHERE class_id = $1",
                tc.class_id,
                *state,
            )
        reminded = [
            (s.session_id, s.reminded_at)
            for s in tc.sessions
            if s.reminded_at is not None and s.session_id not in self._reminded
        ]
        if reminded:
            await self.conn.executemany(
                "UPDATE sessions SET reminded_at = $2 WHERE session_id = $1", reminded
            )
            self._reminded.update(session_id for session_id, _ in reminded)
        rows = [enrolment_row(e) for e in tc.enrolments]
        new = [r for r in rows if r[0] not in self._rows]
        changed = [r for r in rows if r[0] in self._rows and self._rows[r[0]] != r]
        if new:
            await self.conn.execute(INSERT_ENROLMENTS, *columns(new))
        if changed:
            await self.conn.execute(UPDATE_ENROLMENTS, *columns(changed))
        check_ins = [
            (e.enrolment_id, c.session_id, c.method.value, c.recorded_at)
            for e in tc.enrolments
            for c in e.check_ins.values()
            if (e.enrolment_id, c.session_id) not in self._check_ins
        ]
        if check_ins:
            await self.conn.execute(
                "INSERT INTO check_ins (enrolment_id, session_id, method, recorded_at)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])",
                *(list(column) for column in zip(*check_ins, strict=True)),
            )
        certificates = [
            e.certificate
            for e in tc.enrolments
            if e.certificate is not None and e.enrolment_id not in self._certified
        ]
        if certificates:
            await insert_certificates(self.conn, certificates)
        self._class_state[tc.class_id] = state
        self._rows.update((r[0], r) for r in (*new, *changed))
        self._check_ins.update((e, s) for e, s, _, _ in check_ins)
        self._certified.update(c.enrolment_id for c in certificates)

    async def with_active_enrolment(self, member_id: str) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT class_id FROM enrolments WHERE member_id = $1 AND status = ANY($2::text[])"
            " ORDER BY class_id",
            member_id,
            ACTIVE_STATUSES,
        )
        return [r["class_id"] for r in rows]

    async def with_offers_due(self, now: datetime) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT DISTINCT class_id FROM enrolments"
            " WHERE status = 'offered' AND offer_expires_at <= $1 ORDER BY class_id",
            now,
        )
        return [r["class_id"] for r in rows]

    async def with_reminders_due(self, now: datetime, until: datetime) -> list[str]:
        """Classes with a session due a reminder, or whose reminders are still going out."""
        rows = await self.conn.fetch(
            "SELECT DISTINCT class_id FROM sessions WHERE (reminded_at IS NULL"
            " AND starts_at > $1 AND starts_at <= $2) OR reminders_through < reminders_upto"
            " ORDER BY class_id",
            now,
            until,
        )
        return [r["class_id"] for r in rows]

    async def lock_timetable(self, class_id: str) -> TrainingClass:
        """The class with no enrolment loaded, locked: for deciding its sessions' reminders."""
        return await self._load(class_id, lock=" FOR UPDATE OF c", members=[])

    async def start_reminders(self, class_id: str, session_ids: Sequence[str]) -> None:
        """The sessions' reminders are to reach every member confirmed now (up to the last
        place held by a confirmed member), from the first place on."""
        await self.conn.execute(
            "UPDATE sessions SET reminders_through = 0, reminders_upto = (SELECT"
            " coalesce(max(sequence), 0) FROM enrolments WHERE class_id = $1"
            " AND status = 'confirmed') WHERE class_id = $1 AND session_id = ANY($2::text[])",
            class_id,
            list(session_ids),
        )

    async def next_reminders(
        self, class_id: str, limit: int
    ) -> tuple[Session, list[tuple[str, str]]] | None:
        """The next ``limit`` members due a session's reminder (enrolment id, member id), in
        order of place, marked reminded; None when every session's reminders are out. The
        session's row is locked, so two sweeps never send one slice twice."""
        session = await self.conn.fetchrow(
            "SELECT * FROM sessions WHERE class_id = $1 AND reminders_through < reminders_upto"
            " ORDER BY starts_at, session_id LIMIT 1 FOR UPDATE",
            class_id,
        )
        if session is None:
            return None
        rows = await self.conn.fetch(
            "SELECT enrolment_id, member_id, sequence FROM enrolments WHERE class_id = $1"
            " AND status = 'confirmed' AND sequence > $2 AND sequence <= $3"
            " ORDER BY sequence LIMIT $4",
            class_id,
            session["reminders_through"],
            session["reminders_upto"],
            limit,
        )
        through = rows[-1]["sequence"] if len(rows) == limit else session["reminders_upto"]
        await self.conn.execute(
            "UPDATE sessions SET reminders_through = $2 WHERE session_id = $1",
            session["session_id"],
            through,
        )
        return session_of(session), [(r["enrolment_id"], r["member_id"]) for r in rows]

    async def with_no_shows_due(self, first_session_ended_by: datetime, now: datetime) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT class_id FROM classes WHERE releases_no_shows AND NOT no_shows_released"
            " AND first_session_ends_at <= $1 AND ends_at > $2 ORDER BY class_id",
            first_session_ended_by,
            now,
        )
        return [r["class_id"] for r in rows]


# The class, its course and sessions, the member and the version of its row, whether they
# enrolled before, and a place in line: a first enrolment's every read in one round trip.
_FOR_NEW_ENROLMENT = """
SELECT c.*, co.title, co.kind, co.provider, co.description, co.audience_kind,
       co.audience_target, co.min_attendance_percent, co.pass_mark, co.min_watched_minutes,
       s.session_ids, s.starts, s.ends, s.venues, s.links, s.reminded,
       m.member_id AS m_member_id, m.name AS m_name, m.status AS m_status,
       m.union_id AS m_union_id, m.union_path AS m_union_path, m.categories AS m_categories,
       m.is_cadre AS m_is_cadre, m.xmin AS member_version,
       EXISTS (SELECT 1 FROM enrolments e WHERE e.class_id = $1 AND e.member_id = $2)
           AS enrolled_before,
       nextval('enrolment_places')::int AS place
FROM classes c JOIN courses co USING (course_id)
CROSS JOIN LATERAL (
    SELECT array_agg(session_id) AS session_ids, array_agg(starts_at) AS starts,
           array_agg(ends_at) AS ends, array_agg(venue) AS venues,
           array_agg(online_link) AS links, array_agg(reminded_at) AS reminded
    FROM sessions WHERE class_id = c.class_id
) s
LEFT JOIN members m ON m.member_id = $2
WHERE c.class_id = $1
"""


# One row, its values as parameters: the guards are two primary-key lookups the planner cannot
# turn into a scan of the members (as it may for rows coming from ``unnest``).
_ADD_NEW_ENROLMENT = (
    "INSERT INTO enrolments (enrolment_id, class_id, member_id, member_name, union_id,"
    " union_path, status, sequence, enrolled_at, offer_expires_at, cancel_reason, cancelled_by,"
    " watched_minutes, score, completed_on) SELECT $1::text, $2::text, $3::text, $4::text,"
    " $5::text, $6::text[], $7::text, $8::int, $9::timestamptz, $10::timestamptz, $11::text,"
    " $12::text, $13::int, $14::numeric, $15::date"
    " WHERE EXISTS (SELECT FROM members m WHERE m.member_id = $3 AND m.xmin = $16::xid FOR SHARE)"
    " AND EXISTS (SELECT FROM classes c WHERE c.class_id = $2 AND c.capacity IS NULL"
    " FOR KEY SHARE) RETURNING true"
)


def _class_of(row: asyncpg.Record, sessions: list[Session], roster: Roster) -> TrainingClass:
    return TrainingClass(
        class_id=row["class_id"],
        course=course_of(row),
        name=row["name"],
        sessions=sessions,
        capacity=row["capacity"],
        window=EnrolmentWindow(row["enrolment_opens_at"], row["enrolment_closes_at"]),
        waitlist=WaitlistPolicy(
            enabled=row["waitlist_enabled"],
            promotion=PromotionMode(row["promotion"]),
            offer_hours=row["offer_hours"],
        ),
        requires_approval=row["requires_approval"],
        releases_no_shows=row["releases_no_shows"],
        no_shows_released=row["no_shows_released"],
        roster=roster,
    )


def _state(tc: TrainingClass) -> ClassState:
    """The class row's changeable columns; the counters only for a class with a capacity."""
    counted = tc.capacity is not None
    held = tc.roster.held if counted else None
    waiting = tc.roster.waiting if counted else None
    return (tc.capacity, tc.no_shows_released, held, waiting)
