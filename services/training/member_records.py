"""One member's training record: their enrolments in every class, and their certificates.

Read-only queries straight to answers (``views``), a page at a time, from the enrolment and
certificate rows alone: no class is loaded. A member training has not heard of yet (their
``MemberJoined`` still on its way) simply has an empty record.
"""

from __future__ import annotations

import asyncpg

from services.training.enrolment import EnrolmentStatus
from services.training.records import certificate_of
from services.training.rosters import WAITLIST_POSITION
from services.training.views import (
    CertificatePage,
    CertificateView,
    MemberEnrolment,
    MemberEnrolmentPage,
)

_ENROLMENTS = f"""
SELECT e.*, c.name AS class_name, c.course_id, co.title AS course_title, co.kind AS course_kind,
       c.starts_at AS class_starts_at, c.ends_at AS class_ends_at,
       (SELECT count(*) FROM sessions s WHERE s.class_id = e.class_id)::int AS session_count,
       (SELECT count(*) FROM check_ins ci WHERE ci.enrolment_id = e.enrolment_id)::int
           AS attended_sessions,
       {WAITLIST_POSITION} AS waitlist_position,
       ce.number AS certificate_number
FROM enrolments e
JOIN classes c USING (class_id)
JOIN courses co ON co.course_id = c.course_id
LEFT JOIN certificates ce ON ce.enrolment_id = e.enrolment_id
WHERE e.member_id = $1 AND ($2::text IS NULL OR e.status = $2)
ORDER BY c.starts_at DESC, e.class_id
OFFSET $3 LIMIT $4
"""


class MemberRecords:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def enrolments(
        self,
        member_id: str,
        *,
        status: EnrolmentStatus | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> MemberEnrolmentPage:
        """The member's enrolments, the latest class first."""
        wanted = status.value if status is not None else None
        total = await self.conn.fetchval(
            "SELECT count(*) FROM enrolments WHERE member_id = $1"
            " AND ($2::text IS NULL OR status = $2)",
            member_id,
            wanted,
        )
        rows = await self.conn.fetch(_ENROLMENTS, member_id, wanted, offset, limit)
        return MemberEnrolmentPage.of(
            [MemberEnrolment.model_validate(dict(r)) for r in rows], total, offset
        )

    async def certificates(
        self, member_id: str, *, offset: int = 0, limit: int = 50
    ) -> CertificatePage:
        """The member's certificates, the latest issued first."""
        total = await self.conn.fetchval(
            "SELECT count(*) FROM certificates WHERE member_id = $1", member_id
        )
        rows = await self.conn.fetch(
            "SELECT * FROM certificates WHERE member_id = $1"
            " ORDER BY issued_on DESC, number OFFSET $2 LIMIT $3",
            member_id,
            offset,
            limit,
        )
        items = [CertificateView.of(certificate_of(r)) for r in rows]
        return CertificatePage.of(items, total, offset)
