"""Events the notifications service publishes: what became of the messages it was asked to send."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from shared.events.base import EventData, event

SOURCE = "gonghui/notifications"


@event
class RecipientUnreachable(EventData):
    """WeChat says this member cannot be reached (unfollowed, refused, invalid openid): nothing is
    sent to them until they bind again, so other channels (SMS, a letter) can take over."""

    type: ClassVar[str] = "gonghui.notifications.recipient.unreachable"
    source: ClassVar[str] = SOURCE
    member_id: str
    # Only a masked openid leaves the service: enough to match logs, not to address the member.
    openid_masked: str
    errcode: int
    reason: str

    def subject(self) -> str:
        return self.member_id


@event
class MessageDelivered(EventData):
    """WeChat accepted a message for a member (and, once reported, delivered it)."""

    type: ClassVar[str] = "gonghui.notifications.message.delivered"
    source: ClassVar[str] = SOURCE
    member_id: str
    # The id of the event that caused the message, so a producer can see its member was told.
    cause_event_id: str
    rule: str
    category: str
    template_id: str
    msgid: int | None = None

    def subject(self) -> str:
        return self.member_id


@event
class BroadcastCompleted(EventData):
    type: ClassVar[str] = "gonghui.notifications.broadcast.completed"
    source: ClassVar[str] = SOURCE
    broadcast_id: str
    segment: str
    queued: int
    sent: int
    failed: int
    skipped: int
    completed_at: datetime

    def subject(self) -> str:
        return self.broadcast_id
