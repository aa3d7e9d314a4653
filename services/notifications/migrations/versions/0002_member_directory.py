"""The service's own view of members, kept from membership events (never membership's tables)."""

from shared.migrations import run_sql

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    run_sql(
        """
        CREATE TABLE members (
            member_id text PRIMARY KEY,
            name text NOT NULL,
            union_id text NOT NULL,
            union_path text[] NOT NULL,
            categories text[] NOT NULL DEFAULT '{}',
            card_number text,
            status text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX members_union_path ON members USING gin (union_path);
        """
    )
