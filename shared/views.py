"""The base of every answer a service gives.

A view is read straight off a domain object or a row by attribute name
(``ClaimView.model_validate(claim)``), so the common case needs no hand-written ``of()`` that
copies field after field; a view writes code only for what it derives or renames.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class View(BaseModel):
    model_config = ConfigDict(from_attributes=True)
