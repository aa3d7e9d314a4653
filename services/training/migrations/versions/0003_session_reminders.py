"""Sessions remember when their confirmed members were reminded, so each is reminded once."""

from shared.migrations import run_sql

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    run_sql(
        """
        ALTER TABLE sessions ADD COLUMN reminded_at timestamptz;
        CREATE INDEX sessions_to_remind ON sessions (starts_at) WHERE reminded_at IS NULL;
        """
    )
