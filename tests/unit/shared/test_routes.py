"""The action pattern: commands carry what their route fills, and never take it from the body."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ValidationError

from shared.inputs import Command, FromRoute
from shared.routes import action


class Approve(Command):
    claim_id: FromRoute = ""
    approved_by: FromRoute = ""
    officer: str


class Answer(BaseModel):
    claim_id: str


async def approve(cmd: Approve, uow: Any) -> None:
    return None


async def answer(pool: Any, claim_id: str, caller: Any) -> Answer:
    return Answer(claim_id=claim_id)


def test_route_fields_stay_out_of_the_body_schema() -> None:
    assert Approve.route_fields() == {"claim_id", "approved_by"}
    assert set(Approve.model_json_schema()["properties"]) == {"officer"}


def test_a_body_naming_a_route_field_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        Approve.model_validate({"officer": "Li", "claim_id": "C-1"})
    assert refused.value.errors()[0]["type"] == "extra_forbidden"


def test_about_fills_only_route_fields() -> None:
    cmd = Approve(officer="Li").about(claim_id="C-1", approved_by="finance-app")
    assert (cmd.claim_id, cmd.approved_by, cmd.officer) == ("C-1", "finance-app", "Li")
    with pytest.raises(TypeError):
        cmd.about(officer="Wang")


def declare(
    path: str, command: type[Command] = Approve, handler: Any = approve, **extra: Any
) -> APIRouter:
    router = APIRouter()
    action(
        router,
        path,
        command=command,
        handler=handler,
        uow=Any,
        scope="claims:review",
        answer=answer,
        response_model=Answer,
        summary="Approve",
        description="Approve a claim.",
        tags=["review"],
        **extra,
    )
    return router


def test_an_action_names_one_thing_that_its_command_knows() -> None:
    route = declare("/claims/{claim_id}/approve", actor_field="approved_by").routes[0]
    assert route.name == "approve"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="names the thing"):
        declare("/claims/approve")
    with pytest.raises(ValueError, match="no field 'x'"):
        declare("/claims/{claim_id}/{x}/approve")
    with pytest.raises(ValueError, match="no field 'case_id'"):
        declare("/claims/{case_id}/approve")
    with pytest.raises(ValueError, match="no field 'officer_id'"):
        declare("/claims/{claim_id}/approve", actor_field="officer_id")


class Publish(Command):
    plan_id: FromRoute = ""


async def publish(cmd: Publish, uow: Any) -> None:
    return None


def test_a_command_the_route_fills_whole_takes_no_body() -> None:
    (bodiless,) = declare("/plans/{plan_id}/publish", Publish, publish, status_code=201).routes
    (bodied,) = declare("/claims/{claim_id}/approve", status_code=201).routes
    assert bodiless.body_field is None and bodied.body_field is not None  # type: ignore[attr-defined]
    assert [bodiless.status_code, bodied.status_code] == [201, 201]  # type: ignore[attr-defined]


class Cancel(Command):
    class_id: FromRoute = ""
    member_id: FromRoute = ""
    reason: str


async def cancel(cmd: Cancel, uow: Any) -> None:
    return None


def test_an_action_may_name_its_thing_by_several_ids() -> None:
    (route,) = declare("/classes/{class_id}/enrolments/{member_id}/cancel", Cancel, cancel).routes
    assert [p.name for p in route.dependant.path_params] == ["class_id", "member_id"]  # type: ignore[attr-defined]
