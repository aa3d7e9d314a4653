"""What staff, members and department systems ask the membership service to do.

Each command is also the body of its HTTP request, so the API validates it once, with the field
names the error answers use.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Text = Field(min_length=1, max_length=200)


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EmployerDetails(Command):
    name: str = Field(min_length=1, max_length=100)
    credit_code: str = Field(min_length=18, max_length=18)
    headcount_band: str = Field(max_length=10)
    address: str = Text


class EstablishOrganisation(Command):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,40}$")
    name: str = Field(min_length=1, max_length=100)
    kind: str = Field(max_length=40)
    parent_id: str | None = Field(default=None, max_length=40)
    employer: EmployerDetails | None = None
    founded_on: date | None = None


class RenameOrganisation(Command):
    name: str = Field(min_length=1, max_length=100)


class MoveOrganisation(Command):
    parent_id: str = Field(min_length=1, max_length=40)


class DissolveOrganisation(Command):
    dissolved_on: date


class JoinUnion(Command):
    name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=15, max_length=20)
    mobile: str | None = Field(default=None, max_length=20)
    categories: list[str] = Field(default_factory=list, max_length=10)
    channel: str = Field(max_length=20)
    union_id: str = Field(min_length=1, max_length=40)
    employer_name: str | None = Field(default=None, max_length=100)
    joined_on: date | None = None


class CorrectDetails(Command):
    name: str | None = Field(default=None, max_length=50)
    mobile: str | None = Field(default=None, max_length=20)
    categories: list[str] | None = Field(default=None, max_length=10)
    employer_name: str | None = Field(default=None, max_length=100)


class Transfer(Command):
    to_union_id: str = Field(min_length=1, max_length=40)
    transferred_on: date | None = None


class Suspend(Command):
    suspended_on: date | None = None
    reason: str = Text


class Reinstate(Command):
    reinstated_on: date | None = None


class Leave(Command):
    left_on: date | None = None
    reason: str = Text


class ReissueCard(Command):
    issued_on: date | None = None


class RosterBatch(Command):
    """The JSON form of a roster submission (the CSV form carries the same in its query)."""

    batch_id: str = Field(min_length=1, max_length=80)
    complete: bool = False
    rows: list[dict[str, str | list[str] | None]] = Field(max_length=100_000)


# Union funds -----------------------------------------------------------------------------------

Fen = Annotated[int, Field(strict=True, gt=0, le=10**15)]  # strict: "100" or 100.0 is refused


class RemittanceBatch(Command):
    """Remittance records from the tax bureau. Records are read one by one
    (services.membership.remittances.read_record), so a bad one is reported with its index and
    the others are still recorded: here only their number is bounded."""

    batch_id: str = Field(min_length=1, max_length=80)
    records: list[Any] = Field(min_length=1, max_length=10_000)


class RecordSubsidy(Command):
    reference: str = Field(min_length=1, max_length=80)  # finance's own, for resends
    union_id: str = Field(min_length=1, max_length=40)
    amount_fen: Fen
    period: str = Field(min_length=4, max_length=7)  # "2026", "2026Q3" or "2026-10"
    members_covered: int = Field(strict=True, ge=0, le=10_000_000)
