"""Read models for the reports: one ``EnrolmentFact`` row per enrolment, straight from SQL.

The counting is pure and lives in ``roll_ups``; this module only reads (the platform's meaning of
``reports``: read models that reports are made from).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.training.enrolment import EnrolmentStatus
from services.training.roll_ups import EnrolmentFact

_FACTS = """
SELECT e.class_id, c.course_id, co.kind AS course_kind,
       extract(year FROM c.starts_at AT TIME ZONE $1)::int AS year,
       e.member_id, e.union_id, e.union_path, e.status, e.watched_minutes,
       (SELECT count(*) FROM check_ins ci WHERE ci.enrolment_id = e.enrolment_id)::int
           AS attendances,
       e.completed_on IS NOT NULL AS completed,
       EXISTS (SELECT 1 FROM certificates ce WHERE ce.enrolment_id = e.enrolment_id) AS certified
FROM enrolments e JOIN classes c USING (class_id) JOIN courses co ON co.course_id = c.course_id
"""


class Reports:
    """One row per enrolment (``reports.EnrolmentFact``); the counting is the domain's."""

    def __init__(self, conn: asyncpg.Connection, timezone: str) -> None:
        self.conn = conn
        # The federation's year: a class starting 31 December 20:00 UTC is next year in Beijing.
        self.timezone = timezone

    async def of_class(self, class_id: str) -> list[EnrolmentFact]:
        return await self._facts("e.class_id = $2", class_id)

    async def of_course(self, course_id: str) -> list[EnrolmentFact]:
        return await self._facts("c.course_id = $2", course_id)

    async def of_union(
        self, root_union_id: str, starts: datetime, ends: datetime
    ) -> list[EnrolmentFact]:
        """Enrolments of members inside the subtree, in classes starting in [starts, ends)."""
        return await self._facts(
            "(e.union_id = $2 OR e.union_path @> ARRAY[$2]::text[])"
            " AND c.starts_at >= $3 AND c.starts_at < $4",
            root_union_id,
            starts,
            ends,
        )

    async def _facts(self, where: str, *args: object) -> list[EnrolmentFact]:
        rows = await self.conn.fetch(f"{_FACTS} WHERE {where}", self.timezone, *args)
        return [
            EnrolmentFact(
                class_id=r["class_id"],
                course_id=r["course_id"],
                course_kind=r["course_kind"],
                year=r["year"],
                member_id=r["member_id"],
                union_id=r["union_id"],
                union_path=tuple(r["union_path"]),
                status=EnrolmentStatus(r["status"]),
                attendances=r["attendances"],
                watched_minutes=r["watched_minutes"],
                completed=r["completed"],
                certified=r["certified"],
            )
            for r in rows
        ]
