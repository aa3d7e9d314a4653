"""Union funds' contract without servers: its settings, request bodies, body limits and target
guard, the events it publishes and follows, and that it stands apart from membership."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from services.membership import main as membership
from services.union_funds import commands as c
from services.union_funds.handlers import membership_handlers
from services.union_funds.main import OFFERED, Settings, build
from shared.clock import SystemClock
from shared.edge import BodyLimit
from shared.events import membership as m
from shared.events.catalogue import CATALOGUE, published_by
from shared.inputs import Command

ROOT = Path(__file__).resolve().parents[3]
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return build(Settings())


def test_its_settings_prefix_port_and_role() -> None:
    settings = Settings()
    assert Settings.model_config["env_prefix"] == "GONGHUI_UNION_FUNDS_"
    assert settings.http_port == 8005
    assert (settings.db_schema, settings.events_topic) == ("union_funds", "union_funds.events")
    assert settings.database_url.startswith("postgresql://union_funds:union_funds@")


def test_an_unknown_time_zone_fails_at_start_up() -> None:
    with pytest.raises(ValidationError):
        Settings(timezone="Mars/Olympus")


def test_every_body_of_the_service_is_a_shared_command() -> None:
    bodies = [v for v in vars(c).values() if isinstance(v, type) and issubclass(v, BaseModel)]
    assert bodies and all(issubclass(b, Command) for b in bodies)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"batch_id": "b\x00", "records": [{}]}, "batch_id"),
        ({"batch_id": "b", "records": []}, "records"),
        ({"batch_id": "b", "records": [{}], "extra": 1}, "extra"),
    ],
)
def test_a_batch_body_is_refused_naming_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        c.RemittanceBatch.model_validate(body)
    assert field in str(refused.value)


def test_amounts_are_strict_whole_fen() -> None:
    body = {"reference": "r", "union_id": "u", "period": "2026", "members_covered": 1}
    for amount in ("100", 100.0, 0, 10**15 + 1):
        with pytest.raises(ValidationError):
            c.RecordSubsidy.model_validate(body | {"amount_fen": amount})
    assert c.RecordSubsidy.model_validate(body | {"amount_fen": 100}).amount_fen == 100


def test_every_body_keeps_the_default_limit(app: FastAPI) -> None:
    (middleware,) = [mw for mw in app.user_middleware if mw.cls is BodyLimit]
    limit = BodyLimit(app, **dict(middleware.kwargs))
    for path in ("/remittances/batches", "/subsidies"):
        assert limit.limit_for(path) == MIB


def test_it_offers_what_it_publishes_and_follows_membership_organisations() -> None:
    assert published_by("union_funds") == OFFERED
    assert set(OFFERED) == {
        "gonghui.membership.remittance.matched",  # the names they had in membership
        "gonghui.membership.remittance.unmatched",
        "gonghui.union_funds.subsidy.granted",
    }
    assert all(CATALOGUE[t].source == "gonghui/union_funds" for t in OFFERED)
    assert not set(OFFERED) & set(published_by("membership"))
    assert set(membership_handlers("t", SystemClock())) == {
        m.OrganisationEstablished.type,
        m.OrganisationChanged.type,
        m.OrganisationDissolved.type,
    }


def test_it_imports_nothing_of_membership() -> None:
    for path in (ROOT / "services" / "union_funds").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            assert not any(n.startswith("services.membership") for n in names), path


def test_membership_keeps_no_union_funds() -> None:
    tree = ROOT / "services" / "membership"
    assert not [p.name for p in tree.glob("*.py") if "fund" in p.name or "remitt" in p.name]
    paths = membership.build(membership.Settings()).openapi()["paths"]
    assert not [p for p in paths if p.startswith(("/remittances", "/subsidies"))]
