"""The events WeChat pushes to the account's server: delivery reports and follow changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

TEMPLATE_SEND_JOB_FINISH = "TEMPLATESENDJOBFINISH"


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """An event WeChat pushes to the account's server URL as XML."""

    event: str  # TEMPLATESENDJOBFINISH | subscribe | unsubscribe
    openid: str
    create_time: int
    msgid: int | None = None
    status: str | None = None


EventSink = Callable[[CallbackEvent], None]
