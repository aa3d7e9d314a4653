"""The membership service's settings: apart from its wiring, so a roster job's own process
(:mod:`services.membership.roster_child`) reads them without loading the web app."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service: ClassVar[str] = "membership"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_MEMBERSHIP_", extra="ignore")
    http_port: int = 8001
    # Where submitted rosters wait while their job runs (kept across restarts to resume). The
    # API processes and the one running the jobs must see the same directory.
    roster_dir: str = str(Path(tempfile.gettempdir()) / "gonghui-rosters")
    roster_poll_seconds: float = 5.0
