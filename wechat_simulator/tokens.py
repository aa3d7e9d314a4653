"""Access tokens: ``/cgi-bin/token`` (each fetch supersedes the last after an overlap) and
``/cgi-bin/stable_token`` (the same token until near its expiry; ``force_refresh`` limited), and
checking the token a call carries. Pure: time comes in as ``now``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

from . import errors as e
from .config import SimulatorConfig
from .errors import WeChatError
from .quotas import DAY, DailyCount

TokenKind = Literal["access", "stable"]


@dataclass(slots=True)
class TokenRecord:
    token: str
    kind: TokenKind
    issued_at: float
    # Natural end of life: after it, 42001.
    expires_at: float
    # Earlier end when superseded (end of the 5-minute overlap) or force-refreshed: after it, 40001.
    invalid_after: float

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "access_token": self.token,
            "kind": self.kind,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "invalid_after": self.invalid_after,
            "valid": now < self.invalid_after and now < self.expires_at,
        }


def check_credentials(appid: Any, secret: Any, grant_type: Any, config: SimulatorConfig) -> None:
    """The checks both token calls make, in WeChat's order."""
    if grant_type != "client_credential":
        raise WeChatError(e.INVALID_GRANT_TYPE)
    if not appid:
        raise WeChatError(e.APPID_MISSING)
    if not secret:
        raise WeChatError(e.APPSECRET_MISSING)
    if appid != config.appid:
        raise WeChatError(e.INVALID_APPID)
    if secret != config.secret:
        code = config.wrong_secret_errcode
        raise WeChatError(code, e.errmsg_for(code))


class Tokens:
    def __init__(self) -> None:
        self._issued: dict[str, TokenRecord] = {}
        self._current_access: TokenRecord | None = None
        self._current_stable: TokenRecord | None = None
        self._fetches_today = DailyCount()
        self._forces_today = DailyCount()
        self._last_force: float | None = None

    def revoke_all(self) -> None:
        """A new appid or secret: no token issued before works any more."""
        self._issued.clear()
        self._current_access = None
        self._current_stable = None

    def fetch_access(self, now: float, config: SimulatorConfig) -> TokenRecord:
        """A new ``/cgi-bin/token`` token; 45009 past the daily limit."""
        fetched = self._fetches_today.today(now)
        if config.token_daily_limit and fetched >= config.token_daily_limit:
            raise WeChatError(e.DAILY_QUOTA)
        self._fetches_today.used += 1
        previous = self._current_access
        if previous is not None:
            # The old token keeps working only through the overlap: several processes that
            # each fetch their own keep invalidating one another.
            previous.invalid_after = min(previous.invalid_after, now + config.token_overlap_seconds)
        record = self._current_access = self._issue("access", now, config)
        return record

    def fetch_stable(self, now: float, config: SimulatorConfig, *, force: bool) -> TokenRecord:
        current = self._current_stable
        if force:
            self._check_force_allowed(now, config)
            self._forces_today.used += 1
            self._last_force = now
            if current is not None:
                current.invalid_after = min(current.invalid_after, now)
            current = self._current_stable = self._issue("stable", now, config)
        elif (
            current is None
            or now >= current.invalid_after
            or current.expires_at - now <= config.stable_renew_before_seconds
        ):
            # Renewed ahead of expiry; the old one stays valid until its own expiry.
            current = self._current_stable = self._issue("stable", now, config)
        return current

    def _check_force_allowed(self, now: float, config: SimulatorConfig) -> None:
        if self._forces_today.today(now) >= config.stable_force_daily_limit:
            raise WeChatError(e.DAILY_QUOTA)
        last = self._last_force
        if last is not None and now - last < config.stable_force_min_interval_seconds:
            raise WeChatError(e.MINUTE_QUOTA)

    def check(self, access_token: str, now: float) -> None:
        """40014 for a token never issued, 42001 past its expiry, 40001 once superseded."""
        record = self._issued.get(access_token)
        if record is None:
            raise WeChatError(e.INVALID_ACCESS_TOKEN)
        if now >= record.expires_at:
            raise WeChatError(e.ACCESS_TOKEN_EXPIRED)
        if now >= record.invalid_after:
            # Superseded (past the overlap) or force-refreshed away: "not latest".
            raise WeChatError(e.INVALID_CREDENTIAL)

    def to_json(self, now: float) -> list[dict[str, Any]]:
        return [record.to_json(now) for record in self._issued.values()]

    def _issue(self, kind: TokenKind, now: float, config: SimulatorConfig) -> TokenRecord:
        self._prune(now)
        # Real tokens are ~150 opaque characters; clients must store at least 512.
        token = f"{kind[0]}{secrets.token_urlsafe(96)}"
        expires_at = now + config.token_ttl_seconds
        record = TokenRecord(token, kind, now, expires_at, expires_at)
        self._issued[token] = record
        return record

    def _prune(self, now: float) -> None:
        if len(self._issued) < 256:
            return
        # Keep dead tokens for a day so a late caller still gets 42001/40001, not 40014.
        horizon = now - DAY
        for token in [t for t, r in self._issued.items() if r.invalid_after < horizon]:
            del self._issued[token]
