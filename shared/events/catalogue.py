"""The one catalogue of every event type: importing this module registers them all."""

from shared.events import membership, mutual_aid, notifications, training
from shared.events.base import CATALOGUE, EventData, event

__all__ = [
    "CATALOGUE",
    "EventData",
    "event",
    "membership",
    "mutual_aid",
    "notifications",
    "training",
]
