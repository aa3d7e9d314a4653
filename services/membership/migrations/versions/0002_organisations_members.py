"""Organisations, members, their status timeline, member cards and roster-sync jobs."""

from shared.migrations import run_sql

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    run_sql(
        """
        CREATE TABLE organisations (
            id text PRIMARY KEY,
            name text NOT NULL,
            kind text NOT NULL,
            parent_id text REFERENCES organisations (id),
            path text[] NOT NULL,
            employer jsonb,
            founded_on date,
            dissolved_on date,
            established_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX organisations_parent ON organisations (parent_id);
        CREATE INDEX organisations_path ON organisations USING gin (path);
        CREATE UNIQUE INDEX organisations_credit_code
            ON organisations ((employer ->> 'credit_code')) WHERE dissolved_on IS NULL;

        CREATE TABLE members (
            id text PRIMARY KEY,
            id_number text NOT NULL UNIQUE,
            name text NOT NULL,
            sex text NOT NULL,
            birth_date date NOT NULL,
            mobile text,
            categories text[] NOT NULL DEFAULT '{}',
            employer_name text,
            union_id text NOT NULL REFERENCES organisations (id),
            channel text NOT NULL,
            status text NOT NULL,
            joined_on date NOT NULL,
            card_number text NOT NULL UNIQUE,
            cards jsonb NOT NULL,
            timeline jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX members_union_status ON members (union_id, status, id);

        CREATE SEQUENCE card_serial;

        CREATE TABLE roster_jobs (
            id text PRIMARY KEY,
            organisation_id text NOT NULL REFERENCES organisations (id),
            batch_id text NOT NULL,
            source text NOT NULL,
            complete boolean NOT NULL,
            state text NOT NULL,
            rows_read integer NOT NULL DEFAULT 0,
            accepted integer NOT NULL DEFAULT 0,
            rejected integer NOT NULL DEFAULT 0,
            joined integer NOT NULL DEFAULT 0,
            changed integer NOT NULL DEFAULT 0,
            unchanged integer NOT NULL DEFAULT 0,
            left_union integer NOT NULL DEFAULT 0,
            events_written integer NOT NULL DEFAULT 0,
            failure text,
            created_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            UNIQUE (organisation_id, batch_id)
        );

        CREATE TABLE roster_errors (
            job_id text NOT NULL REFERENCES roster_jobs (id),
            row_number integer NOT NULL,
            field text NOT NULL,
            reason text NOT NULL
        );
        CREATE INDEX roster_errors_job ON roster_errors (job_id, row_number);

        CREATE TABLE roster_changes (
            job_id text NOT NULL REFERENCES roster_jobs (id),
            member_id text NOT NULL,
            change text NOT NULL,
            fields text[] NOT NULL DEFAULT '{}'
        );
        CREATE INDEX roster_changes_job ON roster_changes (job_id);
        """
    )
