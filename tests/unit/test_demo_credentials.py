"""The demo's credentials (deploy/demo.py) against the scopes the services' routes declare: staff
hold every one, and each department role holds only scopes its services declare. No servers."""

from __future__ import annotations

import importlib
import re
from functools import cache

import pytest

from deploy import demo
from shared.auth import credentials

# Routes that check the caller's department as well as the scope: that department's role must
# hold the scope, or the demo cannot walk its flow (staff hold it too, but are refused).
ROOT = demo.ROOT
SCOPE_IN_SOURCE = re.compile(r'(?:require_scope\(|^[A-Z_]+ = )"([a-z_]+:[a-z_]+)"', re.MULTILINE)
DEPARTMENT_ONLY = {
    "remittances:submit": "tax",
    "subsidies:write": "finance",
    "backstop:grant": "finance",
}


@cache
def declared(service: str) -> frozenset[str]:
    """The scopes the service's OpenAPI document lists in its operations' security."""
    main = importlib.import_module(f"services.{service}.main")
    paths = main.build(main.Settings()).openapi()["paths"]
    return frozenset(
        scope
        for operations in paths.values()
        for operation in operations.values()
        for requirement in operation.get("security", [])
        for scopes in requirement.values()
        for scope in scopes
    )


def named_in_source() -> set[str]:
    """Scopes written in the code that guards routes (``require_scope("a:b")`` or a constant
    ``NAME = "a:b"`` beside it): also catches a route left out of the OpenAPI document."""
    found: set[str] = set()
    for path in [*(ROOT / "services").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]:
        text = path.read_text()
        if "require_scope(" in text and "def require_scope" not in text:
            found.update(SCOPE_IN_SOURCE.findall(text))
    return found


@pytest.mark.parametrize("service", demo.SERVICES)
def test_staff_hold_every_scope_their_service_declares(service: str) -> None:
    assert declared(service), f"{service} declares no scope: the walk found nothing"
    assert set(demo.wanted_in(service)[None].scopes) == declared(service)


def test_staff_hold_the_scopes_the_issue_found_missing() -> None:
    staff = {s: set(demo.wanted_in(s)[None].scopes) for s in demo.SERVICES}
    assert {"webhooks:manage", "organisations:write", "roster:submit"} <= staff["membership"]
    assert {"webhooks:manage", "remittances:submit", "subsidies:write"} <= staff["union_funds"]
    assert {"webhooks:manage", "backstop:grant"} <= staff["mutual_aid"]


def test_every_declared_scope_is_held_by_staff_and_each_department_scope_is_declared() -> None:
    for role, r in demo.ROLES.items():
        assert r.department in credentials.DEPARTMENTS, role
        assert r.department != "federation", f"{role}: staff are not a department role"
        for service, scopes in r.scopes.items():
            assert service in demo.SERVICES, f"{role}: no demo service {service}"
            assert scopes, f"{role} holds nothing in {service}"
            assert set(scopes) <= declared(service), f"{role} in {service}: undeclared scopes"
    every = set().union(*(declared(s) for s in demo.SERVICES))
    held = set().union(*(demo.wanted_in(s)[None].scopes for s in demo.SERVICES))
    assert every == held
    assert named_in_source() <= held, "a guarded route's scope is missing from its OpenAPI"


def test_department_only_scopes_are_held_by_their_department() -> None:
    for scope, department in DEPARTMENT_ONLY.items():
        holders = [
            role
            for role, r in demo.ROLES.items()
            if r.department == department and any(scope in s for s in r.scopes.values())
        ]
        assert holders, f"no {department} role holds {scope}"


def test_the_four_department_roles_and_employer_hr_is_bound_to_one_demo_union() -> None:
    assert set(demo.ROLES) == {"hr", "tax", "finance", "employer-hr"}
    employer = demo.ROLES["employer-hr"]
    assert employer.department == "employer_hr"
    assert employer.organisations is not None and len(employer.organisations) == 1
    unions = {o["id"]: o for o in demo.ORGANISATIONS}
    (union,) = employer.organisations
    assert union in unions and "employer" in unions[union]
    others = [r for role, r in demo.ROLES.items() if role != "employer-hr"]
    assert all(r.organisations is None for r in others)


def test_wanted_credentials_per_service_follow_the_role_table() -> None:
    for service in demo.SERVICES:
        roles = {role for role in demo.wanted_in(service) if role is not None}
        assert roles == {role for role, r in demo.ROLES.items() if service in r.scopes}
