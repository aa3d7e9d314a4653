"""The FastAPI app factory every service uses.

Every app has ``/healthz`` (the process is alive), ``/readyz`` (its database and Kafka answer),
``/metrics`` (Prometheus) and OpenAPI, and answers errors as RFC 9457 problem+json. A validation
error names each offending field and is a 422, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import make_asgi_app
from starlette.exceptions import HTTPException

from shared.auth.audit import AuditMiddleware
from shared.errors import DomainError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
ReadinessCheck = Callable[[], Awaitable[None]]


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field(loc: tuple[Any, ...]) -> str:
    # ("body", "members", 3, "id_number") -> "members[3].id_number": "body" or "query" is noise.
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or ".".join(map(str, loc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(tuple(e["loc"])), "reason": e["msg"]} for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return problem(422, "Invalid request", detail, errors=errors)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    errors = [{"field": exc.field, "reason": exc.reason}]
    # Rules may attach structured detail (e.g. every problem of a plan): make it JSON-safe.
    return problem(exc.status, exc.title, str(exc), errors=errors, **jsonable_encoder(exc.extra))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    response = problem(exc.status_code, str(exc.detail), str(exc.detail))
    response.headers.update(exc.headers or {})  # e.g. WWW-Authenticate on a 401
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "The error was logged; please retry or report it.")


def create_app(
    service: str,
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    readiness: list[ReadinessCheck] | None = None,
) -> FastAPI:
    app = FastAPI(
        title=f"Gonghui {service}",
        lifespan=lifespan,
        responses={422: {"description": "Invalid request (problem+json naming each field)"}},
    )
    app.state.readiness = readiness if readiness is not None else []
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.mount("/metrics", make_asgi_app())
    # Audits department-system calls and buffers signed bodies for shared.auth's check.
    app.add_middleware(AuditMiddleware)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "alive", "service": service}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        failures = []
        for check in app.state.readiness:
            try:
                await check()
            except Exception as exc:
                failures.append(f"{check.__name__}: {exc}")
        if failures:
            return problem(503, "Not ready", "; ".join(failures))
        return JSONResponse({"status": "ready", "service": service})

    # One server span per request carries the trace to the outbox; spans for each ASGI
    # receive and send would triple the tracing cost of every call and tell nothing more.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
    )
    return app
