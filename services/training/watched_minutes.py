"""SQL for a lecture's viewing batch: 300,000 viewers' minutes counted and completed at once.

One statement counts every line of a slice of the batch (``viewing_export.VIEWING_SLICE`` lines) and
completes whoever now meets the course's rule; no enrolment is loaded into Python. The caller
holds the class's row ``FOR SHARE`` (``Classes.lock_members``), so seat decisions, which load and
write whole classes, wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

from services.training.completion import CompletionRule

# Line n (from 1) of the batch is ($2[n], $3[n], $4[n]). Its member's enrolment is locked in member
# order, so two batches of one lecture never deadlock; only confirmed members' lines are recorded,
# the first line of a report id not recorded before counts (ON CONFLICT skips a resend and a
# repeat within the batch alike), and each enrolment gets the sum of its lines that counted.
#
# Completion is ``completion.evaluate_completion`` in SQL, on the minutes after this batch: every
# criterion the rule has ($6 attendance percent over $7 sessions, $8 pass mark, $9 minutes) holds.
_COUNT_AND_COMPLETE = """
WITH line AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::int[])
        WITH ORDINALITY AS l(report_id, member_id, minutes, n)
), enrolled AS MATERIALIZED (
    SELECT e.enrolment_id, e.member_id, e.status, e.completed_on FROM enrolments e
    WHERE e.class_id = $1 AND e.member_id IN (SELECT member_id FROM line)
    ORDER BY e.member_id FOR UPDATE
), judged AS MATERIALIZED (
    SELECT l.n, l.report_id, l.minutes, e.enrolment_id, e.status
    FROM line l LEFT JOIN enrolled e USING (member_id)
), fresh AS (
    INSERT INTO viewing_reports (report_id, enrolment_id, minutes)
    SELECT report_id, enrolment_id, minutes FROM judged WHERE status = 'confirmed' ORDER BY n
    ON CONFLICT (report_id) DO NOTHING
    RETURNING report_id, enrolment_id, minutes
), added AS (
    UPDATE enrolments e SET
        watched_minutes = e.watched_minutes + f.minutes,
        completed_on = CASE WHEN e.completed_on IS NULL
            AND ($6::int IS NULL OR ($7::int > 0 AND (SELECT count(*) FROM check_ins ci
                 WHERE ci.enrolment_id = e.enrolment_id) * 100 >= $6 * $7))
            AND ($8::numeric IS NULL OR e.score >= $8)
            AND ($9::int IS NULL OR e.watched_minutes + f.minutes >= $9)
            THEN $5::date ELSE e.completed_on END,
        updated_at = now()
    FROM (SELECT enrolment_id, sum(minutes)::int AS minutes FROM fresh GROUP BY enrolment_id) f
    WHERE e.enrolment_id = f.enrolment_id
    RETURNING e.enrolment_id, e.member_id, e.member_name, e.completed_on
), outcome AS (
    SELECT j.n, j.status, coalesce(
        j.status = 'confirmed' AND f.report_id IS NOT NULL
        AND row_number() OVER (PARTITION BY j.report_id, j.status = 'confirmed' ORDER BY j.n) = 1,
        false) AS counted
    FROM judged j LEFT JOIN (SELECT report_id FROM fresh) f USING (report_id)
), completed AS (
    SELECT a.enrolment_id, a.member_id, a.member_name FROM added a
    JOIN enrolled e USING (enrolment_id)
    WHERE e.completed_on IS NULL AND a.completed_on IS NOT NULL
)
SELECT (SELECT count(*) FROM outcome WHERE counted) AS counted,
       (SELECT array_agg(n ORDER BY n) FROM outcome WHERE NOT counted) AS lines,
       (SELECT array_agg(status ORDER BY n) FROM outcome WHERE NOT counted) AS statuses,
       (SELECT array_agg(enrolment_id ORDER BY member_id) FROM completed) AS enrolment_ids,
       (SELECT array_agg(member_id ORDER BY member_id) FROM completed) AS member_ids,
       (SELECT array_agg(member_name ORDER BY member_id) FROM completed) AS member_names
"""


# A slice's lines as columns: report ids, member ids, minutes.
Lines = tuple[list[str], list[str], list[int]]


@dataclass(frozen=True)
class Completion:
    enrolment_id: str
    member_id: str
    member_name: str


@dataclass
class Counted:
    """What the statement did: lines counted, the lines not counted (their index in the batch
    and their member's enrolment status, None for no enrolment), and who completed."""

    counted: int
    not_counted: list[tuple[int, str | None]]
    completed: list[Completion]


class WatchedMinutes:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def count(
        self,
        class_id: str,
        lines: Lines,
        rule: CompletionRule,
        sessions: int,
        today: date,
    ) -> Counted:
        """Count (report ids, member ids, minutes) lines of one class, completing on ``today``."""
        # Planned for this class and these lines each time: from the sixth slice of a batch on,
        # Postgres's generic plan for the statement took 11 s a slice instead of 0.7 s.
        await self.conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        row = await self.conn.fetchrow(
            _COUNT_AND_COMPLETE,
            class_id,
            *lines,
            today,
            rule.min_attendance_percent,
            sessions,
            rule.pass_mark,
            rule.min_watched_minutes,
        )
        names = ("enrolment_ids", "member_ids", "member_names")
        completed = zip(*(row[name] or [] for name in names), strict=True)
        not_counted = zip(row["lines"] or [], row["statuses"] or [], strict=True)
        return Counted(
            counted=row["counted"],
            not_counted=[(n - 1, status) for n, status in not_counted],
            completed=[Completion(*c) for c in completed],
        )
