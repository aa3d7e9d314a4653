"""What the membership service answers: one pydantic model per kind of answer.

ID numbers and mobile numbers are masked (``shared.masking``) unless the caller holds the
``members:read_personal`` scope; the models only describe the shape, :func:`member_view` decides.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from services.membership.domain import (
    Category,
    Channel,
    HeadcountBand,
    Member,
    Organisation,
    OrgKind,
    Status,
)
from services.membership.identity import Sex
from services.membership.repository import member_of
from shared.auth import Caller
from shared.masking import mask_id_number, mask_mobile

PERSONAL = "members:read_personal"


# Organisations ---------------------------------------------------------------------------------


class EmployerView(BaseModel):
    name: str = Field(examples=["亳州药业有限公司"])
    credit_code: str = Field(
        description="Unified social credit code", examples=["91341600MA2N0XY839"]
    )
    headcount_band: HeadcountBand
    address: str


class OrganisationView(BaseModel):
    id: str = Field(examples=["bozhou-pharma"])
    name: str = Field(examples=["亳州药业有限公司工会"])
    kind: OrgKind
    parent_id: str | None = Field(description="None only for the city federation")
    path: list[str] = Field(
        description="Ancestor ids, the city federation first, the parent last",
        examples=[["bozhou", "qiaocheng"]],
    )
    employer: EmployerView | None = Field(description="Grassroots unions only")
    founded_on: date | None
    dissolved_on: date | None = Field(description="None while the organisation stands")


def organisation_view(o: Organisation) -> OrganisationView:
    employer = o.employer
    return OrganisationView(
        id=o.id,
        name=o.name,
        kind=o.kind,
        parent_id=o.parent_id,
        path=o.path,
        employer=None
        if employer is None
        else EmployerView(
            name=employer.name,
            credit_code=employer.credit_code,
            headcount_band=employer.headcount_band,
            address=employer.address,
        ),
        founded_on=o.founded_on,
        dissolved_on=o.dissolved_on,
    )


class OrganisationPage(BaseModel):
    items: list[OrganisationView]
    total: int = Field(description="Organisations matching the filters, on every page")
    offset: int
    limit: int
    next_offset: int | None = Field(description="The offset of the next page; None on the last")


class Totals(BaseModel):
    """Figures over an organisation's whole subtree."""

    members: int = Field(0, description="Active members now")
    migrant_worker: int = Field(0, description="Active members who are migrant workers (农民工)")
    new_employment_form: int = Field(0, description="Active members in new employment forms")
    woman: int = Field(0, description="Active women members (from the ID number)")
    new_members: int = Field(0, description="Members who joined in the period")
    new_unions: int = Field(0, description="Grassroots unions founded in the period")


class Statistics(BaseModel):
    organisation_id: str
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    totals: Totals


# Members ---------------------------------------------------------------------------------------


class SpellView(BaseModel):
    start: date = Field(description="From this day on (included), until the next spell")
    status: Status
    union_id: str


class MemberView(BaseModel):
    id: str = Field(examples=["m-0190a5e2c7d14c6b9d2f0a1b2c3d4e5f"])
    name: str = Field(examples=["王芳"])
    id_number: str = Field(
        description="Masked (341***********0027) unless the caller holds members:read_personal",
        examples=["341***********0027"],
    )
    mobile: str | None = Field(
        description="Masked (e.g. 138****0001) unless the caller holds members:read_personal",
        examples=["138****0001"],
    )
    sex: Sex
    birth_date: date
    categories: list[Category] = Field(description="Declared categories, and woman from the ID")
    employer_name: str | None
    channel: Channel = Field(description="How the member joined")
    union_id: str = Field(description="The current union, or the last one for a member who left")
    status: Status
    joined_on: date = Field(description="The first day of membership")
    card_number: str = Field(description="The valid card's number", examples=["GH00000000132"])
    timeline: list[SpellView] = Field(description="Oldest first: status and union over time")


