"""Union funds' own tables: the view of unions kept from membership's organisation events, the tax
bureau's remittance batches and records, and finance's subsidies.

The remittance and subsidy tables are those membership kept (its migration 0003) until union funds
became a service of its own; membership's migration 0006 drops them there. Their rows move by the
runbook (docs/union_funds.md), not by a migration: no service reads another's schema.
"""

from shared.migrations import run_sql

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    run_sql(
        """
        -- Every organisation membership announced (federations too: reports ask for a subtree),
        -- with what matching and reports need. Written only by the consumer of membership.events
        -- (and once by the runbook's seed), never by a request.
        CREATE TABLE unions (
            id text PRIMARY KEY,
            name text NOT NULL,
            kind text NOT NULL,
            path text[] NOT NULL,            -- ancestors, the city federation first
            credit_code text,                -- the employer's unified social credit code
            employer_name text,
            founded_on date,
            dissolved_on date,
            -- The time of the last membership event applied: an older one (a replay after the
            -- runbook's seed) is not applied over a newer state.
            as_of timestamptz NOT NULL
        );
        CREATE INDEX unions_credit_code ON unions (credit_code) WHERE credit_code IS NOT NULL;
        CREATE INDEX unions_path ON unions USING gin (path);

        -- One row per batch id ever received: a resent batch is answered from ``result``.
        CREATE TABLE remittance_batches (
            batch_id text PRIMARY KEY,
            digest text NOT NULL,            -- of its records: the same id with others is refused
            submitted_by text NOT NULL,      -- the department credential's app id
            received_at timestamptz NOT NULL DEFAULT now(),
            result jsonb
        );

        CREATE TABLE remittances (
            id bigserial PRIMARY KEY,
            credit_code text NOT NULL,
            employer_name text NOT NULL,
            period text NOT NULL,            -- "2026-10" or "2026Q3"
            period_start date NOT NULL,
            period_end date NOT NULL,        -- the period's last day
            record_key text NOT NULL,        -- tax's record id, or base, amount and date
            record_id text,
            payroll_base_fen bigint NOT NULL CHECK (payroll_base_fen > 0),
            amount_fen bigint NOT NULL CHECK (amount_fen > 0),
            expected_fen bigint NOT NULL,    -- 2% of the base
            paid_on date NOT NULL,
            -- The standing union that held the credit code when the record arrived (the event
            -- said so); reports match on the credit code against today's unions instead. No
            -- foreign key into ``unions``: that is a view of membership's, not this service's.
            union_id text,
            batch_id text NOT NULL REFERENCES remittance_batches (batch_id),
            recorded_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (credit_code, period, record_key)
        );
        CREATE INDEX remittances_period ON remittances (period_start, period_end);

        CREATE TABLE subsidies (
            reference text PRIMARY KEY,      -- finance's own: a resend is recognised by it
            union_id text NOT NULL,          -- a union of ``unions`` when recorded
            amount_fen bigint NOT NULL CHECK (amount_fen > 0),
            period text NOT NULL,            -- "2026", "2026Q3" or "2026-10"
            year integer NOT NULL,
            members_covered integer NOT NULL CHECK (members_covered >= 0),
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX subsidies_year_union ON subsidies (year, union_id);
        """
    )
