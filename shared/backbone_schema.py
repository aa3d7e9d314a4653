"""The backbone's tables every service keeps in its own schema (outbox and inbox, department
credentials, nonces and the audit trail, webhooks), as frozen steps.

A released step is never edited: a database migrated years ago ran it as it was then, and a fresh
database must end up the same. A change is a new step, appended here and run by a new migration in
every service (``run_sql(backbone_schema.STEPS[n])``). ``tests/unit/shared/test_backbone_schema``
pins each released step's hash, and the integration suite checks that a database migrated step by
step equals one migrated at once.
"""

from __future__ import annotations

# 1: the first release (each service's migration 0001).
V1 = """CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    topic text NOT NULL,
    key text NOT NULL,
    type text NOT NULL,
    headers jsonb NOT NULL,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE TABLE inbox (
    consumer text NOT NULL,
    event_id text NOT NULL,
    event_type text NOT NULL,
    outcome text NOT NULL DEFAULT 'applied',
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE credentials (
    app_id text PRIMARY KEY,
    name text NOT NULL,
    department text NOT NULL
        CHECK (department IN ('hr', 'tax', 'finance', 'employer_hr', 'federation')),
    scopes text[] NOT NULL,
    organisations text[],
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE TABLE credential_secrets (
    id bigserial PRIMARY KEY,
    app_id text NOT NULL REFERENCES credentials (app_id),
    secret_encrypted text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    valid_until timestamptz
);
CREATE INDEX credential_secrets_app ON credential_secrets (app_id);
CREATE TABLE auth_nonces (
    app_id text NOT NULL,
    nonce text NOT NULL,
    signed_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, nonce)
);
CREATE INDEX auth_nonces_signed_at ON auth_nonces (signed_at);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    app_id text,
    department text,
    method text NOT NULL,
    route text NOT NULL,
    status smallint NOT NULL,
    outcome text NOT NULL,
    duration_ms integer NOT NULL
);
CREATE INDEX audit_log_app_at ON audit_log (app_id, at);

CREATE TABLE webhook_subscriptions (
    id uuid PRIMARY KEY,
    app_id text NOT NULL,
    url text NOT NULL,
    event_types text[] NOT NULL,
    secret_encrypted text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    -- The endpoint's own back-off: after failures it is left alone until resume_at.
    consecutive_failures integer NOT NULL DEFAULT 0,
    resume_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_types ON webhook_subscriptions USING gin (event_types)
    WHERE deleted_at IS NULL;
CREATE TABLE webhook_deliveries (
    id bigserial PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id),
    event_id text NOT NULL,
    event_type text NOT NULL,
    body bytea NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (subscription_id, next_attempt_at, id)
    WHERE status = 'pending';
CREATE TABLE webhook_attempts (
    id bigserial PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id),
    at timestamptz NOT NULL DEFAULT now(),
    status integer,
    error text,
    duration_ms integer NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
"""

# 2: what retention deletes by age is found by an index, not by reading the whole table
# (shared.retention). BRIN for the append-only inbox and audit trail: a few pages, no write cost.
V2 = """
CREATE INDEX inbox_received_at ON inbox USING brin (received_at);
CREATE INDEX audit_log_at ON audit_log USING brin (at);
CREATE INDEX webhook_deliveries_settled ON webhook_deliveries (created_at)
    WHERE status <> 'pending';
"""

STEPS = (V1, V2)
