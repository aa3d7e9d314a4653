"""Which URLs may receive deliveries, and the channel that wakes the sender (the SQL is in
``repository``, ``fanout`` and ``sender``)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

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
