"""ASGI guards at the very edge, before any body is read or any handler runs.

* :class:`TargetGuard` refuses a request target whose path or query, once percent-decoded, is not
  UTF-8 or holds a control character (NUL, TAB, CR, LF, DEL...): 400 naming the path parameter or
  query key. Servers and proxies drop or rewrite such characters, so the path a handler would act
  on could differ from the one that was signed (see ``shared.auth.signing``).
* :class:`BodyLimit` refuses a body larger than the route's limit with 413: at once when
  ``Content-Length`` says so, and as soon as a chunked body passes the limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import orjson
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM = b"application/problem+json"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def problem_body(status: int, title: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors,
    }


async def send_problem(
    send: Send, status: int, title: str, field: str, code: str, message: str
) -> None:
    error = {"field": field, "code": code, "message": message}
    body = orjson.dumps(problem_body(status, title, [error]))
    headers = [(b"content-type", PROBLEM), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def decoded_path(raw_path: bytes) -> str:
    """The path as the handler will see it; ValueError when it is not UTF-8."""
    return unquote_to_bytes(raw_path).decode("utf-8")


def _path_field(scope: Scope, routes: list[Any] | None = None) -> str:
    # Name the path parameter at fault when a route matches; routing only runs on this error path.
    if routes is None:
        routes = getattr(getattr(scope.get("app"), "router", None), "routes", [])
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        for name, value in child.get("path_params", {}).items():
            if isinstance(value, str) and _CONTROL.search(value):
                return str(name)
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            field = _path_field({**scope, **child}, list(included.routes))
            if field != "path":
                return field
    return "path"


class TargetGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = _target_refusal(scope)
            if refusal is not None:
                field, code, message = refusal
                await send_problem(send, 400, "Bad request target", field, code, message)
                return
        await self.app(scope, receive, send)


def _target_refusal(scope: Scope) -> tuple[str, str, str] | None:
    raw = scope.get("raw_path") or scope["path"].encode()
    try:
        path = decoded_path(raw.split(b"?", 1)[0])
    except UnicodeDecodeError:
        return "path", "not_utf8", "the path is not UTF-8 once percent-decoded"
    if _CONTROL.search(path) or _CONTROL.search(scope["path"]):
        return _path_field(scope), "control_character", "must not contain control characters"
    query = scope.get("query_string", b"")
    if not query:
        return None
    try:
        pairs = parse_qsl(
            query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except UnicodeDecodeError:
        return "query", "not_utf8", "the query is not UTF-8 once percent-decoded"
    for key, value in pairs:
        if _CONTROL.search(key) or _CONTROL.search(value):
            field = key if not _CONTROL.search(key) else "query"
            return field, "control_character", "must not contain control characters"
    return None


class BodyLimit:
    """``limits`` maps a path pattern (a regex matched at the start of the path) to its limit;
    other paths get ``default``."""

    def __init__(self, app: ASGIApp, default: int, limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.limits = [(re.compile(p), n) for p, n in (limits or {}).items()]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.limits:
            if pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _too_large(send, limit)
            return
        received = 0
        refused = started = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit and not started:
                    # Answer now; to the app the client has gone, and what it sends is dropped.
                    refused = True
                    await _too_large(send, limit)
            return {"type": "http.disconnect"} if refused else message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted, watched)


async def _too_large(send: Send, limit: int) -> None:
    await send_problem(
        send,
        413,
        "Request body too large",
        "body",
        "body_too_large",
        f"the body must be at most {limit} bytes",
    )
