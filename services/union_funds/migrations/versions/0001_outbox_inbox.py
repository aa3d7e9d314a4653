"""The outbox and inbox every service keeps in its own schema, and the tables of department
integration: credentials, nonces, audit log (shared.auth) and outbound webhooks
(shared.webhooks)."""

from shared import backbone_schema
from shared.migrations import run_sql

revision = "0001"
down_revision = None


def upgrade() -> None:
    run_sql(backbone_schema.V1)
