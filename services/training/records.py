"""Rows of the training schema as domain objects, and domain objects as rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from services.training.certificates import Certificate
from services.training.completion import CompletionRule
from services.training.courses import Audience, AudienceKind, Course, CourseKind
from services.training.enrolment import Actor, CheckIn, CheckInMethod, Enrolment, EnrolmentStatus
from services.training.members import MemberStatus, MemberView
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


def member_of(row: Mapping[str, Any]) -> MemberView:
    return MemberView(
        member_id=row["member_id"],
        name=row["name"],
        status=MemberStatus(row["status"]),
        union_id=row["union_id"],
        union_path=tuple(row["union_path"]),
        categories=frozenset(row["categories"]),
        is_cadre=row["is_cadre"],
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


_NAMES = (
    "enrolment_id, class_id, member_id, member_name, union_id, union_path, status, sequence,"
    " enrolled_at, offer_expires_at, cancel_reason, cancelled_by, watched_minutes, score,"
    " completed_on"
)
# One statement for any number of rows (one enrolment, or a lecture's 300,000 viewers). Paths go
# as JSON text: asyncpg would take a list of lists for a two-dimensional array.
_ROWS = (
    "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
    " $8::int[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::int[],"
    f" $14::numeric[], $15::date[]) AS r({_NAMES})"
)
_PATH = "ARRAY(SELECT jsonb_array_elements_text(r.union_path::jsonb))"
INSERT_ENROLMENTS = (
    f"INSERT INTO enrolments ({_NAMES}) SELECT r.enrolment_id, r.class_id, r.member_id,"
    f" r.member_name, r.union_id, {_PATH}, r.status, r.sequence, r.enrolled_at,"
    " r.offer_expires_at, r.cancel_reason, r.cancelled_by, r.watched_minutes, r.score,"
    f" r.completed_on FROM {_ROWS}"
)
UPDATE_ENROLMENTS = (
    "UPDATE enrolments e SET member_name = r.member_name, union_id = r.union_id,"
    f" union_path = {_PATH}, status = r.status, sequence = r.sequence,"
    " enrolled_at = r.enrolled_at, offer_expires_at = r.offer_expires_at,"
    " cancel_reason = r.cancel_reason, cancelled_by = r.cancelled_by,"
    " watched_minutes = r.watched_minutes, score = r.score, completed_on = r.completed_on,"
    f" updated_at = now() FROM {_ROWS}"
    " WHERE e.enrolment_id = r.enrolment_id AND e.class_id = r.class_id"
    " AND e.member_id = r.member_id"
)


def columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows of ``enrolment_row`` as the column arrays the statements above take."""
    cols: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)] or [[] for _ in range(15)]
    cols[5] = [orjson.dumps(path).decode() for path in cols[5]]
    return cols


async def insert_certificates(
    conn: asyncpg.Connection, certificates: Sequence[Certificate]
) -> None:
    await conn.execute(
        "INSERT INTO certificates (number, enrolment_id, member_id, holder_name, course_id,"
        " course_title, class_id, class_name, completed_on, issued_on)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        " $6::text[], $7::text[], $8::text[], $9::date[], $10::date[])",
        *(
            list(column)
            for column in zip(
                *(
                    (
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
                    for c in certificates
                ),
                strict=True,
            )
        ),
    )
