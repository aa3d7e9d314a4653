"""Members: identity, cards and a status timeline that answers "a member on date D?"."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from services.membership.identity import (
    ResidentId,
    Sex,
    card_number,
    normalise_card_number,
)
from services.membership.organisation import Organisation, _accepting_members
from services.membership.rules import (
    MINIMUM_AGE,
    NAME_MAX,
    ORGANISATION_NAME_MAX,
    TEXT_MAX,
    Category,
    _not_future,
    _text,
    declared_categories,
    parse_id_number,
    parse_mobile,
)
from shared.errors import Conflict as Conflict
from shared.errors import DomainError as DomainError
from shared.errors import NotFound as NotFound
from shared.events.base import EventData
from shared.events.membership import (
    CardIssued,
    MemberDetailsChanged,
    MemberJoined,
    MemberLeft,
    MemberReinstated,
    MemberSuspended,
    MemberTransferred,
)


class Channel(StrEnum):
    ONLINE = "online"
    ON_SITE = "on_site"
    EMPLOYER_BATCH = "employer_batch"
    # Truck drivers, couriers, delivery riders and the other new-employment groups.
    PLATFORM_WORKER = "platform_worker"


def _channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise DomainError("channel", "unknown_channel", f"unknown channel {value!r}") from None


# A member who signs up on a phone must give the number it was done on.
MOBILE_REQUIRED = frozenset({Channel.ONLINE, Channel.PLATFORM_WORKER})


class Status(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    LEFT = "left"


@dataclass(frozen=True, slots=True)
class Spell:
    """From ``start`` (that day included) until the next spell: ``status`` in ``union_id``."""

    start: date
    status: Status
    union_id: str


@dataclass(frozen=True, slots=True)
class Card:
    number: str
    issued_on: date
    revoked_on: date | None = None


def age_on(born: date, day: date) -> int:
    """Whole years between ``born`` and ``day``."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _start(spell: Spell) -> date:
    return spell.start


