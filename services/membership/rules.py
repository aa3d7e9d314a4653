"""Rules every membership aggregate shares: text limits, dates, identity parsing, categories."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from enum import StrEnum

from services.membership.identity import (
    ResidentId,
    Sex,
    id_number_problem,
    mobile_problem,
    normalise_id_number,
    normalise_mobile,
)
from shared.errors import Conflict as Conflict
from shared.errors import DomainError as DomainError
from shared.errors import NotFound as NotFound

NAME_MAX = 50
ORGANISATION_NAME_MAX = 100
TEXT_MAX = 200
MINIMUM_AGE = 16  # the legal working age: nobody younger joins a workers' union


def _text(value: str, field: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise DomainError(field, "blank", "must not be empty")
    if len(text) > limit:
        raise DomainError(field, "too_long", f"must be at most {limit} characters")
    return text


def _not_future(on: date, field: str, today: date) -> None:
    if on > today:
        raise DomainError(field, "date_in_future", f"{on.isoformat()} is in the future")


def parse_id_number(raw: str, today: date) -> ResidentId:
    number = normalise_id_number(raw)
    problem = id_number_problem(number, today)
    if problem:
        raise DomainError("id_number", *problem)
    return ResidentId.of(number)


def parse_mobile(raw: str) -> str:
    mobile = normalise_mobile(raw)
    problem = mobile_problem(mobile)
    if problem:
        raise DomainError("mobile", *problem)
    return mobile


class Category(StrEnum):
    MIGRANT_WORKER = "migrant_worker"
    NEW_EMPLOYMENT_FORM = "new_employment_form"
    WOMAN = "woman"


# HR rosters and forms often name categories in Chinese.
CATEGORY_NAMES: dict[str, Category] = {c.value: c for c in Category} | {
    "农民工": Category.MIGRANT_WORKER,
    "新就业形态": Category.NEW_EMPLOYMENT_FORM,
    "女": Category.WOMAN,
    "女职工": Category.WOMAN,
}


def declared_categories(values: Iterable[str], sex: Sex) -> frozenset[Category]:
    """The categories a member declares, checked against the ID number.

    'woman' is derived from the ID number, not stored: declaring it is accepted when the ID number
    agrees (and dropped), refused when it contradicts, so one source of truth stays.
    """
    found: set[Category] = set()
    for value in values:
        category = CATEGORY_NAMES.get(value.strip().lower())
        if category is None:
            raise DomainError("categories", "unknown_category", f"unknown category {value!r}")
        if category is Category.WOMAN:
            if sex is not Sex.FEMALE:
                raise DomainError(
                    "categories",
                    "contradicts_id_number",
                    "'woman' contradicts the ID number (a man's)",
                )
            continue
        found.add(category)
    return frozenset(found)
