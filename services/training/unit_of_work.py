"""The training service's unit of work, and running a use case again after a deadlock."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import asyncpg

from services.training.classes import TrainingClass
from services.training.repository import (
    Certificates,
    Classes,
    Courses,
    Members,
    ViewingReports,
)
from shared.uow import UnitOfWork

P = ParamSpec("P")
R = TypeVar("R")
DEADLOCK_ATTEMPTS = 3


class TrainingUnitOfWork(UnitOfWork):
    members: Members
    courses: Courses
    classes: Classes
    certificates: Certificates
    viewing: ViewingReports

    def on_enter(self) -> None:
        self.members = Members(self.conn)
        self.courses = Courses(self.conn)
        self.classes = Classes(self.conn)
        self.certificates = Certificates(self.conn)
        self.viewing = ViewingReports(self.conn)

    async def commit_classes(self, *classes: TrainingClass) -> None:
        for tc in classes:
            await self.classes.save(tc)
            self.publish(*tc.events)
            tc.events.clear()
        await self.commit()


def retry_on_deadlock(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run the use case again if Postgres chose it as a deadlock's victim.

    Enrolling locks the member row (shared), then the class. The membership consumer applies a
    batch of events in one transaction, so it may hold a class (from one member's departure) and
    then want another member's row: a cycle Postgres breaks by aborting one side. The aborted
    side rolled back completely, so running it again is safe.
    """

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for _ in range(DEADLOCK_ATTEMPTS - 1):
            try:
                return await handler(*args, **kwargs)
            except asyncpg.DeadlockDetectedError:
                continue
        return await handler(*args, **kwargs)

    return run
