"""The outbox and inbox every service keeps in its own schema."""

from alembic import op

from shared.outbox import DDL

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute(DDL)
