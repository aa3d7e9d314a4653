"""The check-in secret keys every session's code: production refuses the development one."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from services.training.main import DEVELOPMENT_CHECK_IN_SECRET, Settings

PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "database_url": "postgresql://training:s3cret-from-vault@db:5432/gonghui",
    "credentials_key": Fernet.generate_key().decode(),
}


def test_production_refuses_the_development_check_in_secret() -> None:
    with pytest.raises(ValidationError, match="check_in_secret is the development secret"):
        Settings(**PRODUCTION)
    assert Settings(**PRODUCTION, check_in_secret="x" * 48).check_in_secret == "x" * 48


def test_development_runs_with_its_default_but_no_secret_is_too_short() -> None:
    assert Settings().check_in_secret == DEVELOPMENT_CHECK_IN_SECRET
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(check_in_secret="short")


def test_an_unknown_time_zone_fails_at_start_up() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        Settings(timezone="Mars/Olympus_Mons")
