"""The FastAPI app factory every service uses.

Every app has ``/healthz`` (the process is alive), ``/readyz`` (its database and Kafka answer),
``/metrics`` (Prometheus) and OpenAPI, and answers every error as RFC 9457 problem+json with the
one error contract of ``shared.errors``: each error names its ``field``, a snake_case ``code`` and
a ``message``. Bad input is a 4xx, never a 500, and changes nothing.

What a request meets, in order: the target guard (400 for control characters in the path or
query), the body limit (413), the audit trail, then for a guarded route the signature and scope
(401, 403) before FastAPI reads or validates the body (422), then the handler. Routes come from
:func:`router`, so each checks its caller first; the OpenAPI document lists every error status an
operation can answer with the shared ``Problem`` schema.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from shared.auth.audit import AuditMiddleware, auth_note
from shared.auth.dependency import admit
from shared.edge import BodyLimit, TargetGuard, problem_body
from shared.errors import DomainError, ServiceUnavailable
from shared.metrics import RequestMetrics, exposition
from shared.telemetry import instrument_app

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
DEFAULT_BODY_LIMIT = 1024 * 1024
ReadinessCheck = Callable[[], Awaitable[None]]


class ProblemError(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; rules may add members of their own (e.g. ``existing``)."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemError]


class Health(BaseModel):
    status: str
    service: str


def problem(status: int, title: str, errors: list[dict[str, Any]], **extra: Any) -> JSONResponse:
    body = {**problem_body(status, title, errors), **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field(loc: tuple[Any, ...], ctx: Mapping[str, Any] | None) -> str:
    # ("body", "members", 3, "id_number") -> "members[3].id_number": "body" or "query" is noise.
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    inner = (ctx or {}).get("field")  # shared.inputs names the spot inside the value
    if inner:
        out = f"{out}.{inner}" if out and not str(inner).startswith("[") else f"{out}{inner}"
    return out or ".".join(map(str, loc)) or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(tuple(e["loc"]), e.get("ctx")), "code": e["type"], "message": e["msg"]}
        for e in exc.errors()
    ]
    return problem(422, "Invalid request", errors)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    errors = [{"field": exc.field, "code": exc.code, "message": exc.message}]
    # Rules may attach structured detail (e.g. every problem of a plan): make it JSON-safe.
    return problem(exc.status, exc.title, errors, **jsonable_encoder(exc.extra))


_HTTP_FIELDS = {401: "X-Gonghui-Signature", 404: "path", 405: "method"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase
    code = auth_note(request.scope).get("refusal") if status == 401 else None
    code = code or phrase.lower().replace(" ", "_").replace("-", "_")
    error = {"field": _HTTP_FIELDS.get(status, "request"), "code": code, "message": str(exc.detail)}
    response = problem(status, phrase, [error])
    response.headers.update(exc.headers or {})  # e.g. WWW-Authenticate on a 401
    return response


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    error = {"field": "service", "code": "not_ready", "message": str(exc)}
    response = problem(503, "Service unavailable", [error])
    response.headers["Retry-After"] = "1"
    return response


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The last line of defence: input the edge types should have refused reached Postgres.
    log.warning("unchecked input refused by the database on %s: %r", request.url.path, exc)
    error = {"field": "request", "code": "invalid_value", "message": "a value cannot be stored"}
    return problem(422, "Invalid request", [error])


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    error = {"field": "request", "code": "internal_error", "message": "logged; retry or report it"}
    return problem(500, "Internal error", [error])


def required_scope(dependant: Dependant) -> str | None:
    """The scope a route's ``require_scope`` dependency demands, if any."""
    for dep in dependant.dependencies:
        scope = getattr(dep.call, "gonghui_scope", None) or required_scope(dep)
        if scope:
            return str(scope)
    return None


