"""rules.yaml as the running service sees it: reloaded when the file changes, never half-applied.

``current()`` is called for every event, so it looks at the file's mtime at most once per
``check_seconds``. A changed file is loaded whole with ``load_rules``; if it has problems they are
logged (every one of them) and the rules already in force stay, until the file changes again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from services.notifications.rules import RulesError, RuleSet, load_rules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejected:
    """The last version of the file that was refused, and why."""

    mtime_ns: int
    problems: tuple[str, ...]


class LiveRules:
    def __init__(self, path: Path, check_seconds: float = 1.0) -> None:
        self.path = path
        self.check_seconds = check_seconds
        # A service that cannot read its rules at start-up must not start: raise here.
        self._stamp = self._mtime()
        self._rules = load_rules(path.read_text(encoding="utf-8"))
        self.loaded_at = time.time()
        self.rejected: Rejected | None = None
        self._checked = time.monotonic()

    def _mtime(self) -> int:
        return self.path.stat().st_mtime_ns

    def current(self) -> RuleSet:
        now = time.monotonic()
        if now - self._checked >= self.check_seconds:
            self._checked = now
            self._reload_if_changed()
        return self._rules

    def _reload_if_changed(self) -> None:
        try:
            stamp = self._mtime()
        except OSError as e:
            log.error(
                "rules file %s cannot be read (%s); keeping version %s",
                self.path,
                e,
                self._rules.version,
            )
            return
        if stamp == self._stamp or (self.rejected and self.rejected.mtime_ns == stamp):
            return
        try:
            rules = load_rules(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            self._refuse(stamp, (f"cannot read the file: {e}",))
            return
        except RulesError as e:
            self._refuse(stamp, e.problems)
            return
        log.info(
            "rules reloaded: version %s -> %s (%d rules)",
            self._rules.version,
            rules.version,
            len(rules.rules),
        )
        self._rules, self._stamp, self.rejected = rules, stamp, None
        self.loaded_at = time.time()

    def _refuse(self, stamp: int, problems: tuple[str, ...]) -> None:
        self.rejected = Rejected(stamp, problems)
        log.error(
            "rules file %s was changed but is refused; version %s stays in force:\n%s",
            self.path,
            self._rules.version,
            "\n".join(f"- {p}" for p in problems),
        )
