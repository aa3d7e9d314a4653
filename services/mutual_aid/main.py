"""Wiring of the mutual_aid service."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.mutual_aid import api, api_claims, api_fund
from services.mutual_aid.backstop import FollowUpPolicy
from services.mutual_aid.clock import Clock, SystemClock
from services.mutual_aid.followup import FollowUpWorker
from services.mutual_aid.gauges import sample_backstop
from services.mutual_aid.handlers import Context, membership_handlers
from services.mutual_aid.payouts import PayoutWorker
from shared.events.catalogue import published_by
from shared.http import create_app
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.webhooks import webhook_fanout_handlers, webhook_sender, webhooks_router

OFFERED = published_by("mutual_aid")


class Settings(ServiceSettings):
    service: ClassVar[str] = "mutual_aid"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_MUTUAL_AID_", extra="ignore")
    http_port: int = 8002
    # The federation's calendar: dates of claims, payments and reports are days in this zone.
    timezone: str = "Asia/Shanghai"
    # Below this the fund announces FundBalanceLow (fen; default 50,000.00 yuan).
    low_balance_threshold_fen: int = Field(5_000_000, ge=0)
    # The payout worker settles when woken, and at least this often.
    payout_poll_seconds: float = Field(30.0, gt=0)
    # Claims approved within this window wait for the next backstop request, so a burst of
    # approvals becomes one request to finance instead of one per claim.
    backstop_batch_minutes: float = Field(60.0, ge=0)
    # Unanswered backstop requests: remind finance every N days, escalate once after M days.
    backstop_remind_after_days: int = 7
    backstop_escalate_after_days: int = 30
    backstop_follow_up_seconds: float = Field(3600.0, gt=0)


def build(settings: ServiceSettings, *, clock: Clock | None = None) -> FastAPI:
    """The app; ``clock`` is for tests that move time (reminders, the batching window)."""
    assert isinstance(settings, Settings)
    ctx = Context(clock or SystemClock(settings.timezone), settings.low_balance_threshold_fen)
    topic = settings.events_topic
    payouts = PayoutWorker(
        ctx,
        topic,
        poll_seconds=settings.payout_poll_seconds,
        batch_window=timedelta(minutes=settings.backstop_batch_minutes),
    )
    follow_ups = FollowUpWorker(
        ctx,
        topic,
        FollowUpPolicy(settings.backstop_remind_after_days, settings.backstop_escalate_after_days),
        interval_seconds=settings.backstop_follow_up_seconds,
    )
    runtime = ServiceRuntime(
        settings,
        follows={
            "membership.events": membership_handlers(topic),
            # Finance subscribes to backstop requests here, among other things.
            "mutual_aid.events": webhook_fanout_handlers(OFFERED),
        },
        workers={
            "payouts": payouts.run,
            "backstop_follow_up": follow_ups.run,
            "webhooks": webhook_sender,
        },
        samples=[sample_backstop],
    )
    app = create_app(settings.service, lifespan=runtime.lifespan, readiness=runtime.readiness)
    app.state.runtime = runtime
    app.state.context = ctx
    app.state.payouts = payouts
    app.state.follow_ups = follow_ups
    app.include_router(api.router)
    app.include_router(api_claims.router)
    app.include_router(api_fund.router)
    app.include_router(webhooks_router(OFFERED))
    return app
