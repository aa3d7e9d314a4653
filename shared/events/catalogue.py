"""The one catalogue of every event type: importing this module registers them all."""

from shared.events import membership, mutual_aid, notifications, training, union_funds
from shared.events.base import CATALOGUE, EventData, event

__all__ = [
    "CATALOGUE",
    "EventData",
    "event",
    "membership",
    "mutual_aid",
    "notifications",
    "training",
    "union_funds",
]


def published_by(service: str) -> list[str]:
    """The event types a service publishes (what department systems may subscribe to)."""
    source = f"gonghui/{service}"
    return sorted(t for t, model in CATALOGUE.items() if model.source == source)
