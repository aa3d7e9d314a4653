"""Following up unanswered backstop requests: remind finance, then escalate, on the clock.

The policy (``FollowUpPolicy``) decides from each request's own dates, so running the check
again the same day, or on two replicas, does nothing more: a reminder sent today is a contact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from services.mutual_aid.backstop import FollowUp, FollowUpPolicy
from services.mutual_aid.unit_of_work import MutualAidUnitOfWork
from shared.clock import Clock
from shared.routes import units_of_work
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowedUp:
    request_id: str
    action: FollowUp


async def follow_up(policy: FollowUpPolicy, uow: MutualAidUnitOfWork) -> list[FollowedUp]:
    today = uow.clock.today()
    done: list[FollowedUp] = []
    async with uow:
        for request in await uow.backstop.open(lock=True):
            action = request.follow_up(today, policy)
            if action is not None:
                await uow.backstop.save(request)
                done.append(FollowedUp(request.request_id, action))
        await uow.commit()
    return done


class FollowUpWorker:
    def __init__(
        self,
        clock: Clock,
        policy: FollowUpPolicy,
        *,
        interval_seconds: float,
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.interval_seconds = interval_seconds

    async def check_once(self, units: Callable[[], MutualAidUnitOfWork]) -> list[FollowedUp]:
        return await follow_up(self.policy, units())

    async def run(self, runtime: ServiceRuntime) -> None:
        units = units_of_work(runtime, MutualAidUnitOfWork, self.clock)
        while True:
            try:
                for done in await self.check_once(units):
                    log.warning("backstop request %s: %s", done.request_id, done.action.value)
            except Exception:  # the requests keep their dates: the next check catches up
                log.exception("following up backstop requests failed")
            await asyncio.sleep(self.interval_seconds)
