"""Membership's contract without servers: what its request bodies refuse, its date ranges, its
body limits and target guard, and what its OpenAPI document tells a department."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from services.membership import commands as c
from services.membership.api import date_range
from services.membership.main import Settings, build
from shared.edge import BodyLimit
from shared.errors import DomainError
from shared.inputs import Command

MIB = 1024 * 1024
JOIN = {
    "name": "王芳",
    "id_number": "341602199003150027",
    "mobile": "13800000001",
    "channel": "online",
    "union_id": "bozhou-pharma",
    "employer_name": "亳州药业有限公司",
}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return build(Settings())


@pytest.fixture(scope="module")
def openapi(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def refusal(model: type[BaseModel], body: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    error = refused.value.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    inner = (error.get("ctx") or {}).get("field")
    return (f"{where}.{inner}" if where and inner else where or inner or ""), error["type"]


def test_every_body_of_the_service_is_a_shared_command() -> None:
    bodies = [v for v in vars(c).values() if isinstance(v, type) and issubclass(v, BaseModel)]
    assert bodies and all(issubclass(b, Command) for b in bodies)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (JOIN | {"union_id": "a\x00"}, "union_id", "nul_character"),
        (JOIN | {"categories": ["migrant_worker", "\x00"]}, "categories[1]", "nul_character"),
        (JOIN | {"joined_on": "-1.705e-11"}, "joined_on", "iso_format"),
        (JOIN | {"joined_on": 1_700_000_000}, "joined_on", "iso_format"),
        (JOIN | {"joined_on": "0667-06-02"}, "joined_on", "out_of_range"),
        (JOIN | {"channel": "fax"}, "channel", "enum"),
        (JOIN | {"union": "bozhou-pharma"}, "union", "extra_forbidden"),
    ],
)
def test_a_join_refuses_what_postgres_or_the_rules_would(
    body: dict[str, Any], field: str, code: str
) -> None:
    assert refusal(c.JoinUnion, body) == (field, code)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"batch_id": "b1", "rows": [{"idnumber": "x"}]}, "rows.0.idnumber", "extra_forbidden"),
        ({"batch_id": "b1", "rows": []}, "rows", "too_short"),
        ({"batch_id": "b\t1", "rows": [{"name": "王芳"}]}, "batch_id", "string_pattern_mismatch"),
        ({"batch_id": "b1", "rows": [{"name": "王\x00芳"}]}, "rows.0.name", "nul_character"),
    ],
)
def test_a_json_roster_refuses_misspelt_keys_and_bad_batch_ids(
    body: dict[str, Any], field: str, code: str
) -> None:
    found_field, found_code = refusal(c.RosterBatch, body)
    assert found_code == code and found_field.startswith(field.split(".")[0])
    assert found_field.replace("[", ".").replace("]", "") == field


def test_dates_in_bodies_are_iso_text_only() -> None:
    assert c.DissolveOrganisation.model_validate({"dissolved_on": "2026-07-01"}).dissolved_on == (
        date(2026, 7, 1)
    )
    for bad in ("20260701", "2026-7-1", "2026-07-01T00:00:00", 20260701):
        assert refusal(c.DissolveOrganisation, {"dissolved_on": bad})[1] == "iso_format"


class TestDateRange:
    def test_a_period_within_twenty_years_passes(self) -> None:
        date_range(date(2006, 1, 1), date(2026, 1, 1), end_field="to", years=20)
        date_range(date(2026, 1, 1), date(2026, 1, 1), end_field="to", years=20)

    @pytest.mark.parametrize(
        ("start", "end", "code"),
        [
            (date(2026, 1, 2), date(2026, 1, 1), "range_reversed"),
            (date(2006, 1, 1), date(2026, 1, 2), "range_too_long"),
            (date(1900, 1, 1), date(2199, 12, 31), "range_too_long"),
            (date(2004, 2, 29), date(2024, 3, 1), "range_too_long"),  # a leap day's anniversary
        ],
    )
    def test_a_reversed_or_overlong_period_names_the_end(
        self, start: date, end: date, code: str
    ) -> None:
        with pytest.raises(DomainError) as refused:
            date_range(start, end, end_field="to", years=20)
        assert (refused.value.field, refused.value.code) == ("to", code)


def body_limit(app: FastAPI) -> BodyLimit:
    (middleware,) = [m for m in app.user_middleware if m.cls is BodyLimit]
    options: dict[str, Any] = dict(middleware.kwargs)
    return BodyLimit(app, **options)


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/organisations/bozhou-pharma/rosters", 64 * MIB),
        ("/organisations/bozhou-pharma/rosters/batch", 24 * MIB),
        ("/members", MIB),
        ("/organisations/bozhou-pharma/rosters/x", MIB),
    ],
)
def test_rosters_have_room_and_everything_else_the_default(
    app: FastAPI, path: str, limit: int
) -> None:
    assert body_limit(app).limit_for(path) == limit


async def answer(app: FastAPI, method: str, raw_path: bytes, length: int = 0) -> dict[str, Any]:
    """Send a request straight to the ASGI app; the edge answers before any database is needed."""
    path, _, query = raw_path.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"content-length", str(length).encode()), (b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return {"status": start["status"], "headers": dict(start["headers"])}


async def test_a_roster_over_its_limit_is_refused_before_it_is_read(app: FastAPI) -> None:
    over = await answer(app, "POST", b"/organisations/u1/rosters", 64 * MIB + 1)
    assert over["status"] == 413
    assert over["headers"][b"content-type"] == b"application/problem+json"
    assert (await answer(app, "POST", b"/members", MIB + 1))["status"] == 413


@pytest.mark.parametrize(
    "target",
    [b"/members/a%00b", b"/organisations?name=a%00b", b"/organisations/a%0Ab", b"/cards/%09"],
)
async def test_control_characters_in_the_target_are_refused_at_the_edge(
    app: FastAPI, target: bytes
) -> None:
    assert (await answer(app, "GET", target))["status"] == 400


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in openapi["paths"].items()
        for method, op in ops.items()
        if not path.startswith("/webhooks") and "ops" not in op.get("tags", [])
    ]


def test_every_operation_is_described_and_answers_a_named_schema(openapi: dict[str, Any]) -> None:
    for method, path, op in operations(openapi):
        assert op.get("summary") and len(op.get("description", "")) > 80, (method, path)
        success = [s for s in op["responses"] if s.startswith("2")]
        for status in success:
            schema = op["responses"][status]["content"]["application/json"]["schema"]
            assert "$ref" in schema, (method, path, status)


def test_every_json_body_has_an_example(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for method, path, op in operations(openapi):
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        schema = schemas[name]
        has_example = "examples" in schema or any(
            "examples" in p or "default" in p for p in schema.get("properties", {}).values()
        )
        assert has_example, (method, path)


def test_the_roster_upload_tells_hr_what_to_send(openapi: dict[str, Any]) -> None:
    op = openapi["paths"]["/organisations/{org_id}/rosters"]["post"]
    text = op["description"]
    for needed in (
        "身份证号",
        "id_number",
        "姓名",
        "手机号码",
        "入会日期",
        "GBK",
        "GB18030",
        "UTF-8",
        "64 MiB",
        "657,000",
        "batch_id",
        "duplicate",
        "complete",
        "leave the union",
        "GET /rosters/{id}",
        "row 2",
        "docs/rosters.md",
        "docs/examples/roster-example.csv",
    ):
        assert needed in text, needed
    assert set(op["responses"]) >= {"200", "202", "413"}


def test_dates_in_queries_are_iso_dates(openapi: dict[str, Any]) -> None:
    for path, name in [
        ("/organisations/{org_id}/statistics", "from"),
        ("/organisations/{org_id}/statistics", "to"),
        ("/members/{member_id}/standing", "on"),
    ]:
        (param,) = [p for p in openapi["paths"][path]["get"]["parameters"] if p["name"] == name]
        assert param["schema"]["format"] == "date"


def test_organisations_can_be_listed_and_searched(openapi: dict[str, Any]) -> None:
    op = openapi["paths"]["/organisations"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert names >= {"parent_id", "under", "kind", "name", "credit_code", "offset", "limit"}
    page = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page.endswith("/OrganisationPage")
