"""Union funds the tax bureau collects (remittance batches and records) and finance's subsidies."""

from shared.migrations import run_sql

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    run_sql(
        """
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
            -- said so); reports match on the credit code against today's unions instead.
            union_id text REFERENCES organisations (id),
            batch_id text NOT NULL REFERENCES remittance_batches (batch_id),
            recorded_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (credit_code, period, record_key)
        );
        CREATE INDEX remittances_period ON remittances (period_start, period_end);

        CREATE TABLE subsidies (
            reference text PRIMARY KEY,      -- finance's own: a resend is recognised by it
            union_id text NOT NULL REFERENCES organisations (id),
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
