"""The outbox and inbox every service keeps in its own schema."""

from shared.migrations import run_sql
from shared.outbox import DDL

revision = "0001"
down_revision = None


def upgrade() -> None:
    run_sql(DDL)
