"""Channels, preferences, deliveries, broadcasts and the state all sender workers share."""

from shared.migrations import run_sql

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    run_sql(
        """
        -- Union names for messages, from membership's organisation events.
        CREATE TABLE organisations (
            organisation_id text PRIMARY KEY,
            name text NOT NULL,
            parent_id text,
            path text[] NOT NULL DEFAULT '{}',
            dissolved_on date,
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        -- A member's WeChat openid. One openid reaches one member, so the callback's
        -- subscribe/unsubscribe events (which name only the openid) find their member.
        CREATE TABLE bindings (
            member_id text PRIMARY KEY,
            openid text NOT NULL UNIQUE,
            bound_at timestamptz NOT NULL DEFAULT now(),
            -- Set when WeChat said the member cannot be reached: "no channel" until they bind
            -- again or follow the account again.
            unreachable_errcode int,
            unreachable_reason text,
            unreachable_at timestamptz
        );

        CREATE TABLE preferences (
            member_id text PRIMARY KEY,
            opted_out text[] NOT NULL DEFAULT '{}',
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE broadcasts (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            -- planning (fan-out running) -> sending -> completed; or cancelled.
            status text NOT NULL DEFAULT 'planning',
            segment_union_id text,
            segment_category text,
            template_name text NOT NULL,
            template_id text NOT NULL,
            template_keys text[] NOT NULL,
            -- Template key -> pattern source (placeholders: member_name, union_name).
            data jsonb NOT NULL,
            url text,
            mandatory boolean NOT NULL DEFAULT false,
            -- Active members in the segment when it was requested: the fan-out's denominator.
            audience int NOT NULL DEFAULT 0,
            -- Fan-out resumes after the last member id it committed: no one twice, no one missed.
            cursor text NOT NULL DEFAULT '',
            examined int NOT NULL DEFAULT 0,
            skipped_no_binding int NOT NULL DEFAULT 0,
            skipped_no_channel int NOT NULL DEFAULT 0,
            skipped_opted_out int NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL,
            planned_at timestamptz,
            finished_at timestamptz
        );

        -- One row per (event, recipient, template): the unique key is what makes a redelivered
        -- event harmless. status: awaiting_binding | pending | sending | sent | delivered |
        -- failed | undeliverable | skipped | invalid | unconfirmed | cancelled.
        CREATE TABLE deliveries (
            id bigserial PRIMARY KEY,
            event_id text NOT NULL,
            event_type text NOT NULL,
            rule text NOT NULL,
            category text NOT NULL,
            recipient text NOT NULL,
            template_id text NOT NULL,
            client_msg_id text NOT NULL,
            broadcast_id uuid REFERENCES broadcasts (id),
            -- 0 for messages caused by events, 1 for broadcasts: a member's claim decision does
            -- not wait behind 300,000 announcements.
            priority smallint NOT NULL DEFAULT 0,
            -- {"data": ..., "url": ...} as rendered when the event arrived; touser is added when
            -- it is sent, from the binding current then.
            message jsonb,
            -- The cause's trace context: the WeChat call joins the trace of the request that
            -- caused the event.
            trace_headers jsonb,
            status text NOT NULL,
            reason text,
            errcode int,
            errmsg text,
            attempts int NOT NULL DEFAULT 0,
            openid text,
            msgid bigint,
            report_status text,
            lease_id uuid,
            lease_until timestamptz,
            next_attempt_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL,
            attempted_at timestamptz,
            sent_at timestamptz,
            reported_at timestamptz,
            updated_at timestamptz NOT NULL,
            UNIQUE (event_id, recipient, template_id)
        );
        CREATE INDEX deliveries_due ON deliveries (priority, next_attempt_at, id)
            WHERE status = 'pending';
        CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'sending';
        -- For a member who has not bound WeChat yet, next_attempt_at is when waiting ends.
        CREATE INDEX deliveries_awaiting ON deliveries (recipient, next_attempt_at)
            WHERE status = 'awaiting_binding';
        CREATE INDEX deliveries_awaiting_until ON deliveries (next_attempt_at)
            WHERE status = 'awaiting_binding';
        CREATE INDEX deliveries_msgid ON deliveries (msgid) WHERE msgid IS NOT NULL;
        CREATE INDEX deliveries_recipient ON deliveries (recipient, id);
        CREATE INDEX deliveries_broadcast ON deliveries (broadcast_id, status)
            WHERE broadcast_id IS NOT NULL;

        -- TEMPLATESENDJOBFINISH reports, kept by msgid: a report can arrive before the sender
        -- has recorded the msgid, and reports for a send whose worker crashed are what
        -- reconciliation matches in-doubt deliveries against.
        CREATE TABLE delivery_reports (
            msgid bigint PRIMARY KEY,
            openid text NOT NULL,
            status text NOT NULL,
            received_at timestamptz NOT NULL
        );
        CREATE INDEX delivery_reports_openid ON delivery_reports (openid, received_at);

        -- The one access token all workers use (WeChat wants a single holder).
        CREATE TABLE wechat_tokens (
            appid text PRIMARY KEY,
            access_token text,
            expires_at timestamptz,
            refreshed_at timestamptz,
            refreshes bigint NOT NULL DEFAULT 0
        );

        -- Shared by every sender worker: the next free send slot (pacing) and the pause after a
        -- quota errcode or a configuration error.
        CREATE TABLE send_gate (
            id int PRIMARY KEY CHECK (id = 1),
            next_slot timestamptz NOT NULL DEFAULT '-infinity',
            paused_until timestamptz,
            pause_errcode int,
            pause_reason text
        );
        INSERT INTO send_gate (id) VALUES (1);
        """
    )
