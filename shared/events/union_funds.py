"""Events the union funds service (工会经费) publishes: remittances the tax bureau collected,
matched to a union or not, and the subsidies city finance granted.

The remittance events keep the type names they were first published under, when union funds ran
inside the membership service (``gonghui.membership.remittance.*``): a type name is a contract,
and subscribers match on it. They now come from ``gonghui/union_funds`` on ``union_funds.events``.
"""

from __future__ import annotations

from typing import ClassVar

from shared.events.base import EventData, event

SOURCE = "gonghui/union_funds"


class RemittanceEvent(EventData):
    """Union funds the tax bureau collected from an employer (see services.union_funds.remittances).

    Keyed by the employer's credit code: an employer's remittances stay in order, and an employer
    without a union yet has no other id.
    """

    source: ClassVar[str] = SOURCE
    credit_code: str

    def subject(self) -> str:
        return self.credit_code


@event
class RemittanceMatched(RemittanceEvent):
    type: ClassVar[str] = "gonghui.membership.remittance.matched"
    union_id: str
    period: str  # "2026-10" (a month) or "2026Q3" (a quarter)
    amount_fen: int


@event
class RemittanceUnmatched(RemittanceEvent):
    """The employer has no standing union: a prompt to organise it."""

    type: ClassVar[str] = "gonghui.membership.remittance.unmatched"
    employer_name: str
    period: str
    amount_fen: int


@event
class SubsidyGranted(EventData):
    """City finance granted a union an administrative subsidy for a period. Keyed by the union,
    so its subsidies stay in order."""

    type: ClassVar[str] = "gonghui.union_funds.subsidy.granted"
    source: ClassVar[str] = SOURCE
    reference: str  # finance's own
    union_id: str
    period: str  # "2026", "2026Q3" or "2026-10"
    amount_fen: int
    members_covered: int

    def subject(self) -> str:
        return self.union_id
