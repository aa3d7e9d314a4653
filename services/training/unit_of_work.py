"""The training service's unit of work: its repositories, each handing what it loads to track."""

from __future__ import annotations

from services.training.repository import (
    Certificates,
    Classes,
    Courses,
    Members,
    ViewingReports,
)
from services.training.watched_minutes import WatchedMinutes
from shared.uow import UnitOfWork


class TrainingUnitOfWork(UnitOfWork):
    members: Members
    courses: Courses
    classes: Classes
    certificates: Certificates
    viewing: ViewingReports
    watched: WatchedMinutes
    # The key of the check-in codes, set by ``main.build``'s factory (handlers check codes with it).
    check_in_secret: bytes = b""

    def on_enter(self) -> None:
        self.members = Members(self.conn)
        self.courses = Courses(self.conn)
        self.classes = Classes(self.conn, self.track)
        self.certificates = Certificates(self.conn)
        self.viewing = ViewingReports(self.conn)
        self.watched = WatchedMinutes(self.conn)
