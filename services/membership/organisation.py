"""Union organisations: the city federation, county federations and grassroots unions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from services.membership.identity import (
    credit_code_problem,
    normalise_credit_code,
)
from services.membership.rules import ORGANISATION_NAME_MAX, TEXT_MAX, _not_future, _text
from shared.errors import Conflict as Conflict
from shared.errors import DomainError as DomainError
from shared.errors import NotFound as NotFound
from shared.events.base import EventData
from shared.events.membership import (
    OrganisationChanged,
    OrganisationDissolved,
    OrganisationEstablished,
)


class OrgKind(StrEnum):
    CITY_FEDERATION = "city_federation"
    COUNTY_FEDERATION = "county_federation"
    ENTERPRISE = "enterprise"
    PUBLIC_INSTITUTION = "public_institution"
    SOCIAL_ORGANISATION = "social_organisation"
    SMALL_THREE_LEVEL = "small_three_level"
    PLATFORM_COMPANY = "platform_company"


FEDERATIONS = frozenset({OrgKind.CITY_FEDERATION, OrgKind.COUNTY_FEDERATION})
# Townships, villages and communities lie inside a county or district, so their unions report to
# its federation; other grassroots unions may also report to the city federation directly
# (city-level enterprises and public institutions).
PARENT_KINDS: dict[OrgKind, frozenset[OrgKind]] = {
    OrgKind.CITY_FEDERATION: frozenset(),
    OrgKind.COUNTY_FEDERATION: frozenset({OrgKind.CITY_FEDERATION}),
    OrgKind.SMALL_THREE_LEVEL: frozenset({OrgKind.COUNTY_FEDERATION}),
    OrgKind.ENTERPRISE: FEDERATIONS,
    OrgKind.PUBLIC_INSTITUTION: FEDERATIONS,
    OrgKind.SOCIAL_ORGANISATION: FEDERATIONS,
    OrgKind.PLATFORM_COMPANY: FEDERATIONS,
}
# A township or village union covers many small workplaces, so it may have no single employer.
EMPLOYER_OPTIONAL = frozenset({OrgKind.SMALL_THREE_LEVEL})


class HeadcountBand(StrEnum):
    UPTO_24 = "1-24"
    UPTO_99 = "25-99"
    UPTO_499 = "100-499"
    UPTO_999 = "500-999"
    FROM_1000 = "1000+"


@dataclass(frozen=True, slots=True)
class Employer:
    name: str
    credit_code: str
    headcount_band: HeadcountBand
    address: str

    @classmethod
    def of(cls, *, name: str, credit_code: str, headcount_band: str, address: str) -> Employer:
        code = normalise_credit_code(credit_code)
        problem = credit_code_problem(code)
        if problem:
            raise DomainError("employer.credit_code", *problem)
        try:
            band = HeadcountBand(headcount_band)
        except ValueError:
            message = f"unknown band {headcount_band!r}"
            raise DomainError(
                "employer.headcount_band", "unknown_headcount_band", message
            ) from None
        return cls(
            _text(name, "employer.name", ORGANISATION_NAME_MAX),
            code,
            band,
            _text(address, "employer.address", TEXT_MAX),
        )


class Organisation:
    """A federation or a grassroots union, placed in the city's tree."""

    def __init__(
        self,
        *,
        id: str,
        name: str,
        kind: OrgKind,
        parent_id: str | None,
        path: list[str],
        employer: Employer | None = None,
        founded_on: date | None = None,
        dissolved_on: date | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.kind = kind
        self.parent_id = parent_id
        self.path = path  # ancestor ids, the city federation first, the parent last
        self.employer = employer
        self.founded_on = founded_on
        self.dissolved_on = dissolved_on
        self.events: list[EventData] = []

    @property
    def is_federation(self) -> bool:
        return self.kind in FEDERATIONS

    @property
    def is_dissolved(self) -> bool:
        return self.dissolved_on is not None

    @property
    def lineage(self) -> list[str]:
        """This organisation and its ancestors, city federation first: a child's path."""
        return [*self.path, self.id]

    @classmethod
    def establish(
        cls,
        *,
        id: str,
        name: str,
        kind: str,
        parent: Organisation | None,
        employer: Employer | None = None,
        founded_on: date | None = None,
        today: date,
    ) -> Organisation:
        try:
            org_kind = OrgKind(kind)
        except ValueError:
            raise DomainError("kind", "unknown_kind", f"unknown kind {kind!r}") from None
        if parent is None and org_kind is not OrgKind.CITY_FEDERATION:
            raise DomainError(
                "parent_id", "parent_required", f"a {org_kind} union needs a parent federation"
            )
        if parent is not None:
            _check_placement(org_kind, parent)
        if org_kind in FEDERATIONS:
            if employer is not None:
                raise DomainError(
                    "employer", "employer_not_allowed", "only grassroots unions record an employer"
                )
        else:
            if founded_on is None:
                raise DomainError(
                    "founded_on",
                    "founded_on_required",
                    "a grassroots union needs its founding date",
                )
            if employer is None and org_kind not in EMPLOYER_OPTIONAL:
                raise DomainError(
                    "employer", "employer_required", f"a {org_kind} union records its employer"
                )
        if founded_on is not None:
            _not_future(founded_on, "founded_on", today)
        org = cls(
            id=id,
            name=_text(name, "name", ORGANISATION_NAME_MAX),
            kind=org_kind,
            parent_id=parent.id if parent else None,
            path=parent.lineage if parent else [],
            employer=employer,
            founded_on=founded_on,
        )
        org.events.append(
            OrganisationEstablished(
                organisation_id=org.id,
                name=org.name,
                kind=org.kind,
                parent_id=org.parent_id,
                path=org.path,
                founded_on=founded_on,
                employer_credit_code=employer.credit_code if employer else None,
                employer_name=employer.name if employer else None,
            )
        )
        return org

    def rename(self, name: str) -> None:
        self._still_standing()
        new_name = _text(name, "name", ORGANISATION_NAME_MAX)
        if new_name != self.name:
            self.name = new_name
            self._changed(["name"])

    def move_under(self, parent: Organisation) -> None:
        """Place this organisation under another parent. Its descendants must then follow."""
        self._still_standing()
        if parent.id == self.id:
            raise DomainError("parent_id", "move_under_itself", "cannot move under itself")
        if self.id in parent.path:
            raise DomainError(
                "parent_id", "move_under_descendant", "cannot move under its own descendant"
            )
        _check_placement(self.kind, parent)
        if parent.id != self.parent_id:
            self.parent_id = parent.id
            self.path = parent.lineage
            self._changed(["parent_id", "path"])

    def follow_parent(self, parent: Organisation) -> None:
        """Take the new path after an ancestor moved; call it for the subtree, parents first."""
        if parent.id != self.parent_id:
            raise DomainError(
                "parent_id", "not_the_parent", f"{parent.id} is not the parent of {self.id}"
            )
        if parent.lineage != self.path:
            self.path = parent.lineage
            self._changed(["path"])

    def dissolve(
        self, *, on: date, today: date, active_members: int, child_organisations: int
    ) -> None:
        """``active_members`` counts every member who has not left, suspended ones included."""
        self._still_standing()
        if self.kind is OrgKind.CITY_FEDERATION:
            raise DomainError(
                "kind", "city_federation_permanent", "the city federation cannot be dissolved"
            )
        _not_future(on, "dissolved_on", today)
        if self.founded_on and on < self.founded_on:
            raise DomainError(
                "dissolved_on", "before_founding", f"before the founding on {self.founded_on}"
            )
        if active_members:
            raise Conflict(
                "active_members", "members_remain", f"{active_members} members have not left"
            )
        if child_organisations:
            raise Conflict(
                "child_organisations",
                "organisations_remain",
                f"{child_organisations} organisations remain",
            )
        self.dissolved_on = on
        self.events.append(OrganisationDissolved(organisation_id=self.id, dissolved_on=on))

    def _still_standing(self) -> None:
        if self.dissolved_on is not None:
            raise Conflict(
                "organisation_id",
                "organisation_dissolved",
                f"dissolved on {self.dissolved_on.isoformat()}",
            )

    def _changed(self, fields: list[str]) -> None:
        self.events.append(
            OrganisationChanged(
                organisation_id=self.id,
                name=self.name,
                parent_id=self.parent_id,
                path=self.path,
                changed_fields=fields,
            )
        )


def _check_placement(kind: OrgKind, parent: Organisation) -> None:
    if parent.kind not in PARENT_KINDS[kind]:
        raise DomainError(
            "parent_id", "placement_not_allowed", f"a {kind} union cannot sit under a {parent.kind}"
        )
    if parent.is_dissolved:
        raise Conflict("parent_id", "parent_dissolved", f"{parent.id} is dissolved")


def _accepting_members(union: Organisation) -> None:
    # Members belong to grassroots unions; a federation's own staff form a grassroots union too.
    if union.is_federation:
        raise DomainError(
            "union_id",
            "not_a_grassroots_union",
            f"{union.id} is a federation, not a grassroots union",
        )
    if union.is_dissolved:
        raise Conflict("union_id", "union_dissolved", f"{union.id} is dissolved")
