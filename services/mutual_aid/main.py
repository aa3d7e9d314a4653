"""Wiring of the mutual_aid service."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.mutual_aid import api, api_claims, api_ledger, api_reports
from services.mutual_aid.backstop import FollowUpPolicy
from services.mutual_aid.eligibility import JOINED
from services.mutual_aid.followup import FollowUpWorker
from services.mutual_aid.handlers import standing_changed
from services.mutual_aid.payouts import PayoutWorker
from services.mutual_aid.unit_of_work import MutualAidUnitOfWork
from shared.clock import FEDERATION_ZONE, Clock, SystemClock
from shared.consumer import Batched, Handler
from shared.events import membership as m
from shared.events.catalogue import published_by
from shared.http import create_app
from shared.routes import units_of_work
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.uow import following
from shared.webhooks import webhook_fanout_handlers, webhook_sender, webhooks_router

OFFERED = published_by("mutual_aid")


class Settings(ServiceSettings):
    service: ClassVar[str] = "mutual_aid"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_MUTUAL_AID_", extra="ignore")
    http_port: int = 8002
    # The federation's calendar: dates of claims, payments and reports are days in this zone.
    timezone: str = FEDERATION_ZONE
    # The payout worker settles when a change notifies it (an approval, a contribution, a
    # grant: NOTIFY, from any process) and at least this often.
    payout_poll_seconds: float = Field(30.0, gt=0)
    # Claims approved within this window wait for the next backstop request, so a burst of
    # approvals becomes one request to finance instead of one per claim.
    backstop_batch_minutes: float = Field(60.0, ge=0)
    # Unanswered backstop requests: remind finance every N days, escalate once after M days.
    backstop_remind_after_days: int = 7
    backstop_escalate_after_days: int = 30
    backstop_follow_up_seconds: float = Field(3600.0, gt=0)


def follows(topic: str, clock: Clock) -> dict[str, Handler]:
    """Membership's events keep the eligibility view; joins are applied a run at a time by one
    statement (``JOINED``: a roster's run, or an online join alone, inbox row included), every
    other change of standing in a unit of work of its own."""
    one_by_one = following(MutualAidUnitOfWork, topic, clock, standing_changed)
    return {m.MemberJoined.type: Batched.of(JOINED)} | dict.fromkeys(
        (
            m.MemberSuspended.type,
            m.MemberReinstated.type,
            m.MemberLeft.type,
            m.MemberTransferred.type,
        ),
        one_by_one,
    )


def build(settings: ServiceSettings, *, clock: Clock | None = None) -> FastAPI:
    """The app; ``clock`` is for tests that move time (reminders, the batching window)."""
    assert isinstance(settings, Settings)
    clock = clock or SystemClock(settings.timezone)
    topic = settings.events_topic
    payouts = PayoutWorker(
        clock,
        poll_seconds=settings.payout_poll_seconds,
        batch_window=timedelta(minutes=settings.backstop_batch_minutes),
    )
    follow_ups = FollowUpWorker(
        clock,
        FollowUpPolicy(settings.backstop_remind_after_days, settings.backstop_escalate_after_days),
        interval_seconds=settings.backstop_follow_up_seconds,
    )
    runtime = ServiceRuntime(
        settings,
        follows={
            "membership.events": follows(topic, clock),
            # Finance subscribes to backstop requests here, among other things.
            "mutual_aid.events": webhook_fanout_handlers(OFFERED),
        },
        workers={
            "payouts": payouts.run,
            "backstop_follow_up": follow_ups.run,
            "webhooks": webhook_sender,
        },
    )
    app = create_app(settings.service, lifespan=runtime.lifespan, readiness=runtime.readiness)
    app.state.runtime = runtime
    app.state.unit_of_work = units_of_work(runtime, MutualAidUnitOfWork, clock)
    app.state.payouts = payouts
    app.state.follow_ups = follow_ups
    app.include_router(api.router)
    app.include_router(api_claims.router)
    app.include_router(api_ledger.router)
    app.include_router(api_reports.router)
    app.include_router(webhooks_router(OFFERED))
    return app
