"""The backbone's second step: indexes retention deletes by (shared.backbone_schema.V2)."""

from shared import backbone_schema
from shared.migrations import run_sql

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    run_sql(backbone_schema.V2)
