"""The FastAPI app: WeChat's paths on ``/cgi-bin/...``, the inspection/admin API on ``/_sim/...``.

The API handlers read the raw body and answer with orjson directly, skipping pydantic: the
simulator takes benchmark traffic and its own overhead must stay well below the client's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request, Response

from .admin import router as admin_router
from .callbacks import CallbackPusher, CallbackTarget
from .calls import WeChatCalls
from .clock import SimClock
from .config import (
    QUOTA_GET_PATH,
    STABLE_TOKEN_PATH,
    SUBSCRIBE_SEND_PATH,
    TEMPLATE_SEND_PATH,
    TOKEN_PATH,
    SimulatorConfig,
)
from .fastpath import ApiCall, ApiHandler, FastPath
from .state import SimulatorState

# What WeChat sends as the content type of its JSON answers.
JSON_MEDIA_TYPE = "application/json; encoding=utf-8"


class Simulator:
    """Everything one simulated account holds: state, clock, event pusher, start-up config."""

    def __init__(
        self,
        config: SimulatorConfig,
        clock: SimClock,
        callback_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.startup_config = config.model_copy(deep=True)
        self.clock = clock
        self._target_cache: tuple[SimulatorConfig, CallbackTarget | None] | None = None
        self.pusher = CallbackPusher(
            self._callback_target,
            batch_size=lambda: self.state.config.callback_batch_size,
            transport=callback_transport,
        )
        self.state = SimulatorState(config.model_copy(deep=True), clock, sink=self.pusher.submit)

    def _callback_target(self) -> CallbackTarget | None:
        config = self.state.config
        cached = self._target_cache
        if cached is not None and cached[0] is config:
            return cached[1]
        target = None
        if config.callback_url:
            target = CallbackTarget(
                url=config.callback_url,
                token=config.callback_token,
                original_id=config.original_id,
                timeout=config.callback_timeout_seconds,
                retries=config.callback_retries,
            )
        self._target_cache = (config, target)
        return target

    def reset(self, *, keep_clock: bool = False) -> None:
        if not keep_clock:
            self.clock.reset()
        self.pusher.reset()
        self.state.reset(self.startup_config.model_copy(deep=True))


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type=JSON_MEDIA_TYPE)


def _route(
    handler: ApiHandler, latency: Callable[[], Awaitable[None]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        await latency()
        call = ApiCall(
            request.query_params, await request.body(), request.headers.get("traceparent")
        )
        return _json(handler(call))

    return endpoint


def create_app(
    config: SimulatorConfig | None = None,
    *,
    clock: SimClock | None = None,
    callback_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build a simulator app. ``app.state.simulator`` gives in-process tests direct access to the
    :class:`Simulator` (its ``state``, ``clock`` and ``pusher``); ``callback_transport`` lets a
    test deliver event pushes to an in-process ASGI receiver instead of over the network."""
    sim = Simulator(config or SimulatorConfig(), clock or SimClock(), callback_transport)
    state = sim.state
    calls = WeChatCalls(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await sim.pusher.aclose()

    app = FastAPI(
        title="WeChat Official Account API simulator",
        lifespan=lifespan,
        docs_url="/_sim/docs",
        openapi_url="/_sim/openapi.json",
        redoc_url=None,
    )
    app.state.simulator = sim

    async def latency() -> None:
        delay = state.faults.latency_ms
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    def token(call: ApiCall) -> dict[str, Any]:
        query = call.query
        return calls.token(query.get("grant_type"), query.get("appid"), query.get("secret"))

    def stable_token(call: ApiCall) -> dict[str, Any]:
        return calls.stable_token(call.body)

    def template_send(call: ApiCall) -> dict[str, Any]:
        return calls.template_send(call.query.get("access_token"), call.body, call.traceparent)

    def subscribe_send(call: ApiCall) -> dict[str, Any]:
        return calls.subscribe_send(call.query.get("access_token"), call.body, call.traceparent)

    def quota_get(call: ApiCall) -> dict[str, Any]:
        return calls.quota_get(call.query.get("access_token"), call.body)

    handlers: dict[tuple[str, str], ApiHandler] = {
        ("GET", TOKEN_PATH): token,
        ("POST", STABLE_TOKEN_PATH): stable_token,
        ("POST", TEMPLATE_SEND_PATH): template_send,
        ("POST", SUBSCRIBE_SEND_PATH): subscribe_send,
        ("POST", QUOTA_GET_PATH): quota_get,
    }

    # The same handlers as ordinary routes: they document the API in /_sim/docs and serve
    # requests if the fast path is ever bypassed.
    for (method, path), handler in handlers.items():
        app.add_api_route(path, _route(handler, latency), methods=[method])
    app.add_middleware(FastPath, handlers=handlers, latency=latency)

    app.include_router(admin_router)
    return app
