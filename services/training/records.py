"""Rows of the training schema as domain objects, and domain objects as rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from services.training.certificates import Certificate
from services.training.completion import CompletionRule
from services.training.courses import Audience, AudienceKind, Course, CourseKind
from services.training.enrolment import Actor, CheckIn, CheckInMethod, Enrolment, EnrolmentStatus
from services.training.sessions import Session


def course_of(row: asyncpg.Record) -> Course:
    return Course(
        course_id=row["course_id"],
        title=row["title"],
        kind=CourseKind(row["kind"]),
        provider=row["provider"],
        description=row["description"],
        audience=Audience(AudienceKind(row["audience_kind"]), row["audience_target"]),
        completion=CompletionRule(
            min_attendance_percent=row["min_attendance_percent"],
            pass_mark=row["pass_mark"],
            min_watched_minutes=row["min_watched_minutes"],
        ),
    )


def certificate_of(row: asyncpg.Record) -> Certificate:
    return Certificate(
        number=row["number"],
        enrolment_id=row["enrolment_id"],
        member_id=row["member_id"],
        holder_name=row["holder_name"],
        course_id=row["course_id"],
        course_title=row["course_title"],
        class_id=row["class_id"],
        class_name=row["class_name"],
        completed_on=row["completed_on"],
        issued_on=row["issued_on"],
    )


def session_of(row: asyncpg.Record) -> Session:
    return Session(
        session_id=row["session_id"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        venue=row["venue"],
        online_link=row["online_link"],
        reminded_at=row["reminded_at"],
    )


def enrolments_of(
    rows: Iterable[asyncpg.Record],
    check_ins: Iterable[asyncpg.Record],
    certificates: Iterable[asyncpg.Record],
) -> list[Enrolment]:
    checked: dict[str, dict[str, CheckIn]] = {}
    for c in check_ins:
        checked.setdefault(c["enrolment_id"], {})[c["session_id"]] = CheckIn(
            c["session_id"], CheckInMethod(c["method"]), c["recorded_at"]
        )
    certified = {c["enrolment_id"]: certificate_of(c) for c in certificates}
    return [
        Enrolment(
            enrolment_id=r["enrolment_id"],
            class_id=r["class_id"],
            member_id=r["member_id"],
            member_name=r["member_name"],
            union_id=r["union_id"],
            union_path=tuple(r["union_path"]),
            status=EnrolmentStatus(r["status"]),
            sequence=r["sequence"],
            enrolled_at=r["enrolled_at"],
            offer_expires_at=r["offer_expires_at"],
            cancel_reason=r["cancel_reason"],
            cancelled_by=Actor(r["cancelled_by"]) if r["cancelled_by"] else None,
            check_ins=checked.get(r["enrolment_id"], {}),
            watched_minutes=r["watched_minutes"],
            score=r["score"],
            completed_on=r["completed_on"],
            certificate=certified.get(r["enrolment_id"]),
        )
        for r in rows
    ]


def enrolment_row(e: Enrolment) -> tuple[Any, ...]:
    return (
        e.enrolment_id,
        e.class_id,
        e.member_id,
        e.member_name,
        e.union_id,
        list(e.union_path),
        e.status.value,
        e.sequence,
        e.enrolled_at,
        e.offer_expires_at,
        e.cancel_reason,
        e.cancelled_by.value if e.cancelled_by else None,
        e.watched_minutes,
        e.score,
        e.completed_on,
    )


ENROLMENT_COLUMNS = (
    "enrolment_id, class_id, member_id, member_name, union_id, union_path, status, sequence,"
    " enrolled_at, offer_expires_at, cancel_reason, cancelled_by, watched_minutes, score,"
    " completed_on"
)
INSERT_ENROLMENT = (
    f"INSERT INTO enrolments ({ENROLMENT_COLUMNS})"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)
UPDATE_ENROLMENT = (
    "UPDATE enrolments SET member_name = $4, union_id = $5, union_path = $6, status = $7,"
    " sequence = $8, enrolled_at = $9, offer_expires_at = $10, cancel_reason = $11,"
    " cancelled_by = $12, watched_minutes = $13, score = $14, completed_on = $15,"
    " updated_at = now() WHERE enrolment_id = $1 AND class_id = $2 AND member_id = $3"
)


async def insert_certificate(conn: asyncpg.Connection, c: Certificate) -> None:
    await conn.execute(
        "INSERT INTO certificates (number, enrolment_id, member_id, holder_name, course_id,"
        " course_title, class_id, class_name, completed_on, issued_on)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        c.number,
        c.enrolment_id,
        c.member_id,
        c.holder_name,
        c.course_id,
        c.course_title,
        c.class_id,
        c.class_name,
        c.completed_on,
        c.issued_on,
    )
