"""Roster errors and job failures in the one error contract: a field, a code and a message."""

from shared.migrations import run_sql

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    run_sql(
        """
        ALTER TABLE roster_errors RENAME COLUMN reason TO message;
        -- Rows written before codes existed read as the generic code.
        ALTER TABLE roster_errors ADD COLUMN code text NOT NULL DEFAULT 'invalid_value';
        ALTER TABLE roster_errors ALTER COLUMN code DROP DEFAULT;

        -- ``failure`` keeps the message; a job that failed before codes existed has neither.
        ALTER TABLE roster_jobs ADD COLUMN failure_field text, ADD COLUMN failure_code text;
        """
    )
