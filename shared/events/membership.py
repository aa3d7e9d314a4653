"""Events the membership service publishes: the only way other services learn who is a member."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from shared.events.base import EventData, event

SOURCE = "gonghui/membership"


class OrganisationEvent(EventData):
    source: ClassVar[str] = SOURCE
    organisation_id: str

    def subject(self) -> str:
        return self.organisation_id


@event
class OrganisationEstablished(OrganisationEvent):
    type: ClassVar[str] = "gonghui.membership.organisation.established"
    name: str
    kind: str
    parent_id: str | None
    # Ancestors from the city federation down to the parent: lets consumers answer "is this union
    # inside that subtree" without a copy of the whole tree.
    path: list[str]
    founded_on: date | None = None
    employer_credit_code: str | None = None
    # Added after the first release (None in events published before): union funds' arrears
    # report names the employer that has not remitted.
    employer_name: str | None = None


@event
class OrganisationChanged(OrganisationEvent):
    type: ClassVar[str] = "gonghui.membership.organisation.changed"
    name: str
    parent_id: str | None
    path: list[str]
    changed_fields: list[str]


@event
class OrganisationDissolved(OrganisationEvent):
    type: ClassVar[str] = "gonghui.membership.organisation.dissolved"
    dissolved_on: date


class MemberEvent(EventData):
    source: ClassVar[str] = SOURCE
    member_id: str

    def subject(self) -> str:
        return self.member_id


@event
class MemberJoined(MemberEvent):
    type: ClassVar[str] = "gonghui.membership.member.joined"
    name: str
    union_id: str
    union_path: list[str]
    channel: str
    categories: list[str]
    joined_on: date
    card_number: str
    sex: str
    birth_date: date


@event
class MemberDetailsChanged(MemberEvent):
    type: ClassVar[str] = "gonghui.membership.member.details_changed"
    name: str
    categories: list[str]
    changed_fields: list[str]


@event
class MemberTransferred(MemberEvent):
    type: ClassVar[str] = "gonghui.membership.member.transferred"
    from_union_id: str
    to_union_id: str
    union_path: list[str]
    transferred_on: date


@event
class MemberSuspended(MemberEvent):
    type: ClassVar[str] = "gonghui.membership.member.suspended"
    suspended_on: date
    reason: str


@event
class MemberReinstated(MemberEvent):
    type: ClassVar[str] = "gonghui.membership.member.reinstated"
    reinstated_on: date


@event
class MemberLeft(MemberEvent):
    type: ClassVar[str] = "gonghui.membership.member.left"
    left_on: date
    reason: str


@event
class CardIssued(MemberEvent):
    type: ClassVar[str] = "gonghui.membership.card.issued"
    card_number: str
    reissue: bool
    issued_on: date
