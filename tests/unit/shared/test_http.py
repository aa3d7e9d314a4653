from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from shared.errors import Conflict
from shared.http import create_app


class Body(BaseModel):
    name: str = Field(max_length=5)
    age: int


def build() -> FastAPI:
    app = create_app("test")

    @app.post("/things")
    async def create(body: Body) -> dict[str, str]:
        if body.name == "taken":
            raise Conflict("name", "already_registered", "already registered", existing="thing-1")
        return {"ok": "yes"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    return app


def test_validation_errors_name_each_field_as_problem_json() -> None:
    client = TestClient(build())
    answer = client.post("/things", json={"name": "toolongname", "age": "x"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"name", "age"}


def test_domain_errors_map_to_their_status() -> None:
    client = TestClient(build())
    answer = client.post("/things", json={"name": "taken", "age": 3})
    assert answer.status_code == 409
    assert answer.json()["existing"] == "thing-1"
    assert answer.json()["errors"] == [
        {"field": "name", "code": "already_registered", "message": "already registered"}
    ]


def test_unexpected_errors_are_a_problem_without_details_and_ops_endpoints_answer() -> None:
    client = TestClient(build(), raise_server_exceptions=False)
    answer = client.get("/boom")
    assert answer.status_code == 500 and "bug" not in answer.text
    assert client.get("/healthz").json()["status"] == "alive"
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics/").status_code == 200
    assert client.get("/nowhere").headers["content-type"] == "application/problem+json"
