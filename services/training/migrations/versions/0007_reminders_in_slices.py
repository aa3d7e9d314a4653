"""A session's reminders go out in slices, each its own transaction, and resume where they stopped.

A city-wide lecture has 300,000 confirmed members: one transaction holding every reminder (about
2 KB each until written) and the whole class would hold the worker's memory and the class's lock
for the lot. When a session's reminder is decided, ``reminders_upto`` keeps the last place then
confirmed; ``reminders_through`` the last place reminded so far (each slice moves it on in the
transaction that writes its reminders), so a restart neither repeats nor skips a member.
"""

from shared.migrations import run_sql

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    run_sql(
        """
        ALTER TABLE sessions ADD COLUMN reminders_upto integer,
            ADD COLUMN reminders_through integer;
        CREATE INDEX sessions_reminding ON sessions (class_id)
            WHERE reminders_through < reminders_upto;
        """
    )
