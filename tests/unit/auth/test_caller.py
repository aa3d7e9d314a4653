"""Caller's organisation limit, credential secrets at rest, the production key check."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from shared.auth import Caller
from shared.auth.audit import safe_app_id
from shared.auth.credentials import decrypt, encrypt, new_app_id
from shared.errors import Forbidden
from shared.settings import DEVELOPMENT_CREDENTIALS_KEY, ServiceSettings


def caller(organisations: frozenset[str] | None) -> Caller:
    return Caller(
        app_id="employer-hr-0123456789ab",
        name="Acme HR",
        department="employer_hr",
        scopes=frozenset({"rosters:submit"}),
        organisations=organisations,
    )


def test_unlimited_caller_may_act_for_any_organisation() -> None:
    caller(None).ensure_organisation("u-anything")


def test_limited_caller_may_act_for_its_own_organisations_only() -> None:
    limited = caller(frozenset({"u-acme", "u-acme-2"}))
    limited.ensure_organisation("u-acme-2")
    with pytest.raises(Forbidden) as refused:
        limited.ensure_organisation("u-other", field="union_id")
    assert refused.value.field == "union_id"
    assert refused.value.status == 403


def test_an_empty_list_allows_nothing() -> None:
    with pytest.raises(Forbidden):
        caller(frozenset()).ensure_organisation("u-acme")


def test_caller_is_immutable() -> None:
    with pytest.raises(AttributeError):
        caller(None).scopes = frozenset({"everything"})  # type: ignore[misc]


def test_secrets_round_trip_encrypted_and_need_the_key() -> None:
    token = encrypt(DEVELOPMENT_CREDENTIALS_KEY, "the-secret")
    assert "the-secret" not in token
    assert decrypt(DEVELOPMENT_CREDENTIALS_KEY, token) == "the-secret"
    with pytest.raises(RuntimeError, match="credentials_key"):
        decrypt(Fernet.generate_key().decode(), token)


class Probe(ServiceSettings):
    service = "probe"


def test_production_refuses_the_development_credentials_key() -> None:
    prod_db = "postgresql://probe:s3cure@db:5432/gonghui"
    with pytest.raises(ValueError, match="credentials_key"):
        Probe(environment="production", database_url=prod_db)
    key = Fernet.generate_key().decode()
    assert Probe(environment="production", database_url=prod_db, credentials_key=key)


def test_a_malformed_key_fails_at_start_up() -> None:
    with pytest.raises(ValueError):
        Probe(credentials_key="not-a-fernet-key")


def test_audit_keeps_only_app_ids_of_the_issued_shape() -> None:
    issued = new_app_id("employer_hr")
    assert safe_app_id(issued) == issued
    assert safe_app_id("110105194912310021") == "(unrecognised)"  # an ID number as the app id
    assert safe_app_id("13800138000") == "(unrecognised)"
    assert safe_app_id(None) is None


def test_the_key_can_be_rotated_with_a_new_and_an_old_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored_before = encrypt(old, "the-secret")
    both = f"{new},{old}"
    assert decrypt(both, stored_before) == "the-secret"
    stored_after = encrypt(both, "the-secret")
    assert decrypt(new, stored_after) == "the-secret"  # new writes use the first key
    with pytest.raises(ValueError, match="credentials_key"):
        Probe(
            environment="production",
            database_url="postgresql://probe:s3cure@db:5432/gonghui",
            credentials_key=f"{new},{DEVELOPMENT_CREDENTIALS_KEY}",
        )
