"""The OpenAPI document a department generates its mutual-aid client from: every operation says
what it does, answers a typed body for each success status, and shows an example request."""

from __future__ import annotations

from typing import Any

import pytest

from services.mutual_aid.main import Settings, build

DOCUMENT = build(Settings()).openapi()
SCHEMAS = DOCUMENT["components"]["schemas"]
# The webhook routes and the probes are shared.webhooks' and shared.http's, not this service's.
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in DOCUMENT["paths"].items()
    if not path.startswith(("/webhooks", "/healthz", "/readyz"))
    for method, operation in item.items()
]


def named(schema: dict[str, Any]) -> dict[str, Any]:
    return SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]


def test_the_service_has_the_operations_staff_and_departments_ask_for() -> None:
    assert len(OPERATIONS) == 30


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_every_operation_says_what_it_does(method: str, path: str, operation: Any) -> None:
    assert operation.get("summary"), (method, path)
    assert len(operation.get("description", "")) >= 40, (method, path)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_every_success_answer_is_a_typed_body(method: str, path: str, operation: Any) -> None:
    successes = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
    assert successes, (method, path)
    for status, answer in successes.items():
        schema = answer["content"]["application/json"]["schema"]
        if schema.get("type") == "array":
            schema = schema["items"]
        assert "$ref" in schema, (method, path, status)
        properties = named(schema)["properties"]
        assert properties, (method, path, status)
        untyped = [n for n, p in properties.items() if not ({"type", "$ref", "anyOf"} & set(p))]
        assert not untyped, (method, path, untyped)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_every_error_status_is_documented_as_a_problem(
    method: str, path: str, operation: Any
) -> None:
    statuses = set(operation["responses"])
    assert {"400", "401", "403", "404", "422"} <= statuses, (method, path)
    problem = operation["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}


@pytest.mark.parametrize(
    ("method", "path", "operation"), [o for o in OPERATIONS if "requestBody" in o[2]]
)
def test_every_request_body_has_an_example(method: str, path: str, operation: Any) -> None:
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert named(schema).get("examples"), (method, path)


def test_a_repeated_grant_is_documented_as_200_and_a_new_one_as_201() -> None:
    grant = DOCUMENT["paths"]["/backstop/requests/{request_id}/grants"]["post"]
    assert {"200", "201"} <= set(grant["responses"])


def test_money_dates_and_states_are_typed() -> None:
    claim = SCHEMAS["ClaimView"]["properties"]
    assert claim["total_expense_fen"]["type"] == "integer"
    assert claim["admission_date"]["format"] == "date"
    assert claim["state"] == {"$ref": "#/components/schemas/ClaimState"}
    step = SCHEMAS["ClaimStepView"]["properties"]
    assert {"from", "to", "at"} <= set(step) and step["at"]["format"] == "date-time"
    assert SCHEMAS["BandView"]["properties"]["ratio"]["type"] == "string"
