"""Session reminders: confirmed members hear the day before each session, once a session."""

from __future__ import annotations

from datetime import timedelta

from shared.events.training import ClassReminder

DAY = timedelta(hours=24)


def reminded(cls) -> list[tuple[str, str]]:
    return [(e.member_id, e.session_id) for e in cls.events if isinstance(e, ClassReminder)]


def test_confirmed_members_are_reminded_once_per_session_a_day_ahead(build):
    cls = build.training_class(capacity=2)
    for n in range(3):  # m2 is waitlisted: no seat to come to
        cls.enrol(build.member(n), build.now)
    cls.events.clear()
    first, second = cls.sessions[0], cls.sessions[1]

    assert cls.remind(first.starts_at - DAY - timedelta(minutes=1), DAY) == []
    due = cls.remind(first.starts_at - DAY, DAY)

    assert [s.session_id for s in due] == [first.session_id]
    assert reminded(cls) == [("m0", first.session_id), ("m1", first.session_id)]
    event = cls.events[0]
    assert isinstance(event, ClassReminder)
    assert (event.starts_at, event.venue) == (first.starts_at, first.venue)
    assert cls.sessions[0].reminded_at == first.starts_at - DAY

    cls.events.clear()
    assert cls.remind(first.starts_at - timedelta(hours=1), DAY) == []  # once per session
    assert reminded(cls) == []
    assert [s.session_id for s in cls.remind(second.starts_at - DAY, DAY)] == [second.session_id]
    assert reminded(cls) == [("m0", second.session_id), ("m1", second.session_id)]


def test_a_session_already_begun_gets_no_reminder(build):
    cls = build.training_class()
    cls.enrol(build.member(0), build.now)
    cls.events.clear()
    first = cls.sessions[0]

    due = cls.remind(first.starts_at, DAY * 30)

    assert [s.session_id for s in due] == [s.session_id for s in cls.sessions[1:]]
    assert first.session_id not in {session_id for _, session_id in reminded(cls)}
    assert cls.sessions[0].reminded_at is None
