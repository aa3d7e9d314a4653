"""Faults a test injects through ``/_sim/faults``: latency, system errors, a refused credential,
errors forced for an openid, and failed deliveries. Pure, no I/O (latency is slept by the app)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors as e
from .config import QUOTA_PATHS
from .errors import WeChatError

DEFAULT_FAULT_PATHS = frozenset(QUOTA_PATHS)


@dataclass(slots=True)
class ForcedError:
    errcode: int
    errmsg: str | None = None
    # None: every send to the openid fails; else this many more times.
    remaining: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "errmsg": self.errmsg, "remaining": self.remaining}


@dataclass(slots=True)
class Faults:
    latency_ms: float = 0.0
    # The next N calls to ``system_error_paths`` answer -1 system error.
    system_errors: int = 0
    system_error_paths: frozenset[str] = DEFAULT_FAULT_PATHS
    # Every call that carries an access_token answers 40001: a client must not loop on it.
    persistent_40001: bool = False
    openid_errors: dict[str, ForcedError] = field(default_factory=dict)
    # The next N accepted template sends report "failed: system failed" instead of success.
    delivery_failures: int = 0
    # Template sends to these openids always report "failed: system failed".
    delivery_fail_openids: set[str] = field(default_factory=set)

    def system_error(self, path: str) -> None:
        """-1 for this call if system errors are pending for its path."""
        if self.system_errors > 0 and (
            path in self.system_error_paths or "*" in self.system_error_paths
        ):
            self.system_errors -= 1
            raise WeChatError(e.SYSTEM_ERROR)

    def forced_error(self, openid: str) -> None:
        """The error forced for sends to ``openid``, if any (used up when counted)."""
        forced = self.openid_errors.get(openid)
        if forced is None:
            return
        if forced.remaining is not None:
            forced.remaining -= 1
            if forced.remaining <= 0:
                del self.openid_errors[openid]
        raise WeChatError(forced.errcode, forced.errmsg)

    def fails_delivery(self, openid: str) -> bool:
        """Whether an accepted send to ``openid`` is to be reported as failed."""
        if self.delivery_failures > 0:
            self.delivery_failures -= 1
            return True
        return openid in self.delivery_fail_openids

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "system_errors": self.system_errors,
            "system_error_paths": sorted(self.system_error_paths),
            "persistent_40001": self.persistent_40001,
            "openid_errors": {k: v.to_json() for k, v in self.openid_errors.items()},
            "delivery_failures": self.delivery_failures,
            "delivery_fail_openids": sorted(self.delivery_fail_openids),
        }
