"""Webhook tables and the SQL on them."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

DDL = """
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

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def channel(schema: str) -> str:
    """NOTIFY channel that wakes the sender when the fan-out adds deliveries."""
    return f"{schema}_webhooks"


def url_problem(url: str, environment: str) -> str | None:
    """Why ``url`` may not receive deliveries, or None. HTTPS only; plain HTTP to this machine
    only in development (tests and local demos)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed"
    if parts.fragment:
        return "a fragment in the URL is not allowed"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and environment == "development" and _is_local(parts.hostname):
        return None
    return "the URL must be https:// (http:// to 127.0.0.1 only in development)"


def _is_local(host: str) -> bool:
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
