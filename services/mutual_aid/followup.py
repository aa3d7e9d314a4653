"""Following up unanswered backstop requests: remind finance, then escalate, on the clock.

The policy (``FollowUpPolicy``) decides from each request's own dates, so running the check
again the same day, or on two replicas, does nothing more: a reminder sent today is a contact.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from services.mutual_aid.backstop import FollowUp, FollowUpPolicy
from services.mutual_aid.handlers import Context, MutualAidUnitOfWork
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowedUp:
    request_id: str
    action: FollowUp


async def follow_up(
    uow: MutualAidUnitOfWork, ctx: Context, policy: FollowUpPolicy
) -> list[FollowedUp]:
    today = ctx.clock.today()
    done: list[FollowedUp] = []
    async with uow:
        for request in await uow.backstop.open(lock=True):
            action = request.follow_up(today, policy)
            if action is not None:
                await uow.backstop.save(request)
                done.append(FollowedUp(request.request_id, action))
                uow.publish(*request.events)
                request.events.clear()
        await uow.commit()
    return done


class FollowUpWorker:
    def __init__(
        self, ctx: Context, topic: str, policy: FollowUpPolicy, *, interval_seconds: float
    ) -> None:
        self.ctx = ctx
        self.topic = topic
        self.policy = policy
        self.interval_seconds = interval_seconds

    async def check_once(self, pool: asyncpg.Pool) -> list[FollowedUp]:
        return await follow_up(MutualAidUnitOfWork(pool, self.topic), self.ctx, self.policy)

    async def run(self, runtime: ServiceRuntime) -> None:
        while True:
            try:
                for done in await self.check_once(runtime.pool):
                    log.warning("backstop request %s: %s", done.request_id, done.action.value)
            except Exception:  # the requests keep their dates: the next check catches up
                log.exception("following up backstop requests failed")
            await asyncio.sleep(self.interval_seconds)
