"""What the simulated account counted: calls accepted and refused, tokens, delivery statuses,
events pushed. Exact even when the message log drops old messages."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Stats:
    token_fetches: int = 0
    stable_token_fetches: int = 0
    stable_token_force_refreshes: int = 0
    template_sends_accepted: int = 0
    subscribe_sends_accepted: int = 0
    duplicates_suppressed: int = 0
    rejected: Counter[int] = field(default_factory=Counter)
    rejected_by_path: dict[str, Counter[int]] = field(default_factory=dict)
    delivery_status: Counter[str] = field(default_factory=Counter)
    events_emitted: int = 0
    # When the first and the last accepted send arrived: the pace of a run longer than the
    # message log keeps.
    first_send_at: float | None = None
    last_send_at: float | None = None

    def sent_at(self, now: float) -> None:
        if self.first_send_at is None:
            self.first_send_at = now
        self.last_send_at = now

    def reject(self, path: str, errcode: int) -> None:
        self.rejected[errcode] += 1
        by_path = self.rejected_by_path.get(path)
        if by_path is None:
            by_path = self.rejected_by_path[path] = Counter()
        by_path[errcode] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "sends_accepted": self.template_sends_accepted + self.subscribe_sends_accepted,
            "template_sends_accepted": self.template_sends_accepted,
            "subscribe_sends_accepted": self.subscribe_sends_accepted,
            "duplicates_suppressed": self.duplicates_suppressed,
            "rejected_total": sum(self.rejected.values()),
            "rejected": {str(k): v for k, v in sorted(self.rejected.items())},
            "rejected_by_path": {
                path: {str(k): v for k, v in sorted(codes.items())}
                for path, codes in sorted(self.rejected_by_path.items())
            },
            "token_fetches": self.token_fetches,
            "stable_token_fetches": self.stable_token_fetches,
            "stable_token_force_refreshes": self.stable_token_force_refreshes,
            "delivery_status": dict(self.delivery_status),
            "events_emitted": self.events_emitted,
            "first_send_at": self.first_send_at,
            "last_send_at": self.last_send_at,
        }
