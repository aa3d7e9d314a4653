"""A member's record is read by member id: every enrolment (not only those still in play, which
the partial index covered; the full index serves both, so enrolling maintains no extra index) and
every certificate."""

from shared.migrations import run_sql

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    run_sql(
        """
        CREATE INDEX enrolments_member ON enrolments (member_id);
        DROP INDEX enrolments_active_member;
        CREATE INDEX certificates_member ON certificates (member_id, issued_on);
        """
    )