class GuardedRoute(APIRoute):
    """A route that admits its caller (401, 403) before FastAPI reads or validates the body, so a
    caller without the scope learns nothing about what the body should be."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        scope = required_scope(self.dependant)
        if scope is None:
            return handler

        async def guarded(request: Request) -> Response:
            await admit(request, scope)
            return await handler(request)

        return guarded


def router(**kwargs: Any) -> APIRouter:
    """The router every service's routes are declared on."""
    return APIRouter(route_class=GuardedRoute, **kwargs)


def _problem_response(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM: {"schema": schema}}}


_ERRORS = {
    400: "Bad request target: a control character or invalid UTF-8 in the path or query",
    401: "Not signed, or the signature, timestamp, nonce or credential was refused",
    403: "The credential lacks the scope, or may not act for that organisation",
    404: "Something the request names does not exist",
    409: "Conflicts with the current state",
    413: "The body is larger than this operation accepts",
    422: "Invalid request: each error names the field, a code and a message",
    503: "Starting, or waiting for its database or Kafka: retry after Retry-After seconds",
}


def document_errors(schema: dict[str, Any]) -> None:
    """List on every operation each error status it can answer, with the Problem schema."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for methods in schema.get("paths", {}).values():
        for method, operation in methods.items():
            statuses = {400, 404, 422, 503}
            if operation.get("security"):
                statuses |= {401, 403}
            if method in ("post", "put", "patch", "delete"):
                statuses.add(409)
            if "requestBody" in operation:
                statuses.add(413)
            responses = operation.setdefault("responses", {})
            for status in statuses:
                existing = responses.get(str(status), {})
                description = existing.get("description") or _ERRORS[status]
                if status in (422, 503) or not existing.get("content"):
                    responses[str(status)] = _problem_response(description)


def create_app(
    service: str,
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    readiness: list[ReadinessCheck] | None = None,
    body_limit: int = DEFAULT_BODY_LIMIT,
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """``body_limits`` maps path patterns (regexes) to larger limits, e.g. roster uploads."""
    app = FastAPI(
        title=f"Gonghui {service}",
        lifespan=lifespan,
        # Operation ids are the route functions' names, so generated clients read as the API
        # does (``create_course``, not ``create_course_courses_post``); each is unique.
        generate_unique_id_function=lambda route: route.name,
    )
    app.router.route_class = GuardedRoute
    app.state.readiness = readiness if readiness is not None else []
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ServiceUnavailable, _unavailable)
    app.add_exception_handler(asyncpg.DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected)
    # Starlette runs the last added outermost: the request metrics (so every answer is timed,
    # refusals included), the target guard, the body limit, then the audit (which buffers signed
    # bodies for shared.auth's check).
    app.add_middleware(AuditMiddleware)
    app.add_middleware(BodyLimit, default=body_limit, limits=body_limits)
    app.add_middleware(TargetGuard)
    app.add_middleware(RequestMetrics, service=service)

    # A route, not a mounted app, so its requests carry the route template like any other
    # (``/metrics/`` too: it was the mounted app's address).
    # Prometheus' text format, not JSON: the answer is declared as such.
    @app.get("/metrics", tags=["ops"], include_in_schema=False, response_class=PlainTextResponse)
    @app.get("/metrics/", tags=["ops"], include_in_schema=False, response_class=PlainTextResponse)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    @app.get("/healthz", tags=["ops"], summary="The process is alive")
    async def healthz() -> Health:
        return Health(status="alive", service=service)

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=Health,
        summary="The service can serve: its database and Kafka answer",
        responses={503: _problem_response("Not ready: the failing checks are listed")},
    )
    async def readyz() -> Any:
        failures = []
        for check in app.state.readiness:
            try:
                await check()
            except Exception as exc:
                failures.append({"field": check.__name__, "code": "not_ready", "message": str(exc)})
        if failures:
            return problem(503, "Not ready", failures)
        return Health(status="ready", service=service)

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(original_openapi())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

    instrument_app(app)  # one server span per request carries the trace to the outbox
    return app
