"""The training domain in one import: courses, classes, enrolment, attendance, certificates.

Pure: no I/O, no clock (every change takes ``now``, an aware datetime), no randomness except in
``new_certificate_number`` (whose source can be passed in). The modules behind this facade:

* ``courses``      — Course, its kind and audience
* ``members``      — the member view kept from membership events; ``eligible``
* ``sessions``     — Session; check-in codes
* ``policies``     — enrolment window; waitlist and promotion policy
* ``enrolment``    — Enrolment and its statuses
* ``classes``      — TrainingClass, the aggregate (parts: ``roster``, ``seats``, ``progress``)
* ``completion``   — CompletionRule, ``evaluate_completion``
* ``certificates`` — certificate numbers, masking, verification
* ``roll_ups``     — counts for the reports (pure)
* ``shared.errors`` — DomainError, Conflict, NotFound (re-exported here)
"""

from __future__ import annotations

from services.training.certificates import (
    Certificate,
    Verification,
    is_valid_certificate_number,
    mask_name,
    new_certificate_number,
    read_certificate_number,
    verify_certificate,
)
from services.training.classes import LEFT_UNION, NO_SHOW, OFFER_EXPIRED, TrainingClass
from services.training.completion import (
    AttendanceTally,
    Completed,
    CompletionRule,
    Criterion,
    NotYet,
    Outcome,
    Shortfall,
    evaluate_completion,
)
from services.training.courses import Audience, AudienceKind, Course, CourseKind
from services.training.enrolment import (
    Actor,
    CheckIn,
    CheckInMethod,
    Enrolment,
    EnrolmentStatus,
)
from services.training.members import (
    Ineligible,
    MemberStatus,
    MemberView,
    apply_membership_event,
    eligible,
)
from services.training.policies import EnrolmentWindow, PromotionMode, WaitlistPolicy
from services.training.roll_ups import (
    Counts,
    EnrolmentFact,
    UnionReport,
    count,
    facts_of,
    roll_up_by,
    roll_up_class,
    roll_up_union,
)
from services.training.sessions import (
    CHECK_IN_OPENS_BEFORE,
    Session,
    check_session_code,
    session_code,
)
from shared.errors import Conflict, DomainError, NotFound

__all__ = [
    "CHECK_IN_OPENS_BEFORE",
    "LEFT_UNION",
    "NO_SHOW",
    "OFFER_EXPIRED",
    "Actor",
    "AttendanceTally",
    "Audience",
    "AudienceKind",
    "Certificate",
    "CheckIn",
    "CheckInMethod",
    "Completed",
    "CompletionRule",
    "Conflict",
    "Counts",
    "Course",
    "CourseKind",
    "Criterion",
    "DomainError",
    "Enrolment",
    "EnrolmentFact",
    "EnrolmentStatus",
    "EnrolmentWindow",
    "Ineligible",
    "MemberStatus",
    "MemberView",
    "NotFound",
    "NotYet",
    "Outcome",
    "PromotionMode",
    "Session",
    "Shortfall",
    "TrainingClass",
    "UnionReport",
    "Verification",
    "WaitlistPolicy",
    "apply_membership_event",
    "check_session_code",
    "count",
    "eligible",
    "evaluate_completion",
    "facts_of",
    "is_valid_certificate_number",
    "mask_name",
    "new_certificate_number",
    "read_certificate_number",
    "roll_up_by",
    "roll_up_class",
    "roll_up_union",
    "session_code",
    "verify_certificate",
]
