"""Base class and registry for every event type in the catalogue.

Each event type is a pydantic model with a class-level ``type`` (CloudEvents type, e.g.
``gonghui.membership.member.joined``) and ``version`` (schema version, an integer). Evolution is
additive only: a new optional field keeps the version; anything else is a new type. Reading is
tolerant: fields this code does not know are ignored, so an older consumer reads a newer producer.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict


class EventData(BaseModel):
    """The data of one domain event. Subclasses set ``type``, ``version`` and ``source``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: ClassVar[str]
    version: ClassVar[int] = 1
    source: ClassVar[str]

    def subject(self) -> str:
        """The aggregate id the event is about: the Kafka key, so its events stay in order."""
        raise NotImplementedError


CATALOGUE: dict[str, type[EventData]] = {}

E = TypeVar("E", bound=type[EventData])


def event(cls: E) -> E:
    """Class decorator: enter an event type into the one catalogue."""
    if cls.type in CATALOGUE:
        raise ValueError(f"event type {cls.type} is already in the catalogue")
    CATALOGUE[cls.type] = cls
    return cls
