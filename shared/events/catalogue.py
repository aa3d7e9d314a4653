"""The one catalogue of every event type: importing this module registers them all."""

from shared.events import membership
from shared.events.base import CATALOGUE, EventData, event

__all__ = ["CATALOGUE", "EventData", "event", "membership"]
