"""Union funds left membership for a service of their own (services.union_funds): drop the tables
migration 0003 created (remittances, remittance_batches, subsidies). 0003 stays as released:
installed databases ran it, and a fresh one runs it and then this.

Their rows move by the runbook (docs/union_funds.md, "Moving an installation"), not by code: no
service reads or writes another's schema. Deploy union_funds first (its migration 0003 creates its
own tables), copy the rows across as the runbook says, and only then deploy the membership version
carrying this migration: once it has run, the rows left here are gone.
"""

from shared.migrations import run_sql

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    run_sql(
        """
        DROP TABLE IF EXISTS remittances;
        DROP TABLE IF EXISTS remittance_batches;
        DROP TABLE IF EXISTS subsidies;
        """
    )
