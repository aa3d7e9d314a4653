"""SQL for the training schema: the member view, courses, certificates, viewing reports.

Classes, the aggregate every seat decision locks, have their own module (``class_repository``);
``Classes`` is importable from here too so callers need one import. The read models behind the
reports are ``reports``.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import orjson

from services.training.certificates import Certificate
from services.training.class_repository import Classes
from services.training.courses import Course
from services.training.members import MemberView
from services.training.records import certificate_of, course_of, insert_certificates, member_of
from shared.errors import NotFound

__all__ = ["Certificates", "Classes", "Courses", "Members", "ViewingReports"]


class Members:
    """The member view kept from membership events."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, member_id: str, *, share_lock: bool = False) -> MemberView | None:
        # FOR SHARE while enrolling: a MemberLeft being applied (which updates this row) waits
        # for the enrolment to commit, then finds and cancels it; it cannot slip in between.
        lock = " FOR SHARE" if share_lock else ""
        row = await self.conn.fetchrow(
            f"SELECT * FROM members WHERE member_id = $1{lock}", member_id
        )
        return None if row is None else member_of(row)

    async def get_many(self, member_ids: Sequence[str]) -> dict[str, MemberView]:
        rows = await self.conn.fetch("SELECT * FROM members WHERE member_id = ANY($1)", member_ids)
        return {row["member_id"]: member_of(row) for row in rows}

    async def save(self, view: MemberView) -> None:
        await self.save_many([view])

    async def save_many(self, views: Sequence[MemberView]) -> None:
        """One statement for all; each member at most once (a row cannot be upserted twice)."""
        await self.conn.execute(
            "INSERT INTO members (member_id, name, status, union_id, union_path, categories,"
            " is_cadre) SELECT m.id, m.name, m.status, m.union_id,"
            # Lists as JSON text: asyncpg would take a list of lists for a two-dimensional array.
            " ARRAY(SELECT jsonb_array_elements_text(m.path::jsonb)),"
            " ARRAY(SELECT jsonb_array_elements_text(m.categories::jsonb)), m.is_cadre"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
            " $6::text[], $7::bool[]) AS m(id, name, status, union_id, path, categories, is_cadre)"
            " ON CONFLICT (member_id) DO UPDATE SET name = excluded.name, status = excluded.status,"
            " union_id = excluded.union_id, union_path = excluded.union_path,"
            " categories = excluded.categories, is_cadre = excluded.is_cadre, updated_at = now()",
            [v.member_id for v in views],
            [v.name for v in views],
            [v.status.value for v in views],
            [v.union_id for v in views],
            [orjson.dumps(v.union_path).decode() for v in views],
            [orjson.dumps(sorted(v.categories)).decode() for v in views],
            [v.is_cadre for v in views],
        )


class Courses:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, course: Course) -> None:
        rule = course.completion
        await self.conn.execute(
            "INSERT INTO courses (course_id, title, kind, provider, description, audience_kind,"
            " audience_target, min_attendance_percent, pass_mark, min_watched_minutes)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            course.course_id,
            course.title,
            course.kind.value,
            course.provider,
            course.description,
            course.audience.kind.value,
            course.audience.target,
            rule.min_attendance_percent,
            rule.pass_mark,
            rule.min_watched_minutes,
        )

    async def get(self, course_id: str) -> Course:
        row = await self.conn.fetchrow("SELECT * FROM courses WHERE course_id = $1", course_id)
        if row is None:
            raise NotFound("course_id", "unknown_course", f"there is no course {course_id}")
        return course_of(row)

    async def class_ids(self, course_id: str) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT class_id FROM classes WHERE course_id = $1 ORDER BY starts_at", course_id
        )
        return [r["class_id"] for r in rows]


class Certificates:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, number: str) -> Certificate | None:
        row = await self.conn.fetchrow("SELECT * FROM certificates WHERE number = $1", number)
        return certificate_of(row) if row else None

    async def taken(self, numbers: Sequence[str]) -> set[str]:
        """Which of ``numbers`` a certificate already has."""
        # As a join on the unnested numbers, not ``number = ANY($1)``: for a viewing slice's
        # 2,000 numbers the planner then preferred a sequential scan of every certificate, which
        # grew with each slice (2.8 s of a 300,000-line export); this is 2,000 index lookups.
        rows = await self.conn.fetch(
            "SELECT number FROM certificates WHERE number IN (SELECT unnest($1::text[]))",
            list(numbers),
        )
        return {r["number"] for r in rows}

    async def add(self, certificates: Sequence[Certificate]) -> None:
        """Certificates a batch issued at once (a class's save writes those it issued)."""
        if certificates:
            await insert_certificates(self.conn, certificates)


class ViewingReports:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def first_time(self, reports: Sequence[tuple[str, str, int]]) -> set[str]:
        """Record (report id, enrolment id, minutes) reports in one statement; the ids of those
        not recorded before (a resend, or a repeat within the batch, is left out)."""
        rows = await self.conn.fetch(
            "INSERT INTO viewing_reports (report_id, enrolment_id, minutes)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::int[])"
            " ON CONFLICT (report_id) DO NOTHING RETURNING report_id",
            [r[0] for r in reports],
            [r[1] for r in reports],
            [r[2] for r in reports],
        )
        return {r["report_id"] for r in rows}
