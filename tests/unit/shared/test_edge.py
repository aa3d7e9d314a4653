"""The edge refuses what Postgres or the signature could not hold, before any handler runs."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import Field

from shared.http import create_app, router
from shared.inputs import Command, IsoDate, Offset, RowId

seen: list[str] = []


class Thing(Command):
    name: str
    count: int = 0
    tags: list[str] = Field(default_factory=list)
    on: IsoDate | None = None


def build(body_limit: int = 1000) -> FastAPI:
    app = create_app("test", body_limit=body_limit, body_limits={r"/big$": 10 * body_limit})
    routes = router()

    @routes.get("/things/{thing_id}")
    async def get_thing(thing_id: str) -> dict[str, str]:
        seen.append(thing_id)
        return {"id": thing_id}

    @routes.get("/things")
    async def list_things(
        name: str = "", offset: Offset = 0, since: Annotated[IsoDate | None, Query()] = None
    ) -> dict[str, str]:
        seen.append(name)
        return {"name": name, "offset": str(offset), "since": str(since)}

    @routes.get("/rows/{row_id}")
    async def get_row(row_id: RowId) -> dict[str, int]:
        return {"id": row_id}

    @routes.post("/things")
    async def create(thing: Thing) -> dict[str, str]:
        seen.append(thing.name)
        return {"name": thing.name}

    @routes.post("/big")
    async def big(thing: Thing) -> dict[str, int]:
        return {"length": len(thing.name)}

    app.include_router(routes)
    return app


client = TestClient(build())


def errors(answer: object) -> list[dict[str, str]]:
    assert getattr(answer, "headers")["content-type"] == "application/problem+json"  # noqa: B009
    return list(getattr(answer, "json")()["errors"])  # noqa: B009


@pytest.mark.parametrize("char", ["%00", "%09", "%0A", "%0D", "%7F"])
def test_control_characters_in_a_path_are_refused_naming_the_parameter(char: str) -> None:
    seen.clear()
    answer = client.get(f"/things/a{char}b")
    assert answer.status_code == 400
    assert errors(answer) == [
        {
            "field": "thing_id",
            "code": "control_character",
            "message": "must not contain control characters",
        }
    ]
    assert seen == []


def test_a_path_that_is_not_utf8_is_refused() -> None:
    answer = client.get("/things/a%FFb")
    assert answer.status_code == 400 and errors(answer)[0]["code"] == "not_utf8"


def test_reserved_characters_in_a_segment_reach_the_handler_as_sent() -> None:
    for raw, value in [("a%23b", "a#b"), ("a%3Fb", "a?b"), ("a%5Cb", "a\\b")]:
        assert client.get(f"/things/{raw}").json() == {"id": value}


def test_control_characters_in_a_query_value_are_refused_naming_the_key() -> None:
    seen.clear()
    answer = client.get("/things?name=a%00b")
    assert answer.status_code == 400 and errors(answer)[0]["field"] == "name"
    assert seen == []


def test_nul_anywhere_in_a_body_is_a_422_naming_the_field() -> None:
    seen.clear()
    answer = client.post("/things", json={"name": "ok", "tags": ["x", "a\u0000"]})
    assert answer.status_code == 422
    assert errors(answer)[0]["field"] == "tags[1]"
    assert errors(answer)[0]["code"] == "nul_character"
    answer = client.post("/things", json={"name": "a\u0000"})
    assert errors(answer)[0]["field"] == "name"
    assert seen == []


def test_integers_beyond_64_bits_are_refused_in_bodies_paths_and_queries() -> None:
    answer = client.post("/things", json={"name": "x", "count": 2**63})
    assert answer.status_code == 422 and errors(answer)[0]["field"] == "count"
    assert errors(answer)[0]["code"] == "integer_out_of_range"
    answer = client.get("/rows/9223372036854775808")
    assert answer.status_code == 422 and errors(answer)[0]["field"] == "row_id"
    answer = client.get("/things?offset=99999999999999999999")
    assert answer.status_code == 422 and errors(answer)[0]["field"] == "offset"
    assert client.get("/rows/9223372036854775807").status_code == 200


@pytest.mark.parametrize(
    "since", ["-1.705e-11", "0667-06-02", "1767225600", "2026-7-1", "2026-13-01"]
)
def test_dates_are_iso_and_in_range(since: str) -> None:
    answer = client.get("/things", params={"since": since})
    assert answer.status_code == 422 and errors(answer)[0]["field"] == "since"


def test_an_iso_date_is_accepted_in_queries_and_bodies() -> None:
    assert client.get("/things", params={"since": "2026-07-01"}).json()["since"] == "2026-07-01"
    assert Thing.model_validate({"name": "x", "on": "2026-07-01"}).on == date(2026, 7, 1)


def test_a_body_over_the_limit_is_413_before_it_is_read() -> None:
    answer = client.post(
        "/things",
        content=b'{"name": "' + b"x" * 2000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413 and errors(answer)[0]["code"] == "body_too_large"


def test_a_chunked_body_over_the_limit_is_413() -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    answer = client.post("/things", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413


def test_a_route_may_take_a_larger_body() -> None:
    answer = client.post("/big", json={"name": "x" * 2000})
    assert answer.status_code == 200 and answer.json() == {"length": 2000}


def test_every_operation_documents_its_errors_with_the_problem_schema() -> None:
    schema = build().openapi()
    create = schema["paths"]["/things"]["post"]["responses"]
    assert {"400", "404", "409", "413", "422"} <= set(create)
    assert create["413"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    offset = next(
        p for p in schema["paths"]["/things"]["get"]["parameters"] if p["name"] == "offset"
    )
    assert offset["schema"]["maximum"] == 2**63 - 1
