"""The audit trail of department-system calls, written by an ASGI middleware.

Every request that carries a signature header, or reaches an endpoint guarded by
``require_scope``, gets one ``audit_log`` row: who (app id, department), what (method and the
route *template*, e.g. ``/claims/{claim_id}``, never the raw path, which may hold an ID number),
when, the status code and an outcome word. No personal data: the query, body and path values are
never stored, and a claimed app id is kept only when it has the shape of an issued one.

The row is written when the response starts, before any byte of the answer leaves, so a caller
never holds an answer that left no trace. Rows of concurrent requests share one INSERT (see
:class:`AuditWriter`): under load, one statement and one commit for many calls. The middleware
also buffers the body of signed requests, so the signature check can hash it even when the
endpoint reads a form or a stream: it hashes the body as it streams in and keeps it for the
endpoint in memory up to 1 MiB, on disk beyond, so a 40 MB roster upload never sits in memory.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth.signing import APP_ID, SIGNATURE
from shared.coalesce import Coalesced
from shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)


BODY_SHA256 = "gonghui.body_sha256"  # scope key: the hex SHA-256 of a signed request's body
AUTH = "gonghui.auth"  # scope key: what the auth dependency learnt (see AuthNote)
_ISSUED_APP_ID = re.compile(r"(hr|tax|finance|employer-hr|federation)-[0-9a-f]{12}")
_SIGNED_HEADERS = {APP_ID.lower().encode(), SIGNATURE.lower().encode()}


def auth_note(scope: Scope) -> dict[str, Any]:
    """The per-request note the dependency fills in and the middleware reads back."""
    note: dict[str, Any] = scope.setdefault(AUTH, {})
    return note


def safe_app_id(claimed: str | None) -> str | None:
    """The claimed app id if it looks like one we issue; a made-up one may be personal data."""
    if claimed is None:
        return None
    return claimed if _ISSUED_APP_ID.fullmatch(claimed) else "(unrecognised)"


def _outcome(status: int, note: dict[str, Any]) -> str:
    if status < 400:
        return "accepted"
    if "refusal" in note:
        return str(note["refusal"])
    return "refused" if status < 500 else "failed"


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        signed = any(name in headers for name in _SIGNED_HEADERS)
        if not signed:
            await self._audited(scope, receive, send)
            return
        with tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY) as body:
            scope[BODY_SHA256] = await _spool_body(receive, body)
            claimed = headers.get(APP_ID.lower().encode())
            auth_note(scope)["claimed"] = claimed.decode("latin-1") if claimed else None
            await self._audited(scope, _replay(body, receive), send)

    async def _audited(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        audited = False

        async def send_audited(message: Message) -> None:
            nonlocal audited
            if message["type"] == "http.response.start" and not audited:
                audited = True
                await self._audit(scope, int(message["status"]), started)
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except Exception:
            if not audited:
                audited = True
                await self._audit(scope, 500, started)
            raise

    async def _audit(self, scope: Scope, status: int, started: float) -> None:
        note = scope.get(AUTH)
        if note is None:
            return  # neither signed nor a guarded endpoint: not a department call
        state = scope["app"].state
        runtime = getattr(state, "runtime", None)
        if runtime is None:
            return
        try:
            pool = runtime.pool
        except ServiceUnavailable:
            return  # the call was answered 503 before anything was read: nothing to audit
        writer: AuditWriter | None = getattr(state, "audit_writer", None)
        if writer is None or writer.pool is not pool:
            writer = state.audit_writer = AuditWriter(pool)
        route = scope.get("route")
        template = getattr(route, "path", None) or "(no route)"
        row = (
            note.get("app_id") or safe_app_id(note.get("claimed")),
            note.get("department"),
            scope["method"],
            template,
            status,
            _outcome(status, note),
            int((time.monotonic() - started) * 1000),
        )
        try:
            await writer.write(row)
        except Exception as exc:  # the answer still goes out; ops see the gap in the log
            log.error("audit row for %s %s not written: %r", scope["method"], template, exc)


class AuditWriter:
    """Writes audit rows in batches: the rows of concurrent requests share one INSERT
    (:class:`shared.coalesce.Coalesced`)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.write: Coalesced[tuple[Any, ...], None] = Coalesced(self._insert)

    async def _insert(self, rows: list[tuple[Any, ...]]) -> list[None]:
        await self.pool.execute(_INSERT, *zip(*rows, strict=True))
        return [None] * len(rows)


_INSERT = (
    "INSERT INTO audit_log (app_id, department, method, route, status, outcome, duration_ms)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[],"
    " $6::text[], $7::integer[])"
)


_IN_MEMORY = 1024 * 1024  # a signed body larger than this waits for its endpoint on disk
_CHUNK = 64 * 1024


async def _spool_body(receive: Receive, body: IO[bytes]) -> str:
    """Read the whole body into ``body``, hashing it on the way; its hex SHA-256."""
    digest = hashlib.sha256()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        digest.update(chunk)
        body.write(chunk)
        if not message.get("more_body", False):
            break
    body.seek(0)
    return digest.hexdigest()


def _replay(body: IO[bytes], receive: Receive) -> Receive:
    """The spooled body again, chunk by chunk, as the server would have sent it."""
    finished = False

    async def replayed() -> Message:
        nonlocal finished
        if finished:
            return await receive()  # later calls wait for the disconnect, as the server's would
        chunk = body.read(_CHUNK)
        finished = len(chunk) < _CHUNK
        return {"type": "http.request", "body": chunk, "more_body": not finished}

    return replayed
