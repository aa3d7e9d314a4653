"""The training service's own view of members, and who may enrol in a course.

Training never asks the membership service who someone is: it keeps a small view built from
membership events (``apply_membership_event``), so enrolment keeps working when membership is down.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from services.training.courses import AudienceKind, Course
from shared.events.base import EventData
from shared.events.membership import (
    MemberDetailsChanged,
    MemberJoined,
    MemberLeft,
    MemberReinstated,
    MemberSuspended,
    MemberTransferred,
)

# Membership events carry no cadre flag; a member is a cadre when membership files them under this
# category. One constant so it is changed in one place if membership names it differently.
CADRE_CATEGORY = "cadre"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    LEFT = "left"


@dataclass(frozen=True)
class MemberView:
    member_id: str
    name: str
    status: MemberStatus
    union_id: str
    # Ancestor union ids from the city federation down (the member's own union may or may not be
    # included: ``in_subtree`` accepts both).
    union_path: tuple[str, ...]
    categories: frozenset[str] = frozenset()
    is_cadre: bool = False

    def in_subtree(self, root_union_id: str) -> bool:
        return self.union_id == root_union_id or root_union_id in self.union_path


class Ineligible(StrEnum):
    MEMBER_SUSPENDED = "member_suspended"
    MEMBER_LEFT = "member_left"
    CADRES_ONLY = "cadres_only"
    NOT_IN_CATEGORY = "not_in_category"
    OUTSIDE_UNION_SUBTREE = "outside_union_subtree"


def eligible(course: Course, member: MemberView) -> Ineligible | None:
    """None if the member may enrol in the course, else the reason they may not."""
    if member.status is MemberStatus.SUSPENDED:
        return Ineligible.MEMBER_SUSPENDED
    if member.status is MemberStatus.LEFT:
        return Ineligible.MEMBER_LEFT
    audience = course.audience
    if audience.kind is AudienceKind.CADRES and not member.is_cadre:
        return Ineligible.CADRES_ONLY
    if audience.kind is AudienceKind.CATEGORY and audience.target not in member.categories:
        return Ineligible.NOT_IN_CATEGORY
    if (
        audience.kind is AudienceKind.UNION_SUBTREE
        and audience.target is not None
        and not member.in_subtree(audience.target)
    ):
        return Ineligible.OUTSIDE_UNION_SUBTREE
    return None


def apply_membership_event(view: MemberView | None, event: EventData) -> MemberView | None:
    """The member view after one membership event (pure; the handler stores the result).

    An event about a member never seen joining (the view is None) leaves no view: training cannot
    invent a union or a name, and the member's ``MemberJoined`` replay will create it.
    """
    if isinstance(event, MemberJoined):
        categories = frozenset(event.categories)
        return MemberView(
            member_id=event.member_id,
            name=event.name,
            status=MemberStatus.ACTIVE,
            union_id=event.union_id,
            union_path=tuple(event.union_path),
            categories=categories,
            is_cadre=CADRE_CATEGORY in categories,
        )
    if view is None:
        return None
    if isinstance(event, MemberDetailsChanged):
        categories = frozenset(event.categories)
        return replace(
            view, name=event.name, categories=categories, is_cadre=CADRE_CATEGORY in categories
        )
    if isinstance(event, MemberTransferred):
        return replace(view, union_id=event.to_union_id, union_path=tuple(event.union_path))
    if isinstance(event, MemberSuspended):
        return replace(view, status=MemberStatus.SUSPENDED)
    if isinstance(event, MemberReinstated):
        return replace(view, status=MemberStatus.ACTIVE)
    if isinstance(event, MemberLeft):
        return replace(view, status=MemberStatus.LEFT)
    return view
