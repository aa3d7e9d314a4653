"""Request signing: HMAC-SHA256 over a canonical string. Pure functions, no I/O.

A signed request carries four headers:

- ``X-Gonghui-App-Id``: the credential's app id;
- ``X-Gonghui-Timestamp``: Unix time in whole seconds, decimal (e.g. ``1767225600``);
- ``X-Gonghui-Nonce``: 16 to 64 characters from ``A-Z a-z 0-9 - _``, never reused;
- ``X-Gonghui-Signature``: lowercase hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of
  the canonical string below (UTF-8).

The canonical string is seven lines joined by ``\\n`` (no trailing newline)::

    GONGHUI-HMAC-SHA256
    <METHOD>                 upper case, e.g. POST
    <path>                   the path as sent, percent-decoded, then percent-encoded again as
                             UTF-8 keeping A-Z a-z 0-9 - _ . ~ and / (so /a%20b and /a b agree,
                             and /a%23b stays /a%23b); a server reads it from the raw request
                             target, never from a path a framework rebuilt
    <canonical query>        query pairs decoded (+ is a space), each key and value encoded as
                             the path is (but / encoded too), sorted by key then value, joined
                             as k=v with &; empty when there is no query
    <timestamp>              the X-Gonghui-Timestamp value
    <nonce>                  the X-Gonghui-Nonce value
    <body sha256>            lowercase hex SHA-256 of the body bytes exactly as sent
                             (of the empty string when there is no body)

Webhook deliveries are signed the same way with the subscription's secret, the path and query
of the subscriber's URL, and the sending service's name as the app id; a subscriber checks them
with :func:`verify`. Replays are refused by the receiver remembering nonces for the window.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _secrets
import time
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote_to_bytes

ALGORITHM = "GONGHUI-HMAC-SHA256"
APP_ID = "X-Gonghui-App-Id"
TIMESTAMP = "X-Gonghui-Timestamp"
NONCE = "X-Gonghui-Nonce"
SIGNATURE = "X-Gonghui-Signature"
HEADERS = (APP_ID, TIMESTAMP, NONCE, SIGNATURE)
WINDOW_SECONDS = 300

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_UNRESERVED = "-_.~"


class SignatureError(Exception):
    """The request's signature headers are missing, malformed, stale or do not match."""


def canonical_path(path: str | bytes) -> str:
    """``path`` as sent on the wire (percent-encoded, without the query)."""
    raw = path.encode() if isinstance(path, str) else path
    try:
        decoded = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:  # a path that is not UTF-8 cannot have been signed
        raise SignatureError("the path is not UTF-8") from exc
    return quote(decoded, safe="/" + _UNRESERVED)


def canonical_query(query: str | bytes) -> str:
    try:
        text = query.decode() if isinstance(query, bytes) else query
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:  # a query that is not UTF-8 cannot have been signed
        raise SignatureError("the query is not UTF-8") from exc
    encoded = sorted((quote(k, safe=_UNRESERVED), quote(v, safe=_UNRESERVED)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_string(
    method: str,
    path: str | bytes,
    query: str | bytes,
    timestamp: str,
    nonce: str,
    body: bytes,
    body_sha256: str | None = None,
) -> str:
    """``body_sha256``, when given, stands for the body: a large body is hashed as it streams."""
    return "\n".join(
        (
            ALGORITHM,
            method.upper(),
            canonical_path(path),
            canonical_query(query),
            timestamp,
            nonce,
            body_digest(body) if body_sha256 is None else body_sha256,
        )
    )


def signature(secret: str, canonical: str) -> str:
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def new_nonce() -> str:
    return _secrets.token_urlsafe(18)  # 24 characters of A-Z a-z 0-9 - _


def sign(
    app_id: str,
    secret: str,
    *,
    method: str,
    path: str | bytes,
    query: str | bytes = "",
    body: bytes = b"",
    body_sha256: str | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four headers that sign this request."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    canonical = canonical_string(method, path, query, ts, nonce, body, body_sha256)
    return {
        APP_ID: app_id,
        TIMESTAMP: ts,
        NONCE: nonce,
        SIGNATURE: signature(secret, canonical),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Accept any header-name case: HTTP header names are case-insensitive.
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def read_headers(headers: Mapping[str, str]) -> tuple[str, str, str, str]:
    """(app id, timestamp, nonce, signature), well-formed, or :class:`SignatureError`."""
    values = [_header(headers, name) for name in HEADERS]
    if any(v is None or v == "" for v in values):
        raise SignatureError("missing signature headers " + ", ".join(HEADERS))
    app_id, ts, nonce, sig = (str(v) for v in values)
    if not _TIMESTAMP.fullmatch(ts):
        raise SignatureError(f"{TIMESTAMP} must be Unix seconds")
    if not _NONCE.fullmatch(nonce):
        raise SignatureError(f"{NONCE} must be 16 to 64 characters of A-Z a-z 0-9 - _")
    if not _SIGNATURE.fullmatch(sig):
        raise SignatureError(f"{SIGNATURE} must be 64 lowercase hex digits")
    return app_id, ts, nonce, sig


def check_timestamp(timestamp: str, now: float | None = None, window: int = WINDOW_SECONDS) -> None:
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > window:
        raise SignatureError(f"{TIMESTAMP} is more than {window} s from the server's clock")


def verify(
    secrets: str | Iterable[str],
    *,
    method: str,
    path: str | bytes,
    query: str | bytes,
    body: bytes = b"",
    body_sha256: str | None = None,
    headers: Mapping[str, str],
    now: float | None = None,
    window: int = WINDOW_SECONDS,
) -> str:
    """Check a signed request (or webhook delivery); returns its app id.

    ``secrets`` is one secret or several (during a rotation either may have signed). Raises
    :class:`SignatureError` when headers are missing or malformed, the timestamp is outside
    ``window`` seconds of ``now``, or no secret produces the signature. Replay protection needs
    storage, so it is the caller's: remember ``headers[X-Gonghui-Nonce]`` for the window.
    """
    app_id, ts, nonce, sig = read_headers(headers)
    check_timestamp(ts, now, window)
    canonical = canonical_string(method, path, query, ts, nonce, body, body_sha256)
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    # Compare against every candidate (no early exit) in constant time per comparison.
    matched = False
    for secret in candidates:
        matched |= hmac.compare_digest(signature(secret, canonical), sig)
    if not matched:
        raise SignatureError("signature does not match")
    return app_id
