"""A pure-ASGI fast path for WeChat's own endpoints.

FastAPI's routing, dependency solving and Request objects cost more per call than the simulator's
rules do; for the benchmark's hundreds of thousands of sends the ``/cgi-bin`` calls are answered
here, before the framework, while ``/_sim`` and everything else goes through FastAPI as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

JSON_CONTENT_TYPE = b"application/json; encoding=utf-8"


@dataclass(frozen=True, slots=True)
class ApiCall:
    query: Mapping[str, str]
    body: bytes
    traceparent: str | None


ApiHandler = Callable[[ApiCall], dict[str, Any]]


class FastPath:
    def __init__(
        self,
        app: ASGIApp,
        handlers: dict[tuple[str, str], ApiHandler],
        latency: Callable[[], Awaitable[None]],
    ) -> None:
        self.app = app
        self.handlers = handlers
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = None
        if scope["type"] == "http":
            handler = self.handlers.get((scope["method"], scope["path"]))
        if handler is None:
            await self.app(scope, receive, send)
            return
        await self.latency()
        body = await _read_body(receive)
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        traceparent = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
                break
        payload = orjson.dumps(handler(ApiCall(query, body, traceparent)))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", JSON_CONTENT_TYPE),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while message.get("more_body", False):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)
