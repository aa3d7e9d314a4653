"""Plans, the eligibility view, enrolments with cover and contributions, claims with their steps,
the fund's double-entry journal, payments and backstop requests.

The database guards the money rules too, as a safety net under the domain: journal rows are
append-only, every entry balances at commit, ``account_balances`` is maintained by a trigger from
the journal lines (derived, never typed in) and the fund's cash can never go below zero.
"""

from shared.migrations import run_sql

revision = "0002"
down_revision = "0001"

SCHEMA = """
CREATE TABLE plans (
    plan_id text PRIMARY KEY,
    scheme_year integer NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    effective_from date NOT NULL,
    effective_to date NOT NULL,
    contribution_per_member_fen bigint NOT NULL,
    rules jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('draft', 'published')),
    published_on date,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (scheme_year, version)
);

-- Who is an active union member and when, from membership events only.
CREATE TABLE members (
    member_id text PRIMARY KEY,
    union_id text,
    periods jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE enrolment_numbers;
CREATE TABLE enrolments (
    enrolment_id text PRIMARY KEY,
    unit_id text NOT NULL,
    plan_id text NOT NULL REFERENCES plans,
    scheme_year integer NOT NULL,
    enrolled_on date NOT NULL,
    plan_starts_on date NOT NULL,
    plan_ends_on date NOT NULL,
    contribution_per_member_fen bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (unit_id, scheme_year)
);
CREATE TABLE coverages (
    enrolment_id text NOT NULL REFERENCES enrolments,
    member_id text NOT NULL,
    starts_on date NOT NULL,
    ends_on date NOT NULL,
    waiting_from date NOT NULL,
    ended_reason text,
    PRIMARY KEY (enrolment_id, member_id)
);
CREATE INDEX coverages_member ON coverages (member_id);
CREATE TABLE not_covered (
    enrolment_id text NOT NULL REFERENCES enrolments,
    member_id text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (enrolment_id, member_id)
);
CREATE TABLE contributions (
    receipt_number text PRIMARY KEY,
    enrolment_id text NOT NULL REFERENCES enrolments,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    payer text NOT NULL,
    received_on date NOT NULL,
    period text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contributions_enrolment ON contributions (enrolment_id);

CREATE SEQUENCE claim_numbers;
-- Approval order among claims approved in the same instant (approvals hold the fund's lock).
CREATE SEQUENCE approval_order;
CREATE TABLE claims (
    claim_id text PRIMARY KEY,
    member_id text NOT NULL,
    unit_id text NOT NULL,
    state text NOT NULL,
    scheme_year integer,
    plan_id text REFERENCES plans,
    intake jsonb NOT NULL,
    assessment jsonb,
    rejections jsonb NOT NULL DEFAULT '[]',
    deductible_applied_fen bigint NOT NULL DEFAULT 0,
    approved_amount_fen bigint CHECK (approved_amount_fen >= 0),
    approved_at timestamptz,
    approval_seq bigint UNIQUE,
    adjustment_reason text,
    payment_reference text UNIQUE,
    submitted_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX claims_member ON claims (member_id, scheme_year);
CREATE INDEX claims_unit ON claims (unit_id, state);
CREATE INDEX claims_payable ON claims (approved_at, approval_seq)
    WHERE state IN ('approved', 'awaiting_funds');
CREATE TABLE claim_steps (
    claim_id text NOT NULL REFERENCES claims,
    seq integer NOT NULL,
    action text NOT NULL,
    from_state text,
    to_state text NOT NULL,
    by text NOT NULL,
    -- The department system (app id) through which the person acted; null for the system.
    via text,
    at timestamptz NOT NULL,
    note text NOT NULL DEFAULT '',
    PRIMARY KEY (claim_id, seq)
);

CREATE TABLE account_balances (
    account text PRIMARY KEY,
    debit_normal boolean NOT NULL,
    balance_fen bigint NOT NULL DEFAULT 0,
    CONSTRAINT fund_cash_never_negative CHECK (account <> 'fund_cash' OR balance_fen >= 0)
);
INSERT INTO account_balances (account, debit_normal) VALUES
    ('fund_cash', true),
    ('benefits_expense', true),
    ('claims_payable', false),
    ('contributions_income', false),
    ('backstop_income', false);

CREATE TABLE journal_entries (
    seq bigserial UNIQUE,
    entry_id text PRIMARY KEY,
    posted_on date NOT NULL,
    kind text NOT NULL,
    reference text NOT NULL,
    memo text NOT NULL DEFAULT '',
    posted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_entries_reference ON journal_entries (kind, reference);
CREATE TABLE journal_lines (
    entry_id text NOT NULL REFERENCES journal_entries,
    line_no smallint NOT NULL,
    account text NOT NULL REFERENCES account_balances,
    debit_fen bigint NOT NULL DEFAULT 0 CHECK (debit_fen >= 0),
    credit_fen bigint NOT NULL DEFAULT 0 CHECK (credit_fen >= 0),
    CHECK ((debit_fen > 0) <> (credit_fen > 0)),
    PRIMARY KEY (entry_id, line_no)
);

CREATE FUNCTION journal_line_posted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE account_balances
       SET balance_fen = balance_fen + CASE WHEN debit_normal
                                            THEN NEW.debit_fen - NEW.credit_fen
                                            ELSE NEW.credit_fen - NEW.debit_fen END
     WHERE account = NEW.account;
    RETURN NEW;
END $$;
CREATE TRIGGER journal_line_posted AFTER INSERT ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION journal_line_posted();

CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: post a correction instead';
END $$;
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_append_only();
CREATE TRIGGER journal_lines_append_only BEFORE UPDATE OR DELETE ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION journal_append_only();

CREATE FUNCTION journal_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT sum(debit_fen) <> sum(credit_fen) FROM journal_lines
         WHERE entry_id = NEW.entry_id) THEN
        RAISE EXCEPTION 'journal entry % does not balance', NEW.entry_id;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_entry_balanced AFTER INSERT ON journal_lines
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entry_balanced();

CREATE SEQUENCE payment_numbers;
CREATE TABLE payments (
    payment_reference text PRIMARY KEY,
    -- One payment per claim, ever: the last guard against paying twice.
    claim_id text NOT NULL UNIQUE REFERENCES claims,
    amount_fen bigint NOT NULL CHECK (amount_fen >= 0),
    paid_at timestamptz NOT NULL,
    entry_id text REFERENCES journal_entries
);

CREATE SEQUENCE backstop_numbers;
CREATE TABLE backstop_requests (
    request_id text PRIMARY KEY,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    claim_ids text[] NOT NULL,
    fund_balance_fen bigint NOT NULL,
    requested_on date NOT NULL,
    status text NOT NULL,
    reminders date[] NOT NULL DEFAULT '{}',
    escalated_on date,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backstop_requests_claims ON backstop_requests USING gin (claim_ids);
CREATE TABLE backstop_grants (
    reference text PRIMARY KEY,
    request_id text NOT NULL REFERENCES backstop_requests,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    granted_on date NOT NULL,
    entry_id text NOT NULL REFERENCES journal_entries,
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backstop_grants_request ON backstop_grants (request_id);
"""


def upgrade() -> None:
    run_sql(SCHEMA)
