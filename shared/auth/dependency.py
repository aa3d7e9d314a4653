"""``require_scope``: the FastAPI dependency that admits a signed call from a department system.

It runs before the endpoint (FastAPI solves dependencies first), so a refused call changes
nothing. Checks, in order, each refusal a 401 unless said otherwise: the four headers are there
and well-formed; the timestamp is within ±300 s; the app id names an active credential; one of
its valid secrets produced the signature; the nonce was not used before (recorded with its
timestamp, ``INSERT ... ON CONFLICT DO NOTHING``, in the statement that also confirms the
credential is unchanged since this process read it: see :mod:`shared.auth.credentials`); the
credential holds the scope (else 403).

Each use declares ``Security(SIGNED_REQUEST, scopes=[scope])``, so the OpenAPI document lists an
operation's scopes under its ``security`` requirement for the ``GonghuiSignature`` scheme.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import Request, Security
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.security.base import SecurityBase
from starlette.exceptions import HTTPException

from shared.auth import credentials, signing
from shared.auth.audit import BODY_SHA256, auth_note
from shared.coalesce import Coalesced
from shared.errors import Forbidden

SCHEME = "GonghuiSignature"
NONCE_RETENTION_SECONDS = 2 * signing.WINDOW_SECONDS + 60
_PRUNE_EVERY_SECONDS = 60.0
_next_prune: dict[int, float] = {}


@dataclass(frozen=True)
class Caller:
    """The department system behind a verified request."""

    app_id: str
    name: str
    department: str
    scopes: frozenset[str]
    organisations: frozenset[str] | None  # None: not limited to any organisations

    def ensure_organisation(self, organisation_id: str, *, field: str = "organisation_id") -> None:
        """Refuse (403) unless this caller may act for ``organisation_id``."""
        if self.organisations is not None and organisation_id not in self.organisations:
            raise Forbidden(
                field,
                "organisation_not_allowed",
                "this credential may not act for that organisation",
            )


class SignedRequest(SecurityBase):
    """The OpenAPI security scheme; the checking itself is :func:`authenticate`."""

    def __init__(self) -> None:
        self.model = APIKey.model_validate(
            {
                "in": APIKeyIn.header,
                "name": signing.SIGNATURE,
                "description": (
                    "HMAC-SHA256 request signature with headers "
                    f"{', '.join(signing.HEADERS)}; see docs/departments.md. The scopes an "
                    "operation needs are listed in its security requirement."
                ),
            }
        )
        self.scheme_name = SCHEME

    async def __call__(self) -> None:
        return None


SIGNED_REQUEST = SignedRequest()


def _unauthorized(request: Request, refusal: str, detail: str) -> HTTPException:
    auth_note(request.scope)["refusal"] = refusal
    return HTTPException(401, detail, headers={"WWW-Authenticate": SCHEME})


async def _prune_nonces(pool: Any) -> None:
    # Nonces older than the window can never be accepted again: keep the table small.
    now = time.monotonic()
    if now < _next_prune.get(id(pool), 0.0):
        return
    _next_prune[id(pool)] = now + _PRUNE_EVERY_SECONDS
    await pool.execute(
        "DELETE FROM auth_nonces WHERE signed_at < now() - make_interval(secs => $1)",
        float(NONCE_RETENTION_SECONDS),
    )


class _Nonces:
    """The nonces of concurrent requests, spent in one statement on the runtime's pool (as
    :class:`shared.auth.audit.AuditWriter` writes their audit rows)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.spend: Coalesced[tuple[credentials.Credential, str, float], bool | None] = Coalesced(
            partial(credentials.spend_nonces, pool)
        )


def _nonces(request: Request, pool: Any) -> _Nonces:
    state = request.app.state
    nonces: _Nonces | None = getattr(state, "nonces", None)
    if nonces is None or nonces.pool is not pool:
        nonces = state.nonces = _Nonces(pool)
    return nonces


def _cache(request: Request) -> credentials.CredentialCache:
    state = request.app.state
    cache: credentials.CredentialCache | None = getattr(state, "credential_cache", None)
    if cache is None:
        cache = state.credential_cache = credentials.CredentialCache()
    return cache


async def authenticate(request: Request) -> Caller:
    """Verify the request's signature once per request; the Caller is kept on the scope."""
    note = auth_note(request.scope)
    if "caller" in note:
        caller: Caller = note["caller"]
        return caller
    runtime = request.app.state.runtime
    pool, key = runtime.pool, runtime.settings.credentials_key
    try:
        app_id, ts, nonce, _signature = signing.read_headers(request.headers)
    except signing.SignatureError as exc:
        raise _unauthorized(request, "missing_signature", str(exc)) from exc
    note["claimed"] = app_id
    try:
        signing.check_timestamp(ts)
    except signing.SignatureError as exc:
        raise _unauthorized(request, "stale_timestamp", str(exc)) from exc
    digest = request.scope.get(BODY_SHA256)
    if digest is None:  # no audit middleware: the body is still unread here
        digest = signing.body_digest(await request.body())

    def signed_by(credential: credentials.Credential) -> bool:
        try:
            signing.verify(
                credential.secrets,
                method=request.method,
                path=request.scope.get("raw_path") or request.scope["path"].encode(),
                query=request.scope.get("query_string", b""),
                body_sha256=digest,
                headers=request.headers,
            )
        except signing.SignatureError:
            return False
        return True

    cache = _cache(request)
    credential, loaded = cache.cached(app_id), False
    # A cached credential may be out of date (a new secret, a revocation): on any doubt it is
    # read again; at most three reads, so a credential changing right now cannot loop forever.
    for _attempt in range(3):
        if credential is None:
            credential, loaded = await cache.load(pool, key, app_id), True
            if credential is None:
                raise _unauthorized(request, "unknown_credential", "unknown or revoked credential")
        if not signed_by(credential):
            if loaded:
                raise _unauthorized(request, "bad_signature", "signature does not match")
            credential = None  # signed with a secret this process has not read yet?
            continue
        await _prune_nonces(pool)
        fresh = await _nonces(request, pool).spend((credential, nonce, float(ts)))
        if fresh is None:
            credential = None  # changed since it was read
            continue
        if not fresh:
            raise _unauthorized(request, "replayed_nonce", "this nonce was already used")
        caller = Caller(
            app_id=credential.app_id,
            name=credential.name,
            department=credential.department,
            scopes=credential.scopes,
            organisations=credential.organisations,
        )
        note.update(caller=caller, app_id=caller.app_id, department=caller.department)
        return caller
    raise _unauthorized(request, "unknown_credential", "the credential is being changed")


def require_scope(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting signed calls whose credential holds ``scope``; gives the Caller.

    ``caller: Caller = Depends(require_scope("claims:review"))``, or in ``dependencies=[...]``.
    """

    async def dependency(
        request: Request, _declared: None = Security(SIGNED_REQUEST, scopes=[scope])
    ) -> Caller:
        return await admit(request, scope)

    dependency.__name__ = f"require_scope_{scope.replace(':', '_')}"
    dependency.gonghui_scope = scope  # type: ignore[attr-defined]  # read by shared.http's routes
    return dependency


async def admit(request: Request, scope: str) -> Caller:
    """The verified caller if its credential holds ``scope``; else 401 or 403."""
    note = auth_note(request.scope)
    note.setdefault("guarded", True)
    caller = await authenticate(request)
    if scope not in caller.scopes:
        note["refusal"] = "missing_scope"
        raise Forbidden("scope", "missing_scope", f"this credential lacks the scope {scope!r}")
    return caller
