"""Courses: what is taught, by whom, to whom, and what counts as completing it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from services.training.completion import CompletionRule
from shared.errors import DomainError


class CourseKind(StrEnum):
    CADRE_TRAINING = "cadre_training"
    SKILLS_TRAINING = "skills_training"
    LECTURE_SERIES = "lecture_series"


class AudienceKind(StrEnum):
    ALL_MEMBERS = "all_members"
    CADRES = "cadres"
    # A member category from the membership service, e.g. platform workers (新就业形态).
    CATEGORY = "category"
    # Members of one union and every union below it, e.g. a county federation's subtree.
    UNION_SUBTREE = "union_subtree"


@dataclass(frozen=True)
class Audience:
    """Who may enrol. ``target`` is the category or the subtree's root union id."""

    kind: AudienceKind = AudienceKind.ALL_MEMBERS
    target: str | None = None

    def __post_init__(self) -> None:
        needs_target = self.kind in (AudienceKind.CATEGORY, AudienceKind.UNION_SUBTREE)
        if needs_target and not self.target:
            raise DomainError("audience", "target_required", f"{self.kind} audience needs a target")
        if not needs_target and self.target is not None:
            raise DomainError(
                "audience", "unexpected_target", f"{self.kind} audience has no target"
            )

    @classmethod
    def everyone(cls) -> Audience:
        return cls(AudienceKind.ALL_MEMBERS)

    @classmethod
    def cadres(cls) -> Audience:
        return cls(AudienceKind.CADRES)

    @classmethod
    def category(cls, category: str) -> Audience:
        return cls(AudienceKind.CATEGORY, category)

    @classmethod
    def union_subtree(cls, union_id: str) -> Audience:
        return cls(AudienceKind.UNION_SUBTREE, union_id)


@dataclass(frozen=True)
class Course:
    course_id: str
    title: str
    kind: CourseKind
    provider: str
    description: str = ""
    audience: Audience = field(default_factory=Audience)
    completion: CompletionRule = field(default_factory=CompletionRule)

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise DomainError("title", "required", "a course needs a title")
