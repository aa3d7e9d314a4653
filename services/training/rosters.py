"""A class's enrolments as the answers show them, straight from SQL: one enrolment, or a page.

Every answer about an enrolment is read here afresh after the change that caused it, and never
loads the class: a city-wide lecture's roster is paged in SQL. The waitlist position is the
class's rule (waitlisted enrolments in enrolment order), counted where it is read.
"""

from __future__ import annotations

import asyncpg

from services.training.enrolment import EnrolmentStatus
from services.training.views import EnrolmentView, RosterPage
from shared.errors import NotFound

# The place in line of a waitlisted enrolment ``e``; NULL for any other.
WAITLIST_POSITION = """CASE WHEN e.status = 'waitlisted' THEN
           (SELECT count(*) FROM enrolments w WHERE w.class_id = e.class_id
            AND w.status = 'waitlisted' AND w.sequence <= e.sequence)::int
       END"""
_ENROLMENTS = f"""
SELECT e.*, {WAITLIST_POSITION} AS waitlist_position,
       ARRAY(SELECT ci.session_id FROM check_ins ci WHERE ci.enrolment_id = e.enrolment_id
             ORDER BY ci.session_id) AS attended_sessions,
       ce.number AS certificate_number
FROM enrolments e LEFT JOIN certificates ce ON ce.enrolment_id = e.enrolment_id
"""


class Rosters:
    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def enrolment(self, class_id: str, member_id: str) -> EnrolmentView:
        row = await self.conn.fetchrow(
            f"{_ENROLMENTS} WHERE e.class_id = $1 AND e.member_id = $2", class_id, member_id
        )
        if row is None:
            await self._known(class_id)
            raise NotFound("member_id", "not_enrolled", "the member has no enrolment in this class")
        return EnrolmentView.model_validate(dict(row))

    async def page(
        self, class_id: str, status: EnrolmentStatus | None, offset: int, limit: int
    ) -> RosterPage:
        """In enrolment order, cancelled and rejected ones included unless ``status`` picks."""
        await self._known(class_id)
        wanted = status.value if status is not None else None
        where = "WHERE e.class_id = $1 AND ($2::text IS NULL OR e.status = $2)"
        total = await self.conn.fetchval(
            f"SELECT count(*) FROM enrolments e {where}", class_id, wanted
        )
        rows = await self.conn.fetch(
            f"{_ENROLMENTS} {where} ORDER BY e.sequence OFFSET $3 LIMIT $4",
            class_id,
            wanted,
            offset,
            limit,
        )
        items = [EnrolmentView.model_validate(dict(r)) for r in rows]
        return RosterPage.of(items, total, offset)

    async def _known(self, class_id: str) -> None:
        if not await self.conn.fetchval("SELECT true FROM classes WHERE class_id = $1", class_id):
            raise NotFound("class_id", "unknown_class", f"there is no class {class_id}")
