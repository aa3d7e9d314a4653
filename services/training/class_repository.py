"""SQL for classes: the aggregate of sessions and enrolments, and the locks that keep it right.

A class is loaded in one of two ways, each with its lock:

* ``lock``: the whole aggregate under ``FOR UPDATE`` on the class row. Every seat decision
  (enrol, cancel, approve, promote, capacity) takes it, so concurrent enrolments take turns and
  each sees every seat the previous ones took.
* ``lock_member``: the class under ``FOR SHARE`` and only one member's enrolment under ``FOR
  UPDATE``. Attendance, minutes and scores touch one enrolment; many members of one lecture can
  report at once, while seat decisions (which need the class exclusively) wait for them.

``save`` writes back only what changed since the load: enrolments compared with a snapshot taken at
load time, check-ins and certificates that were not there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.training.classes import TrainingClass
from services.training.enrolment import ACTIVE
from services.training.policies import EnrolmentWindow, PromotionMode, WaitlistPolicy
from services.training.records import (
    INSERT_ENROLMENT,
    UPDATE_ENROLMENT,
    course_of,
    enrolment_row,
    enrolments_of,
    insert_certificate,
    session_of,
)
from shared.errors import NotFound

ACTIVE_STATUSES = sorted(status.value for status in ACTIVE)


class Classes:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        # What each loaded class looked like when loaded: save() writes only the differences.
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._check_ins: set[tuple[str, str]] = set()
        self._certified: set[str] = set()
        self._class_state: dict[str, tuple[int | None, bool]] = {}
        self._reminded: set[str] = set()  # session ids already reminded when loaded or saved

    async def add(self, tc: TrainingClass) -> None:
        await self.conn.execute(
            "INSERT INTO classes (class_id, course_id, name, capacity, enrolment_opens_at,"
            " enrolment_closes_at, waitlist_enabled, promotion, offer_hours, requires_approval,"
            " releases_no_shows, no_shows_released, starts_at, ends_at, first_session_ends_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
        )
        await self.conn.executemany(
            "INSERT INTO sessions (session_id, class_id, starts_at, ends_at, venue, online_link)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (s.session_id, tc.class_id, s.starts_at, s.ends_at, s.venue, s.online_link)
                for s in tc.sessions
            ],
        )
        self._class_state[tc.class_id] = (tc.capacity, tc.no_shows_released)
        await self.save(tc)

    async def get(self, class_id: str) -> TrainingClass:
        """The whole class without a lock: for answers, never for changes."""
        return await self._load(class_id, lock="")

    async def lock(self, class_id: str) -> TrainingClass:
        return await self._load(class_id, lock=" FOR UPDATE OF c")

    async def lock_member(self, class_id: str, member_id: str) -> TrainingClass:
        """The class with only ``member_id``'s enrolment, for attendance, minutes and scores."""
        return await self._load(class_id, lock=" FOR SHARE OF c", member_id=member_id)

    async def _load(self, class_id: str, lock: str, member_id: str | None = None) -> TrainingClass:
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
        # With a member id, only that member's enrolment (locked under a lock, as their progress
        # is about to change); with $2 NULL, every enrolment of the class.
        enrolment_lock = " FOR UPDATE" if member_id is not None and lock else ""
        enrolments = await self.conn.fetch(
            "SELECT * FROM enrolments WHERE class_id = $1"
            f" AND ($2::text IS NULL OR member_id = $2){enrolment_lock}",
            class_id,
            member_id,
        )
        check_ins = await self.conn.fetch(
            "SELECT ci.* FROM check_ins ci JOIN enrolments e USING (enrolment_id)"
            " WHERE e.class_id = $1 AND ($2::text IS NULL OR e.member_id = $2)",
            class_id,
            member_id,
        )
        certificates = await self.conn.fetch(
            "SELECT * FROM certificates WHERE class_id = $1"
            " AND ($2::text IS NULL OR member_id = $2)",
            class_id,
            member_id,
        )
        tc = TrainingClass(
            class_id=class_id,
            course=course_of(row),
            name=row["name"],
            sessions=[session_of(s) for s in sessions],
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
            enrolments=enrolments_of(enrolments, check_ins, certificates),
        )
        self._remember(tc)
        return tc

    def _remember(self, tc: TrainingClass) -> None:
        self._class_state[tc.class_id] = (tc.capacity, tc.no_shows_released)
        self._reminded.update(s.session_id for s in tc.sessions if s.reminded_at is not None)
        for e in tc.enrolments:
            self._rows[e.enrolment_id] = enrolment_row(e)
            self._check_ins.update((e.enrolment_id, s) for s in e.check_ins)
            if e.certificate is not None:
                self._certified.add(e.enrolment_id)

    async def save(self, tc: TrainingClass) -> None:
        state = (tc.capacity, tc.no_shows_released)
        if self._class_state.get(tc.class_id) != state:
            await self.conn.execute(
                "UPDATE classes SET capacity = $2, no_shows_released = $3 WHERE class_id = $1",
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
            await self.conn.executemany(INSERT_ENROLMENT, new)
        if changed:
            await self.conn.executemany(UPDATE_ENROLMENT, changed)
        check_ins = [
            (e.enrolment_id, c.session_id, c.method.value, c.recorded_at)
            for e in tc.enrolments
            for c in e.check_ins.values()
            if (e.enrolment_id, c.session_id) not in self._check_ins
        ]
        if check_ins:
            await self.conn.executemany(
                "INSERT INTO check_ins (enrolment_id, session_id, method, recorded_at)"
                " VALUES ($1, $2, $3, $4)",
                check_ins,
            )
        certificates = [
            e.certificate
            for e in tc.enrolments
            if e.certificate is not None and e.enrolment_id not in self._certified
        ]
        for certificate in certificates:
            await insert_certificate(self.conn, certificate)
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
        rows = await self.conn.fetch(
            "SELECT DISTINCT class_id FROM sessions WHERE reminded_at IS NULL"
            " AND starts_at > $1 AND starts_at <= $2 ORDER BY class_id",
            now,
            until,
        )
        return [r["class_id"] for r in rows]

    async def with_no_shows_due(self, first_session_ended_by: datetime, now: datetime) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT class_id FROM classes WHERE releases_no_shows AND NOT no_shows_released"
            " AND first_session_ends_at <= $1 AND ends_at > $2 ORDER BY class_id",
            first_session_ended_by,
            now,
        )
        return [r["class_id"] for r in rows]