def member_fields(m: Member | asyncpg.Record, caller: Caller) -> dict[str, Any]:
    member = member_of(m) if isinstance(m, asyncpg.Record) else m
    personal = PERSONAL in caller.scopes
    number, mobile = member.resident_id.number, member.mobile
    return {
        "id": member.id,
        "name": member.name,
        "id_number": number if personal else mask_id_number(number),
        "mobile": (mobile if personal else mask_mobile(mobile)) if mobile else None,
        "sex": member.resident_id.sex,
        "birth_date": member.resident_id.birth_date,
        "categories": sorted(member.categories),
        "employer_name": member.employer_name,
        "channel": member.channel,
        "union_id": member.union_id,
        "status": member.status,
        "joined_on": member.joined_on,
        "card_number": member.card_number,
        "timeline": [
            SpellView(start=s.start, status=s.status, union_id=s.union_id) for s in member.timeline
        ],
    }


def member_view(m: Member | asyncpg.Record, caller: Caller) -> MemberView:
    return MemberView(**member_fields(m, caller))


class CorrectedMember(MemberView):
    changed_fields: list[str] = Field(
        description="The fields this correction changed (empty: it changed nothing)",
        examples=[["mobile"]],
    )


class CardHolder(MemberView):
    card_valid: bool = Field(
        description="True only for the latest card of an active member: it opens services"
    )


class MemberPage(BaseModel):
    items: list[MemberView]
    next_after: str | None = Field(
        description="Pass as ``after`` for the next page; None on the last page"
    )


class Standing(BaseModel):
    member_id: str
    on: date
    member: bool = Field(description="A member that day (active or suspended)")
    active: bool = Field(description="An active member that day")
    status: Status | None = Field(description="None: not yet a member that day")
    union_id: str | None = Field(description="The union that day; None if not a member")


# Roster sync -----------------------------------------------------------------------------------


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RosterSource(StrEnum):
    CSV = "csv"
    JSON = "json"


class JobFailure(BaseModel):
    """Why a job failed, in the error contract of every problem answer."""

    field: str = Field(examples=["complete"])
    code: str = Field(examples=["unreadable_id_numbers"])
    message: str


class RosterJobView(BaseModel):
    id: str = Field(
        description="Follow it at GET /rosters/{id}", examples=["roster-5f0c2a9e1b7d4c3a"]
    )
    organisation_id: str
    batch_id: str
    source: RosterSource
    complete: bool
    state: JobState = Field(description="queued, running, then done or failed")
    rows_read: int = Field(description="Rows applied so far (blank lines not counted)")
    accepted: int
    rejected: int = Field(description="Rows with errors: see GET /rosters/{id}/errors")
    joined: int
    changed: int = Field(description="Members corrected, transferred in or rejoined")
    unchanged: int
    left_union: int = Field(description="Members a complete roster took off")
    events_written: int
    failure: JobFailure | None = Field(description="Why a failed job failed")
    created_at: datetime
    finished_at: datetime | None
    duplicate: bool = Field(
        False, description="True: this batch id was submitted before; this is the first job"
    )


def roster_job_view(row: asyncpg.Record, *, duplicate: bool = False) -> RosterJobView:
    failure = None
    if row["state"] == JobState.FAILED and row["failure"] is not None:
        failure = JobFailure(
            field=row["failure_field"] or "job",
            code=row["failure_code"] or "job_failed",
            message=row["failure"],
        )
    fields = {k: row[k] for k in RosterJobView.model_fields if k not in ("failure", "duplicate")}
    return RosterJobView(**fields, failure=failure, duplicate=duplicate)


class RosterErrorView(BaseModel):
    row_number: int = Field(
        description="CSV: the row as a spreadsheet shows it (the header is row 1); "
        "JSON: the position in rows, from 1",
        examples=[4],
    )
    field: str = Field(examples=["mobile"])
    code: str = Field(examples=["not_11_digits"])
    message: str = Field(examples=["must be 11 digits"])


class RosterErrorPage(BaseModel):
    items: list[RosterErrorView]
    next_after_row: int | None = Field(
        description="Pass as ``after_row`` for the next page; None on the last page"
    )


class ChangeKind(StrEnum):
    JOINED = "joined"
    CORRECTED = "corrected"
    TRANSFERRED = "transferred"
    REJOINED = "rejoined"
    LEFT = "left"


class RosterChangeView(BaseModel):
    member_id: str
    change: ChangeKind
    fields: list[str] = Field(description="For corrections: the fields changed")


class RosterChangePage(BaseModel):
    items: list[RosterChangeView]
    next_offset: int | None = Field(description="The offset of the next page; None on the last")
