"""The contracts departments build on, checked across every service without servers: each route
admits its caller before reading the body, takes typed input and answers typed output, says what
it does, and is published as served; every error code a service can raise is documented."""

from __future__ import annotations

import ast
import importlib
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from deploy import openapi as published
from shared.http import GuardedRoute
from shared.inputs import INT64_MAX, INT64_MIN, Command

ROOT = Path(__file__).resolve().parents[2]
SERVICES = published.SERVICES
_apps: dict[str, FastAPI] = {}


def app_of(service: str) -> FastAPI:
    if service not in _apps:
        main = importlib.import_module(f"services.{service}.main")
        _apps[service] = main.build(main.Settings())
    return _apps[service]


def _flattened(routes: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        included = getattr(route, "original_router", None)  # FastAPI wraps included routers
        if included is not None:
            found.extend(_flattened(list(included.routes)))
    return found


def api_routes(service: str) -> list[APIRoute]:
    routes = _flattened(list(app_of(service).routes))
    assert len(routes) > 5, "the service's own routes were not found"
    return routes


def _untyped(annotation: Any) -> bool:
    if annotation in (Any, dict, list, object, None):
        return True
    origin = typing.get_origin(annotation)
    if origin in (dict, list) or origin is typing.Union:
        return any(_untyped(a) for a in typing.get_args(annotation) if a is not type(None))
    return False


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_admits_its_caller_before_the_body_is_read(service: str) -> None:
    plain = [r.path for r in api_routes(service) if not isinstance(r, GuardedRoute)]
    assert plain == [], "declare these on shared.http.router()"


@pytest.mark.parametrize("service", SERVICES)
def test_every_request_body_is_a_command(service: str) -> None:
    def loose(annotation: Any) -> bool:
        if isinstance(annotation, type):
            return not issubclass(annotation, Command | bytes) and "UploadFile" not in repr(
                annotation
            )
        return any(loose(a) for a in typing.get_args(annotation) if a is not type(None))

    bodies = [
        (r, field.field_info)
        for r in api_routes(service)
        for field in r.dependant.body_params
        if field.field_info.__class__.__name__ not in ("File", "Form")  # uploads: bytes
    ]
    assert bodies, "no request bodies found: the check would check nothing"
    assert [f"{r.path} {info.annotation}" for r, info in bodies if loose(info.annotation)] == [], (
        "request bodies derive from shared.inputs.Command"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_a_typed_body(service: str) -> None:
    untyped = [
        f"{sorted(r.methods)[0]} {r.path}"
        for r in api_routes(service)
        if r.status_code != 204
        and getattr(r.response_class, "__name__", "JSONResponse") == "JSONResponse"
        and r.path not in ("/healthz",)
        and (r.response_model is None or _untyped(r.response_model))
        and not (isinstance(r.response_model, type) and issubclass(r.response_model, BaseModel))
    ]
    assert untyped == [], "give these a pydantic response model"


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_says_what_it_does(service: str) -> None:
    schema = app_of(service).openapi()
    silent = [
        f"{method.upper()} {path}"
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if not op.get("summary") or (not op.get("description") and "ops" not in op.get("tags", []))
    ]
    assert silent == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_integer_parameter_fits_in_64_bits(service: str) -> None:
    schema = app_of(service).openapi()
    unbounded = [
        f"{method.upper()} {path} {p['name']}"
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        for p in op.get("parameters", [])
        for s in [p["schema"], *p["schema"].get("anyOf", [])]
        if s.get("type") == "integer"
        and not (
            s.get("minimum", INT64_MIN - 1) >= INT64_MIN
            and s.get("maximum", INT64_MAX + 1) <= INT64_MAX
        )
    ]
    assert unbounded == [], "use shared.inputs Int64, RowId, Offset or Limit"


@pytest.mark.parametrize("service", SERVICES)
def test_operation_ids_are_unique(service: str) -> None:
    schema = app_of(service).openapi()
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert sorted(i for i in set(ids) if ids.count(i) > 1) == []


def test_the_published_openapi_documents_are_what_the_services_serve() -> None:
    assert published.main(["--check"]) == 0, "run python -m deploy.openapi and commit docs/openapi/"


_ERROR_CLASSES = {"DomainError", "Conflict", "NotFound", "Forbidden"}


def raised_codes(service: str) -> set[str]:
    """The literal codes of the errors a service's modules construct."""
    codes = set()
    for path in (ROOT / "services" / service).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            code = node.args[1]
            if name in _ERROR_CLASSES and isinstance(code, ast.Constant):
                codes.add(str(code.value))
    return codes


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_code_a_service_raises_is_documented(service: str) -> None:
    documented = set(re.findall(r"`([a-z][a-z0-9_]*)`", (ROOT / "docs" / "errors.md").read_text()))
    documented |= set(
        re.findall(r"`([a-z][a-z0-9_]*)`", (ROOT / "docs" / "errors" / f"{service}.md").read_text())
    )
    assert raised_codes(service) - documented == set()
