"""Sessions of a class, and the check-in code a member types or scans to record attendance.

The code is HMAC(secret, session id) written in the unambiguous alphabet: staff can show it (or a
QR code of it) at the venue, and the service can check it without storing anything. It is valid
from ``CHECK_IN_OPENS_BEFORE`` (30 minutes) before the session starts until the session ends, so a
member can check in on arrival but not from home the next day. A code shown in the room can still
be passed on to someone absent; staff check-in exists for when that matters.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.training.alphabet import encode, normalise
from shared.errors import DomainError, NotFound

CHECK_IN_OPENS_BEFORE = timedelta(minutes=30)
CODE_LENGTH = 6
_MIN_SECRET_BYTES = 16


def require_aware(field: str, moment: datetime) -> None:
    """Naive datetimes are refused: a class in Bozhou and a server in UTC must agree on 'now'."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DomainError(field, "naive_datetime", f"{field} needs a time zone")


@dataclass(frozen=True)
class Session:
    session_id: str
    starts_at: datetime
    ends_at: datetime
    venue: str | None = None
    online_link: str | None = None
    # When its confirmed members were reminded; None until then.
    reminded_at: datetime | None = None

    def __post_init__(self) -> None:
        require_aware("starts_at", self.starts_at)
        require_aware("ends_at", self.ends_at)
        if self.ends_at <= self.starts_at:
            raise DomainError("ends_at", "before_start", "a session must end after it starts")
        if not self.venue and not self.online_link:
            raise DomainError("venue", "required", "a session needs a venue or an online link")

    @property
    def check_in_opens_at(self) -> datetime:
        return self.starts_at - CHECK_IN_OPENS_BEFORE

    def has_ended(self, now: datetime) -> bool:
        return now >= self.ends_at

    def due_for_reminder(self, now: datetime, ahead: timedelta) -> bool:
        """Not reminded yet, and starting within ``ahead`` (a session already begun is not)."""
        return self.reminded_at is None and now < self.starts_at <= now + ahead


class Timetable:
    """A class's sessions in the order they take place: when it starts, ends, and who is due a
    reminder."""

    def __init__(self, sessions: Iterable[Session]) -> None:
        self.sessions: list[Session] = sorted(sessions, key=lambda s: s.starts_at)
        if not self.sessions:
            raise DomainError("sessions", "required", "a class needs at least one session")
        if len({s.session_id for s in self.sessions}) != len(self.sessions):
            raise DomainError("sessions", "duplicate_session", "session ids must be unique")

    @property
    def first(self) -> Session:
        return self.sessions[0]

    @property
    def starts_at(self) -> datetime:
        return self.first.starts_at

    @property
    def ends_at(self) -> datetime:
        return max(s.ends_at for s in self.sessions)

    def next_start(self, now: datetime) -> datetime:
        """When the member should come: the next session's start, or the first's if all are past."""
        upcoming = [s.starts_at for s in self.sessions if s.starts_at >= now]
        return min(upcoming, default=self.starts_at)

    def has_ended(self, now: datetime) -> bool:
        return now >= self.ends_at

    def session(self, session_id: str) -> Session:
        for session in self.sessions:
            if session.session_id == session_id:
                return session
        raise NotFound("session_id", "unknown_session", f"the class has no session {session_id}")

    def remind(self, now: datetime, ahead: timedelta) -> list[Session]:
        """The sessions due a reminder, marked reminded at ``now`` (each is reminded once)."""
        due = [s for s in self.sessions if s.due_for_reminder(now, ahead)]
        self.sessions = [replace(s, reminded_at=now) if s in due else s for s in self.sessions]
        return due


def session_code(secret: bytes, session_id: str, length: int = CODE_LENGTH) -> str:
    """The check-in code of a session: the same every time for the same secret and session."""
    if len(secret) < _MIN_SECRET_BYTES:
        raise ValueError(f"the check-in secret must be at least {_MIN_SECRET_BYTES} bytes")
    if not 6 <= length <= 8:
        raise ValueError("a check-in code has 6 to 8 characters")
    # The prefix keeps these MACs apart from anything else the same secret might sign.
    digest = hmac.new(secret, b"gonghui.training.check-in:" + session_id.encode(), hashlib.sha256)
    # 64 bits reduced to 31**8 (< 2**40) characters: the bias is far below anything guessable.
    return encode(int.from_bytes(digest.digest()[:8], "big"), length)


def check_session_code(secret: bytes, session: Session, code: str, now: datetime) -> None:
    """Raise a DomainError on ``code`` unless it is this session's code and the session is open."""
    expected = session_code(secret, session.session_id)
    if not hmac.compare_digest(normalise(code).encode(), expected.encode()):
        raise DomainError("code", "wrong_code", "this is not the code of this session")
    if now < session.check_in_opens_at:
        raise DomainError(
            "code",
            "code_not_yet_valid",
            f"check-in opens at {session.check_in_opens_at.isoformat()}",
        )
    if now > session.ends_at:
        raise DomainError("code", "code_expired", "the session is over: ask staff to record it")