class Member:
    """A union member: who they are, their cards, and a status timeline that only grows forward."""

    def __init__(
        self,
        *,
        id: str,
        name: str,
        resident_id: ResidentId,
        mobile: str | None,
        categories: frozenset[Category],
        employer_name: str | None,
        channel: Channel,
        cards: list[Card],
        timeline: list[Spell],
    ) -> None:
        self.id = id
        self.name = name
        self.resident_id = resident_id
        self.mobile = mobile
        self.declared_categories = categories  # never holds 'woman': that comes from the ID
        self.employer_name = employer_name
        self.channel = channel
        self.cards = cards  # oldest first; only the last may be unrevoked
        self.timeline = timeline  # oldest first; never empty
        self.events: list[EventData] = []

    @classmethod
    def join(
        cls,
        *,
        id: str,
        name: str,
        id_number: str,
        mobile: str | None,
        categories: Iterable[str],
        channel: str,
        union: Organisation,
        employer_name: str | None,
        joined_on: date,
        card_serial: int,
        today: date,
    ) -> Member:
        """A new member; the first card's number travels in MemberJoined (no CardIssued)."""
        how = _channel(channel)
        resident = parse_id_number(id_number, today)
        declared = declared_categories(categories, resident.sex)
        if how is Channel.PLATFORM_WORKER:
            declared |= {Category.NEW_EMPLOYMENT_FORM}
        if mobile is None and how in MOBILE_REQUIRED:
            raise DomainError("mobile", "mobile_required", f"needed to join through {how}")
        _accepting_members(union)
        _not_future(joined_on, "joined_on", today)
        age = age_on(resident.birth_date, joined_on)
        if age < MINIMUM_AGE:
            raise DomainError(
                "joined_on", "under_minimum_age", f"the member was {age}, under {MINIMUM_AGE}"
            )
        member = cls(
            id=id,
            name=_text(name, "name", NAME_MAX),
            resident_id=resident,
            mobile=parse_mobile(mobile) if mobile is not None else None,
            categories=declared,
            employer_name=_employer_name(employer_name, declared),
            channel=how,
            cards=[Card(card_number(card_serial), joined_on)],
            timeline=[Spell(joined_on, Status.ACTIVE, union.id)],
        )
        member._joined(union, joined_on)
        return member

    @property
    def status(self) -> Status:
        return self.timeline[-1].status

    @property
    def union_id(self) -> str:
        """The current union, or the last one for a member who left."""
        return self.timeline[-1].union_id

    @property
    def joined_on(self) -> date:
        return self.timeline[0].start

    @property
    def card_number(self) -> str:
        return self.cards[-1].number

    @property
    def categories(self) -> frozenset[Category]:
        """Declared categories plus 'woman', read from the ID number."""
        if self.resident_id.sex is Sex.FEMALE:
            return self.declared_categories | {Category.WOMAN}
        return self.declared_categories

    def correct_details(
        self,
        *,
        name: str | None = None,
        mobile: str | None = None,
        categories: Iterable[str] | None = None,
        employer_name: str | None = None,
    ) -> list[str]:
        """Apply the given corrections (None: leave as is); returns the fields that changed."""
        # Check everything before changing anything: a refused correction leaves no trace.
        new_name = self.name if name is None else _text(name, "name", NAME_MAX)
        new_mobile = self.mobile if mobile is None else parse_mobile(mobile)
        declared = self.declared_categories
        if categories is not None:
            declared = declared_categories(categories, self.resident_id.sex)
        employer = self.employer_name
        if employer_name is not None or categories is not None:
            employer = _employer_name(employer_name or self.employer_name, declared)
        changed = [
            field
            for field, old, new in (
                ("name", self.name, new_name),
                ("mobile", self.mobile, new_mobile),
                ("categories", self.declared_categories, declared),
                ("employer_name", self.employer_name, employer),
            )
            if old != new
        ]
        self.name, self.mobile, self.declared_categories, self.employer_name = (
            new_name,
            new_mobile,
            declared,
            employer,
        )
        if changed:
            self.events.append(
                MemberDetailsChanged(
                    member_id=self.id,
                    name=self.name,
                    categories=sorted(self.categories),
                    changed_fields=changed,
                )
            )
        return changed

    def transfer(self, *, to_union: Organisation, on: date, today: date) -> None:
        """Move to another union; a suspended member stays suspended there."""
        self._not_left()
        if to_union.id == self.union_id:
            raise Conflict("union_id", "already_in_union", f"already a member of {to_union.id}")
        _accepting_members(to_union)
        from_union = self.union_id
        self._change("transferred_on", on, today, self.status, to_union.id)
        self.events.append(
            MemberTransferred(
                member_id=self.id,
                from_union_id=from_union,
                to_union_id=to_union.id,
                union_path=to_union.lineage,
                transferred_on=on,
            )
        )

    def suspend(self, *, on: date, reason: str, today: date) -> None:
        self._not_left()
        if self.status is Status.SUSPENDED:
            raise Conflict("status", "already_suspended", "already suspended")
        why = _text(reason, "reason", TEXT_MAX)
        self._change("suspended_on", on, today, Status.SUSPENDED, self.union_id)
        self.events.append(MemberSuspended(member_id=self.id, suspended_on=on, reason=why))

    def reinstate(self, *, on: date, today: date) -> None:
        self._not_left()
        if self.status is not Status.SUSPENDED:
            raise Conflict("status", "not_suspended", "active, not suspended")
        self._change("reinstated_on", on, today, Status.ACTIVE, self.union_id)
        self.events.append(MemberReinstated(member_id=self.id, reinstated_on=on))

    def leave(self, *, on: date, reason: str, today: date) -> None:
        self._not_left()
        why = _text(reason, "reason", TEXT_MAX)
        self._change("left_on", on, today, Status.LEFT, self.union_id)
        self.events.append(MemberLeft(member_id=self.id, left_on=on, reason=why))

    def rejoin(self, *, union: Organisation, on: date, channel: str, today: date) -> None:
        """Someone who left joins again: same member, same card, a new spell in the timeline."""
        if self.status is not Status.LEFT:
            raise Conflict("status", "still_a_member", f"still a member ({self.status})")
        how = _channel(channel)
        _accepting_members(union)
        self._change("joined_on", on, today, Status.ACTIVE, union.id)
        self.channel = how
        self._joined(union, on)

    def reissue_card(self, *, serial: int, on: date, today: date) -> str:
        """A new card for a lost one: the old number stops being valid that day."""
        self._not_left()
        _not_future(on, "issued_on", today)
        current = self.cards[-1]
        if on < current.issued_on:
            raise DomainError(
                "issued_on",
                "before_current_card",
                f"before the current card's issue ({current.issued_on})",
            )
        new = Card(card_number(serial), on)
        self.cards[-1] = replace(current, revoked_on=on)
        self.cards.append(new)
        self.events.append(
            CardIssued(member_id=self.id, card_number=new.number, reissue=True, issued_on=on)
        )
        return new.number

    def card_is_valid(self, number: str) -> bool:
        """Only the latest card of an active member opens the door to services."""
        return self.status is Status.ACTIVE and normalise_card_number(number) == self.card_number

    def status_on(self, day: date) -> Status | None:
        """Status on ``day``; None before joining. A change dated D holds from D on."""
        i = bisect_right(self.timeline, day, key=_start)
        return self.timeline[i - 1].status if i else None

    def was_active_on(self, day: date) -> bool:
        return self.status_on(day) is Status.ACTIVE

    def union_on(self, day: date) -> str | None:
        """The union the person belonged to on ``day`` (suspended or not); None if not a member."""
        i = bisect_right(self.timeline, day, key=_start)
        if not i or self.timeline[i - 1].status is Status.LEFT:
            return None
        return self.timeline[i - 1].union_id

    def _not_left(self) -> None:
        if self.status is Status.LEFT:
            raise Conflict(
                "status", "member_left", f"left on {self.timeline[-1].start.isoformat()}"
            )

    def _change(self, field: str, on: date, today: date, status: Status, union_id: str) -> None:
        # The timeline only grows forward: a change dated before the last one would rewrite
        # what "member on date D" answered yesterday.
        _not_future(on, field, today)
        if on < self.joined_on:
            raise DomainError(
                field, "before_joining", f"before joining on {self.joined_on.isoformat()}"
            )
        last = self.timeline[-1].start
        if on < last:
            raise DomainError(
                field, "before_last_change", f"before the last change on {last.isoformat()}"
            )
        self.timeline.append(Spell(on, status, union_id))

    def _joined(self, union: Organisation, on: date) -> None:
        self.events.append(
            MemberJoined(
                member_id=self.id,
                name=self.name,
                union_id=union.id,
                union_path=union.lineage,
                channel=self.channel,
                categories=sorted(self.categories),
                joined_on=on,
                card_number=self.card_number,
                sex=self.resident_id.sex,
                birth_date=self.resident_id.birth_date,
            )
        )


def _employer_name(name: str | None, categories: frozenset[Category]) -> str | None:
    # New-employment workers (riders, drivers, couriers) often have no fixed employer.
    if name is None or not name.strip():
        if Category.NEW_EMPLOYMENT_FORM in categories:
            return None
        raise DomainError(
            "employer_name",
            "employer_name_required",
            "needed unless the member is in a new employment form",
        )
    return _text(name, "employer_name", ORGANISATION_NAME_MAX)
