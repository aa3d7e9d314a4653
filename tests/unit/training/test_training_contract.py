"""The training API's contract, read from its routes and OpenAPI document without any server:
every body is a shared Command (no NUL, no integer beyond 64 bits, ISO instants with their
offset), every operation says what it does and answers a typed body."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from services.training import api, api_attendance, api_enrolment, api_public, api_reports
from services.training import commands as c
from services.training.main import Settings, build
from shared.inputs import Command

SESSION = {"starts_at": "2026-06-25T09:00:00+08:00", "ends_at": "2026-06-25T12:00:00+08:00"}
CLASS = {
    "name": "2026年第一期",
    "capacity": 50,
    "enrolment_opens_at": "2026-06-01T09:00:00+08:00",
    "enrolment_closes_at": "2026-06-20T18:00:00+08:00",
    "sessions": [SESSION | {"venue": "201"}],
}


API_MODULES = (api, api_enrolment, api_attendance, api_reports, api_public)


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return build(Settings())


def _routes(routes: list[Any]) -> list[APIRoute]:
    found: list[Any] = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers
        found += _routes(list(included.routes)) if included is not None else [route]
    return [r for r in found if isinstance(r, APIRoute)]


def training_routes(app: FastAPI) -> list[APIRoute]:
    """The routes training's own modules declare (action routes' endpoints live in shared)."""
    own = {id(r) for m in API_MODULES for r in m.router.routes}
    return [r for r in _routes(app.routes) if id(r) in own]


def _codes(error: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(map(str, e["loc"])), e["type"]) for e in error.errors()]


def test_every_request_body_of_training_is_a_shared_command(app: FastAPI) -> None:
    bodies = {
        r.path: p.field_info.annotation
        for r in training_routes(app)
        for p in r.dependant.body_params
    }
    assert len(bodies) >= 10
    for path, model in bodies.items():
        assert isinstance(model, type) and issubclass(model, Command), path


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (c.Enrol, {"member_id": "a\x00b"}, "member_id"),
        (c.CodeCheckIn, {"member_id": "m1", "code": "7KQ\x003M9"}, "code"),
        (c.Cancel, {"reason": "sick\x00"}, "reason"),
        (
            c.ScheduleClass,
            CLASS | {"sessions": [SESSION | {"venue": "2\x0001"}]},
            "sessions[0].venue",
        ),
        (
            c.CreateCourse,
            {"title": "t", "kind": "cadre_training", "provider": "p", "x\x00": 1},
            "x\x00",
        ),
    ],
)
def test_a_nul_anywhere_in_a_body_is_refused_naming_where(
    model: type[BaseModel], body: dict[str, Any], field: str
) -> None:
    # Postgres refuses NUL in text: `POST /classes/x/enrolments` with "a\u0000b" used to be a 500.
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    [error] = refused.value.errors()
    assert (error["type"], error["ctx"]["field"]) == ("nul_character", field)


def test_a_fault_deep_in_a_lecture_sized_batch_is_found_and_named() -> None:
    lines = [{"report_id": f"r{i}", "member_id": f"M{i:08d}", "minutes": 60} for i in range(5000)]
    lines[4321] = lines[4321] | {"member_id": "M\x00"}
    with pytest.raises(ValidationError) as refused:
        c.ViewingBatch.model_validate({"reports": lines})
    [error] = refused.value.errors()
    assert (error["type"], error["ctx"]["field"]) == ("nul_character", "reports[4321].member_id")


def test_integers_up_to_64_bits_pass_beyond_53_too() -> None:
    # Beyond 53 bits the quick check in C gives way to the exact walk, which lets them through.
    for minutes in (2**53 + 1, 2**63 - 1):
        with pytest.raises(ValidationError) as refused:
            c.ViewingReport.model_validate({"report_id": "r", "member_id": "m", "minutes": minutes})
        assert [e["type"] for e in refused.value.errors()] == ["less_than_equal"]


def test_an_integer_beyond_64_bits_is_refused_before_its_own_bounds() -> None:
    with pytest.raises(ValidationError) as refused:
        c.ViewingReport.model_validate({"report_id": "r", "member_id": "m", "minutes": 2**64})
    assert [e["type"] for e in refused.value.errors()] == ["integer_out_of_range"]


@pytest.mark.parametrize(
    "instant",
    ["2026-06-01T09:00:00", "1780275600", 1780275600, "2026-06-01", "0667-06-02T09:00:00Z"],
)
def test_class_instants_are_iso_with_their_utc_offset(instant: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        c.ScheduleClass.model_validate(CLASS | {"enrolment_opens_at": instant})
    assert [loc for loc, _ in _codes(refused.value)] == ["enrolment_opens_at"]
    with pytest.raises(ValidationError):
        c.ScheduleClass.model_validate(CLASS | {"sessions": [SESSION | {"starts_at": instant}]})
    assert c.ScheduleClass.model_validate(CLASS).enrolment_opens_at.utcoffset() is not None


def _operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    paths = {r.path for r in training_routes(app)}
    return {
        f"{method.upper()} {path}": op
        for path, item in app.openapi()["paths"].items()
        if path in paths
        for method, op in item.items()
    }


def test_every_operation_says_what_it_does_and_what_it_can_refuse(app: FastAPI) -> None:
    operations = _operations(app)
    assert len(operations) == 29  # capacity, an action route, counted too
    for name, op in operations.items():
        assert op.get("summary") and len(op.get("description", "")) > 60, name
        assert {"400", "404", "422"} <= set(op["responses"]), name


def test_every_request_body_has_an_example(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    for name, op in _operations(app).items():
        if "requestBody" in op:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert schemas[ref.rsplit("/", 1)[1]].get("examples"), name


def _untyped(schema: Any, schemas: dict[str, Any], seen: set[str], where: str) -> list[str]:
    """Places in a response schema that a generated client could only see as ``Any``."""
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        seen.add(name)
        return _untyped(schemas[name], schemas, seen, name)
    found = []
    if not ({"type", "anyOf", "allOf", "oneOf", "enum", "const"} & set(schema)):
        found.append(where)
    free_form = not isinstance(schema.get("additionalProperties"), dict)
    if schema.get("type") == "object" and not schema.get("properties") and free_form:
        found.append(where)
    for key in ("anyOf", "allOf", "oneOf"):
        for i, inner in enumerate(schema.get(key, [])):
            found += _untyped(inner, schemas, seen, f"{where}.{key}[{i}]")
    for prop, inner in schema.get("properties", {}).items():
        found += _untyped(inner, schemas, seen, f"{where}.{prop}")
    for key in ("items", "additionalProperties"):
        found += _untyped(schema.get(key), schemas, seen, f"{where}.{key}")
    return found


def test_every_success_answer_is_typed_all_the_way_down(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    for name, op in _operations(app).items():
        [success] = [s for s in op["responses"] if s.startswith("2")]
        schema = op["responses"][success]["content"]["application/json"]["schema"]
        assert "$ref" in schema, name
        assert _untyped(schema, schemas, set(), name) == []


def test_the_public_verification_is_open_and_documents_its_refusals(app: FastAPI) -> None:
    op = _operations(app)["GET /certificates/{number}/verification"]
    assert "security" not in op
    assert {"200", "404", "422"} <= set(op["responses"])
    assert not {"401", "403"} & set(op["responses"])
    for status in ("404", "422"):
        content = op["responses"][status]["content"]["application/problem+json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_list_operations_take_64_bit_offsets_and_bounded_limits(app: FastAPI) -> None:
    for name, op in _operations(app).items():
        params = {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"}
        if "offset" in params:
            assert (params["offset"]["minimum"], params["offset"]["maximum"]) == (0, 2**63 - 1)
            assert params["limit"]["maximum"] <= 1000, name
