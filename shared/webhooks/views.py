"""What the webhook administration API answers with."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class Subscription(BaseModel):
    id: uuid.UUID
    app_id: str
    url: str
    event_types: list[str]
    created_at: datetime
    consecutive_failures: int


class CreatedSubscription(Subscription):
    secret: str = Field(description="Signs the deliveries; shown only now, keep it safe.")


class Delivery(BaseModel):
    id: int
    subscription_id: uuid.UUID
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
