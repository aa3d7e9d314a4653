"""What staff, members and department systems ask the membership service to do.

Each command is also the body of its HTTP request, so the API validates it once, with the field
names the error answers use. Every command is a :class:`shared.inputs.Command`: unknown fields,
NUL characters and integers beyond 64 bits are refused with a 422 naming the field, and dates are
ISO ``YYYY-MM-DD`` text (:data:`shared.inputs.IsoDate`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from services.membership.member import Channel
from services.membership.organisation import HeadcountBand, OrgKind
from shared.inputs import Command, FromRoute, IsoDate

# Organisation ids the service gives out, or a caller chooses, are at most 40 characters.
OrgRef = Annotated[str, Field(min_length=1, max_length=40, examples=["bozhou-pharma"])]
# Batch ids and references are the sender's own, in any script; only control characters (which a
# log line or a spreadsheet cannot show) are refused.
Reference = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")]


class EmployerDetails(Command):
    name: str = Field(min_length=1, max_length=100, examples=["亳州药业有限公司"])
    credit_code: str = Field(
        min_length=18,
        max_length=18,
        description="Unified social credit code (GB 32100), checked with its check character",
        examples=["91341600MA2N0XY839"],
    )
    headcount_band: HeadcountBand
    address: str = Field(min_length=1, max_length=200, examples=["亳州市谯城区魏武大道 1 号"])


class EstablishOrganisation(Command):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "bozhou-pharma",
                    "name": "亳州药业有限公司工会",
                    "kind": "enterprise",
                    "parent_id": "qiaocheng",
                    "founded_on": "2021-05-01",
                    "employer": {
                        "name": "亳州药业有限公司",
                        "credit_code": "91341600MA2N0XY839",
                        "headcount_band": "100-499",
                        "address": "亳州市谯城区魏武大道 1 号",
                    },
                },
                {
                    "id": "qiaocheng",
                    "name": "谯城区总工会",
                    "kind": "county_federation",
                    "parent_id": "bozhou",
                },
            ]
        }
    )

    id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="Your id for it (letters, digits, _ and -); one is made up when left out",
        examples=["bozhou-pharma"],
    )
    name: str = Field(min_length=1, max_length=100, examples=["亳州药业有限公司工会"])
    kind: OrgKind
    parent_id: OrgRef | None = Field(
        default=None, description="The federation it reports to; only the city federation has none"
    )
    employer: EmployerDetails | None = Field(
        default=None,
        description="Grassroots unions only; required except for township/village unions",
    )
    founded_on: IsoDate | None = Field(default=None, description="Required for grassroots unions")


class RenameOrganisation(Command):
    org_id: FromRoute = ""
    name: str = Field(min_length=1, max_length=100, examples=["亳州药业集团工会"])


class MoveOrganisation(Command):
    org_id: FromRoute = ""
    parent_id: OrgRef = Field(description="The federation it reports to from now on")


class DissolveOrganisation(Command):
    org_id: FromRoute = ""
    dissolved_on: IsoDate = Field(description="Not in the future", examples=["2026-06-30"])


class JoinUnion(Command):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "王芳",
                    "id_number": "341602199003150027",
                    "mobile": "13800000001",
                    "categories": ["migrant_worker"],
                    "channel": "online",
                    "union_id": "bozhou-pharma",
                    "employer_name": "亳州药业有限公司",
                    "joined_on": "2026-03-01",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=50, examples=["王芳"])
    id_number: str = Field(
        min_length=15,
        max_length=20,
        description="Resident ID number (GB 11643), 18 characters with its check character",
        examples=["341602199003150027"],
    )
    mobile: str | None = Field(
        default=None,
        max_length=20,
        description="Mainland mobile number; required for online and platform-worker joins",
        examples=["13800000001"],
    )
    categories: list[str] = Field(
        default_factory=list,
        max_length=10,
        description=(
            "migrant_worker (农民工), new_employment_form (新就业形态); woman (女, 女职工) is "
            "read from the ID number and may be given only when it agrees"
        ),
        examples=[["migrant_worker"]],
    )
    channel: Channel
    union_id: OrgRef = Field(description="The grassroots union joined")
    employer_name: str | None = Field(
        default=None,
        max_length=100,
        description="Required unless the member is in a new employment form",
        examples=["亳州药业有限公司"],
    )
    joined_on: IsoDate | None = Field(default=None, description="Today (Beijing time) if left out")


class CorrectDetails(Command):
    member_id: FromRoute = ""
    name: str | None = Field(default=None, max_length=50, examples=["王芳"])
    mobile: str | None = Field(default=None, max_length=20, examples=["13900000002"])
    categories: list[str] | None = Field(default=None, max_length=10, examples=[[]])
    employer_name: str | None = Field(default=None, max_length=100)


class Transfer(Command):
    member_id: FromRoute = ""
    to_union_id: OrgRef
    transferred_on: IsoDate | None = Field(
        default=None, description="Today if left out", examples=["2026-07-01"]
    )


class Suspend(Command):
    member_id: FromRoute = ""
    suspended_on: IsoDate | None = Field(
        default=None, description="Today if left out", examples=["2026-07-01"]
    )
    reason: str = Field(min_length=1, max_length=200, examples=["会费欠缴"])


class Reinstate(Command):
    member_id: FromRoute = ""
    reinstated_on: IsoDate | None = Field(
        default=None, description="Today if left out", examples=["2026-07-01"]
    )


class Leave(Command):
    member_id: FromRoute = ""
    left_on: IsoDate | None = Field(
        default=None, description="Today if left out", examples=["2026-07-01"]
    )
    reason: str = Field(min_length=1, max_length=200, examples=["离职"])


class ReissueCard(Command):
    member_id: FromRoute = ""
    issued_on: IsoDate | None = Field(
        default=None, description="Today if left out", examples=["2026-07-01"]
    )


class IdNumberLookup(Command):
    """Sent in a body, not the path, so an ID number never lands in an access log."""

    id_number: str = Field(min_length=1, max_length=20, examples=["341602199003150027"])


class RosterBatchRow(Command):
    """One person on the roster. Values are checked row by row when the job runs, so a bad value
    is a row error (``GET /rosters/{job_id}/errors``), not a refusal of the batch."""

    id_number: str | None = Field(default=None, max_length=40, examples=["341602199003150027"])
    name: str | None = Field(default=None, max_length=200, examples=["王芳"])
    mobile: str | None = Field(
        default=None, max_length=40, description="Left out: the member's number is kept"
    )
    categories: str | list[str] | None = Field(
        default=None,
        description="Text split on , ; 、 | or a list; left out: the member's are kept",
        examples=["农民工"],
    )
    joined_on: str | None = Field(
        default=None,
        max_length=40,
        description="YYYY-MM-DD (or YYYY/MM/DD); for new members, today if left out",
        examples=["2024-03-01"],
    )


class RosterBatch(Command):
    """The JSON form of a roster submission (the CSV form sends the same as form fields)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "batch_id": "2026-07-hr-export",
                    "complete": False,
                    "rows": [
                        {
                            "id_number": "341602198504120315",
                            "name": "张伟",
                            "mobile": "13805581001",
                            "categories": "农民工",
                            "joined_on": "2024-03-01",
                        },
                        {"id_number": "34160219920708042X", "name": "李娜"},
                    ],
                }
            ]
        }
    )

    batch_id: Reference = Field(
        description="Your id for this roster: the same id again is answered with the first job",
        examples=["2026-07-hr-export"],
    )
    complete: bool = Field(
        default=False,
        description="True: this is everyone; current members not on it leave the union",
    )
    rows: list[RosterBatchRow] = Field(min_length=1, max_length=100_000)
