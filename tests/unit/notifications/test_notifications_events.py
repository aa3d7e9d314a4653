"""The notifications service's events are in the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events.base import CATALOGUE
from shared.events.notifications import (
    SOURCE,
    BroadcastCompleted,
    MessageDelivered,
    RecipientUnreachable,
)


def test_the_events_are_catalogued_under_the_notifications_source() -> None:
    for cls in (RecipientUnreachable, MessageDelivered, BroadcastCompleted):
        assert CATALOGUE[cls.type] is cls
        assert cls.source == SOURCE == "gonghui/notifications"
        assert cls.type.startswith("gonghui.notifications.")


def test_subjects_keep_each_members_and_broadcasts_events_in_order() -> None:
    unreachable = RecipientUnreachable(
        member_id="m-1", openid_masked="oABC…WXYZ", errcode=43004, reason="user unfollowed"
    )
    assert unreachable.subject() == "m-1"
    completed = BroadcastCompleted(
        broadcast_id="b-1",
        segment="everyone",
        queued=3,
        sent=2,
        failed=1,
        skipped=0,
        completed_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert completed.subject() == "b-1"


def test_readers_ignore_fields_they_do_not_know() -> None:
    delivered = MessageDelivered.model_validate(
        {
            "member_id": "m-1",
            "cause_event_id": "evt-1",
            "rule": "joined",
            "category": "membership",
            "template_id": "TPL",
            "from_the_future": True,
        }
    )
    assert delivered.msgid is None
