"""The catalogue as staff and the member portal search it: courses and classes, a page at a time.

Read-only queries straight to answers (``views``): a page of classes is counted in SQL, never by
loading each class with its enrolments. A class is open for enrolment at ``now`` when its window
holds it (``EnrolmentWindow``: from ``opens_at`` inclusive until ``closes_at`` exclusive); a
course is when one of its classes is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from services.training.courses import AudienceKind, CourseKind
from services.training.enrolment import SEAT_HOLDING, EnrolmentStatus
from services.training.policies import PromotionMode
from services.training.records import course_of, session_of
from services.training.views import (
    ClassPage,
    ClassView,
    CoursePage,
    CourseView,
    SessionView,
    WaitlistView,
)
from shared.errors import NotFound

_OPEN = "c.enrolment_opens_at <= {now} AND c.enrolment_closes_at > {now}"
_SEAT_HOLDING = sorted(status.value for status in SEAT_HOLDING)


@dataclass
class Filters:
    """WHERE conditions with their numbered arguments."""

    conditions: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, condition: str, *values: Any) -> None:
        self.conditions.append(condition.format(*(self.arg(v) for v in values)))

    def where(self) -> str:
        return f" WHERE {' AND '.join(self.conditions)}" if self.conditions else ""


def _open_filter(
    filters: Filters, open_for_enrolment: bool | None, now: datetime | None, within: str
) -> None:
    if open_for_enrolment is None:
        return
    now_arg = filters.arg(now)
    exists = within.format(open=_OPEN.format(now=now_arg))
    filters.conditions.append(exists if open_for_enrolment else f"NOT ({exists})")


class Catalogue:
    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def courses(
        self,
        now: datetime,
        *,
        title: str | None = None,
        kind: CourseKind | None = None,
        audience: AudienceKind | None = None,
        open_for_enrolment: bool | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> CoursePage:
        """Newest first; ``title`` matches any part of the title, case-insensitively."""
        filters = Filters()
        if title is not None:
            filters.add("strpos(lower(co.title), lower({})) > 0", title)
        if kind is not None:
            filters.add("co.kind = {}", kind.value)
        if audience is not None:
            filters.add("co.audience_kind = {}", audience.value)
        _open_filter(
            filters,
            open_for_enrolment,
            now,
            "EXISTS (SELECT 1 FROM classes c WHERE c.course_id = co.course_id AND {open})",
        )
        where = filters.where()
        total = await self.conn.fetchval(f"SELECT count(*) FROM courses co{where}", *filters.args)
        page = f"OFFSET {filters.arg(offset)} LIMIT {filters.arg(limit)}"
        rows = await self.conn.fetch(
            f"SELECT co.* FROM courses co{where} ORDER BY co.created_at DESC, co.course_id {page}",
            *filters.args,
        )
        return CoursePage.of([CourseView.model_validate(course_of(r)) for r in rows], total, offset)

    async def classes(
        self,
        now: datetime | None,
        *,
        course_id: str | None = None,
        open_for_enrolment: bool | None = None,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
        class_id: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> ClassPage:
        """In the order they start; ``starts_from`` inclusive, ``starts_before`` exclusive."""
        filters = Filters()
        if class_id is not None:
            filters.add("c.class_id = {}", class_id)
        if course_id is not None:
            filters.add("c.course_id = {}", course_id)
        if starts_from is not None:
            filters.add("c.starts_at >= {}", starts_from)
        if starts_before is not None:
            filters.add("c.starts_at < {}", starts_before)
        _open_filter(filters, open_for_enrolment, now, "{open}")
        where = filters.where()
        total = await self.conn.fetchval(f"SELECT count(*) FROM classes c{where}", *filters.args)
        seat_holding = filters.arg(_SEAT_HOLDING)
        page = f"OFFSET {filters.arg(offset)} LIMIT {filters.arg(limit)}"
        rows = await self.conn.fetch(
            "SELECT c.*, co.title AS course_title,"
            # A class with a capacity keeps its counters; one without is counted when asked.
            " coalesce(c.seats_held, (SELECT count(*) FROM enrolments e"
            " WHERE e.class_id = c.class_id"
            f" AND e.status = ANY({seat_holding}::text[])))::int AS seats_held,"
            " coalesce(c.waitlisted, (SELECT count(*) FROM enrolments e"
            " WHERE e.class_id = c.class_id"
            f" AND e.status = '{EnrolmentStatus.WAITLISTED.value}'))::int AS waitlisted"
            f" FROM classes c JOIN courses co USING (course_id){where}"
            f" ORDER BY c.starts_at, c.class_id {page}",
            *filters.args,
        )
        sessions = await self._sessions([r["class_id"] for r in rows])
        items = [_class_view(r, sessions.get(r["class_id"], [])) for r in rows]
        return ClassPage.of(items, total, offset)

    async def _sessions(self, class_ids: list[str]) -> dict[str, list[SessionView]]:
        if not class_ids:
            return {}
        rows = await self.conn.fetch(
            "SELECT * FROM sessions WHERE class_id = ANY($1::text[]) ORDER BY starts_at",
            class_ids,
        )
        by_class: dict[str, list[SessionView]] = {}
        for row in rows:
            by_class.setdefault(row["class_id"], []).append(
                SessionView.model_validate(session_of(row))
            )
        return by_class


async def one_class(conn: asyncpg.Connection | asyncpg.Pool, class_id: str) -> ClassView:
    """One class as the catalogue shows it; 404 ``unknown_class``."""
    page = await Catalogue(conn).classes(None, class_id=class_id, limit=1)
    if not page.items:
        raise NotFound("class_id", "unknown_class", f"there is no class {class_id}")
    return page.items[0]


def _class_view(row: asyncpg.Record, sessions: list[SessionView]) -> ClassView:
    return ClassView(
        class_id=row["class_id"],
        course_id=row["course_id"],
        course_title=row["course_title"],
        name=row["name"],
        capacity=row["capacity"],
        seats_held=row["seats_held"],
        waitlisted=row["waitlisted"],
        enrolment_opens_at=row["enrolment_opens_at"],
        enrolment_closes_at=row["enrolment_closes_at"],
        requires_approval=row["requires_approval"],
        releases_no_shows=row["releases_no_shows"],
        waitlist=WaitlistView(
            enabled=row["waitlist_enabled"],
            promotion=PromotionMode(row["promotion"]),
            offer_hours=row["offer_hours"],
        ),
        sessions=sessions,
    )
