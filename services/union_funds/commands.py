"""What the tax bureau and city finance ask the union funds service to do.

Each command is also the body of its HTTP request, so the API validates it once, with the field
names the error answers use. Every command is a :class:`shared.inputs.Command`: unknown fields,
NUL characters and integers beyond 64 bits are refused with a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from shared.inputs import Command, FromRoute

# Organisation ids membership gives out, or a caller chooses, are at most 40 characters.
OrgRef = Annotated[str, Field(min_length=1, max_length=40, examples=["bozhou-pharma"])]
# Batch ids and references are the sender's own, in any script; only control characters (which a
# log line or a spreadsheet cannot show) are refused.
Reference = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")]
Fen = Annotated[int, Field(strict=True, gt=0, le=10**15)]  # strict: "100" or 100.0 is refused

REMITTANCE_RECORD_EXAMPLE: dict[str, Any] = {
    "employer_credit_code": "91341600MA2N0XY839",
    "employer_name": "亳州药业有限公司",
    "period": "2026-10",
    "payroll_base_fen": 50_000_000,
    "amount_fen": 1_000_000,
    "paid_on": "2026-11-15",
    "record_id": "TAX-2026-000123",
}


class RemittanceBatch(Command):
    """Remittance records from the tax bureau. Records are read one by one
    (services.union_funds.remittances.read_record), so a bad one is reported with its index and
    the others are still recorded: here only their number is bounded."""

    submitted_by: FromRoute = ""  # the tax bureau's credential that sent it

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"batch_id": "tax-2026-11-01", "records": [REMITTANCE_RECORD_EXAMPLE]}]
        }
    )

    batch_id: Reference = Field(examples=["tax-2026-11-01"])
    records: list[Any] = Field(
        min_length=1,
        max_length=10_000,
        description=(
            "Objects with employer_credit_code, employer_name, period (2026-10 or 2026Q4), "
            "payroll_base_fen, amount_fen (whole fen), paid_on (YYYY-MM-DD) and optionally "
            "record_id (tax's own id, at most 64 characters)"
        ),
        examples=[[REMITTANCE_RECORD_EXAMPLE]],
    )


class RecordSubsidy(Command):
    recorded_by: FromRoute = ""  # city finance's credential that sent it
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reference": "CZ-2026-0456",
                    "union_id": "bozhou-pharma",
                    "amount_fen": 5_000_000,
                    "period": "2026",
                    "members_covered": 320,
                }
            ]
        }
    )

    reference: Reference = Field(
        description="Finance's own reference: sending it again is answered with the first record",
        examples=["CZ-2026-0456"],
    )
    union_id: OrgRef
    amount_fen: Fen = Field(examples=[5_000_000])
    period: str = Field(
        min_length=4, max_length=7, description='"2026", "2026Q3" or "2026-10"', examples=["2026"]
    )
    members_covered: int = Field(strict=True, ge=0, le=10_000_000, examples=[320])
