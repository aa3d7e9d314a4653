"""A backstop request remembers what it no longer asks for: contributions paid those claims."""

from shared.migrations import run_sql

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    run_sql(
        """
        ALTER TABLE backstop_requests
            ADD COLUMN withdrawn_fen bigint NOT NULL DEFAULT 0 CHECK (withdrawn_fen >= 0);
        """
    )
