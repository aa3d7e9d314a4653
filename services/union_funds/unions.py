"""Union funds' own view of the union tree, kept from membership's organisation events.

Union funds never asks membership anything and never reads its tables: it keeps, per organisation
(federations included, for reports over a subtree), what matching and reporting need: the name,
the path of ancestors, the employer's credit code and name, the founding and dissolution dates.
:func:`apply_membership_event` is the whole projection; the handler stores its result. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from shared.events.base import EventData
from shared.events.membership import (
    OrganisationChanged,
    OrganisationDissolved,
    OrganisationEstablished,
)


@dataclass(frozen=True, slots=True)
class Union:
    """A federation or a grassroots union as membership announced it."""

    id: str
    name: str
    kind: str  # membership's organisation kind (city_federation, enterprise, ...)
    path: tuple[str, ...]  # ancestor ids, the city federation first, the parent last
    credit_code: str | None = None  # the employer's unified social credit code
    employer_name: str | None = None  # None also when announced before events carried it
    founded_on: date | None = None
    dissolved_on: date | None = None

    def standing_on(self, day: date) -> bool:
        """Not dissolved by ``day``: a union dissolved on a day no longer stands on it."""
        return self.dissolved_on is None or self.dissolved_on > day

    def in_subtree(self, root: str) -> bool:
        return self.id == root or root in self.path


def apply_membership_event(view: Union | None, event: EventData) -> Union | None:
    """The view after one membership event. A change or dissolution of an organisation never seen
    established leaves no view: union funds cannot invent its kind or employer (the runbook seeds
    organisations established before union funds followed membership)."""
    if isinstance(event, OrganisationEstablished):
        return Union(
            id=event.organisation_id,
            name=event.name,
            kind=event.kind,
            path=tuple(event.path),
            credit_code=event.employer_credit_code,
            employer_name=event.employer_name,
            founded_on=event.founded_on,
        )
    if view is None:
        return None
    if isinstance(event, OrganisationChanged):
        return replace(view, name=event.name, path=tuple(event.path))
    if isinstance(event, OrganisationDissolved):
        return replace(view, dissolved_on=event.dissolved_on)
    return view
