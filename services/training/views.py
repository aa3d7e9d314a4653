"""How the training API answers: plain JSON-ready dicts built from domain objects.

Names are masked in every answer (the house rule for default responses); member ids are not
personal data here: they are the membership service's opaque ids.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.training.certificates import Verification, mask_name
from services.training.classes import TrainingClass
from services.training.completion import Completed
from services.training.courses import Course
from services.training.enrolment import Enrolment, EnrolmentStatus
from services.training.reports import Counts, UnionReport


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _number(value: Decimal | int | None) -> str | int | None:
    # Scores and pass marks as strings: a decimal survives JSON without float rounding.
    return str(value) if isinstance(value, Decimal) else value


def course_view(course: Course) -> dict[str, Any]:
    rule = course.completion
    return {
        "course_id": course.course_id,
        "title": course.title,
        "kind": course.kind.value,
        "provider": course.provider,
        "description": course.description,
        "audience": {"kind": course.audience.kind.value, "target": course.audience.target},
        "completion": {
            "min_attendance_percent": rule.min_attendance_percent,
            "pass_mark": _number(rule.pass_mark),
            "min_watched_minutes": rule.min_watched_minutes,
        },
    }


def class_view(tc: TrainingClass) -> dict[str, Any]:
    policy = tc.waitlist_policy
    return {
        "class_id": tc.class_id,
        "course_id": tc.course.course_id,
        "course_title": tc.course.title,
        "name": tc.name,
        "capacity": tc.capacity,
        "seats_held": tc.seats_held(),
        "seats_free": tc.seats_free(),
        "waitlisted": len(tc.waitlist()),
        "enrolment_opens_at": _iso(tc.window.opens_at),
        "enrolment_closes_at": _iso(tc.window.closes_at),
        "requires_approval": tc.requires_approval,
        "releases_no_shows": tc.releases_no_shows,
        "waitlist": {
            "enabled": policy.enabled,
            "promotion": policy.promotion.value,
            "offer_hours": policy.offer_hours,
        },
        "sessions": [
            {
                "session_id": s.session_id,
                "starts_at": _iso(s.starts_at),
                "ends_at": _iso(s.ends_at),
                "venue": s.venue,
                "online_link": s.online_link,
            }
            for s in tc.sessions
        ],
    }


def enrolment_view(tc: TrainingClass, e: Enrolment) -> dict[str, Any]:
    waiting = e.status is EnrolmentStatus.WAITLISTED
    return {
        "enrolment_id": e.enrolment_id,
        "class_id": e.class_id,
        "member_id": e.member_id,
        "member_name": mask_name(e.member_name),
        "status": e.status.value,
        "waitlist_position": tc.waitlist_position(e.member_id) if waiting else None,
        "offer_expires_at": _iso(e.offer_expires_at),
        "enrolled_at": _iso(e.enrolled_at),
        "cancel_reason": e.cancel_reason,
        "cancelled_by": e.cancelled_by.value if e.cancelled_by else None,
        "attended_sessions": sorted(e.check_ins),
        "watched_minutes": e.watched_minutes,
        "score": _number(e.score),
        "completed_on": _iso(e.completed_on),
        "certificate_number": e.certificate.number if e.certificate else None,
    }


def progress_view(tc: TrainingClass, e: Enrolment) -> dict[str, Any]:
    """The enrolment with what the member still lacks to complete, if anything."""
    outcome = tc.completion_of(e.member_id)
    missing = (
        []
        if isinstance(outcome, Completed)
        else [
            {
                "criterion": s.criterion.value,
                "needed": _number(s.needed),
                "actual": _number(s.actual),
            }
            for s in outcome.reasons
        ]
    )
    return enrolment_view(tc, e) | {"missing_for_completion": missing}


def counts_view(counts: Counts) -> dict[str, int]:
    return asdict(counts)


def union_report_view(report: UnionReport) -> dict[str, Any]:
    return {
        "union_id": report.root_union_id,
        "year": report.year,
        "total": counts_view(report.total),
        "by_union": {child: counts_view(c) for child, c in report.by_child.items()},
    }


def verification_view(v: Verification) -> dict[str, Any]:
    return {
        "number": v.number,
        "genuine": v.genuine,
        "reason": v.reason,
        "holder": v.holder,
        "course_title": v.course_title,
        "class_name": v.class_name,
        "completed_on": _iso(v.completed_on),
        "issued_on": _iso(v.issued_on),
    }
