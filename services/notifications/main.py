"""Wiring of the notifications service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

import asyncpg
from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.notifications import api, api_wechat, handlers, queue
from services.notifications.callback import MAX_BODY
from services.notifications.delivery_reports import ReportWriter
from services.notifications.fanout import fan_out
from services.notifications.gate import SendGate
from services.notifications.live_rules import LiveRules
from services.notifications.sender import Sender, SenderConfig
from services.notifications.tokens import PostgresTokenStore
from services.notifications.transport import LeanClient, PooledTransport
from services.notifications.unit_of_work import NotificationsUnitOfWork
from services.notifications.wechat import DEFAULT_BASE_URL, WeChatClient
from shared.clock import FEDERATION_ZONE, Clock, SystemClock
from shared.db import connect
from shared.http import create_app
from shared.runtime import ServiceRuntime, Worker
from shared.settings import ServiceSettings

RULES = Path(__file__).resolve().parent / "rules.yaml"
log = logging.getLogger(__name__)
AWAITING_POLL_SECONDS = 1.0


class Settings(ServiceSettings):
    service: ClassVar[str] = "notifications"
    model_config = SettingsConfigDict(env_prefix="GONGHUI_NOTIFICATIONS_", extra="ignore")
    http_port: int = 8004
    # The federation's calendar (a message's dates and times are shown in it).
    timezone: str = FEDERATION_ZONE

    wechat_base_url: str = DEFAULT_BASE_URL
    wechat_appid: str = ""
    wechat_secret: str = ""
    wechat_token_endpoint: Literal["token", "stable_token"] = "token"
    # The "Token" of the account's server configuration: WeChat signs its pushes with it.
    wechat_callback_token: str = ""
    wechat_timeout_seconds: float = 10.0
    rules_path: Path = RULES
    # Messages a second for all workers together: below the account's per-minute quota / 60.
    send_rate_per_second: float = Field(default=20.0, gt=0)
    # WeChat calls in flight per worker process.
    sender_concurrency: int = Field(default=32, ge=1)
    sender_batch_size: int = Field(default=500, ge=1)
    sender_loops: int = Field(default=3, ge=1)
    sender_lease_seconds: float = Field(default=60.0, gt=0)
    sender_poll_seconds: float = Field(default=1.0, gt=0)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    config_error_pause_seconds: float = Field(default=60.0, gt=0)
    # How long a message for a member who has not bound WeChat waits for the binding (members
    # often join and log in through the account in one sitting) before it is undeliverable.
    binding_grace_seconds: float = Field(default=600.0, ge=0)
    broadcast_batch_size: int = Field(default=2000, ge=1)
    # How soon a new broadcast starts fanning out, and a finished one is closed.
    broadcast_poll_seconds: float = Field(default=0.25, gt=0)
    # False for replicas that only serve the API (and WeChat's pushes).
    run_sender: bool = True


Units = Callable[[], NotificationsUnitOfWork]


def _sender(settings: Settings, clock: Clock, units: Units) -> Worker:
    async def run(runtime: ServiceRuntime) -> None:
        transport = PooledTransport(max_connections_per_host=settings.sender_concurrency)
        async with LeanClient(transport, settings.wechat_timeout_seconds) as http:
            store = PostgresTokenStore(runtime.pool, settings.wechat_appid, clock=clock)
            client = WeChatClient(
                http,
                settings.wechat_appid,
                settings.wechat_secret,
                store,
                settings.wechat_base_url,
                token_endpoint=settings.wechat_token_endpoint,
                clock=clock,
            )
            sender = Sender(
                runtime.pool,
                client,
                SendGate(runtime.pool, settings.send_rate_per_second, clock),
                units,
                SenderConfig(
                    batch_size=settings.sender_batch_size,
                    concurrency=settings.sender_concurrency,
                    loops=settings.sender_loops,
                    lease_seconds=settings.sender_lease_seconds,
                    poll_seconds=settings.sender_poll_seconds,
                    retry_base_seconds=settings.retry_base_seconds,
                    config_pause_seconds=settings.config_error_pause_seconds,
                ),
                clock,
                listen=lambda: connect(settings.database_url, settings.db_schema),
            )
            await sender.run()

    return run


def _fanout(settings: Settings, units: Units) -> Worker:
    async def run(runtime: ServiceRuntime) -> None:
        await fan_out(units, settings.broadcast_batch_size, settings.broadcast_poll_seconds)

    return run


def _awaiting(settings: Settings, clock: Clock) -> Worker:
    """Messages waiting for their member to bind: sent once bound, undeliverable once overdue."""
    grace = timedelta(seconds=settings.binding_grace_seconds)

    async def run(runtime: ServiceRuntime) -> None:
        while True:
            try:
                now = clock.now()
                await queue.promote_bound(runtime.pool, now, now - grace)
                expired = await queue.expire_awaiting(runtime.pool, now)
                if expired:
                    log.info("%d messages waited in vain for a WeChat binding", expired)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("expiry: database trouble (%r); retrying", exc)
            await asyncio.sleep(AWAITING_POLL_SECONDS)

    return run


def build(settings: ServiceSettings, *, clock: Clock | None = None) -> FastAPI:
    assert isinstance(settings, Settings)
    clock = clock or SystemClock(settings.timezone)
    rules = LiveRules(settings.rules_path)
    runtime: ServiceRuntime

    # shared.routes.units_of_work makes (pool, topic, clock); a broadcast also takes its
    # template from the rules in force, so this factory hands them over too.
    def units() -> NotificationsUnitOfWork:
        return NotificationsUnitOfWork(runtime.pool, settings.events_topic, clock, rules)

    workers: dict[str, Worker] = {}
    if settings.run_sender:
        workers = {
            "sender": _sender(settings, clock, units),
            "fanout": _fanout(settings, units),
            "awaiting": _awaiting(settings, clock),
        }
    grace = timedelta(seconds=settings.binding_grace_seconds)
    follows = handlers.follows(rules, clock, grace, settings.events_topic)
    runtime = ServiceRuntime(settings, follows=follows, workers=workers)
    app = create_app(
        settings.service,
        lifespan=runtime.lifespan,
        readiness=runtime.readiness,
        body_limits={r"/wechat/callback$": MAX_BODY},
    )
    app.state.runtime = runtime
    app.state.unit_of_work = units
    app.state.wiring = api.Wiring(
        rules=rules,
        clock=clock,
        gate=lambda: SendGate(runtime.pool, settings.send_rate_per_second, clock),
        reports=ReportWriter(lambda: runtime.pool, clock),
        callback_token=settings.wechat_callback_token,
        send_rate=settings.send_rate_per_second,
    )
    app.include_router(api.router)
    app.include_router(api.actions(app.state.wiring))
    app.include_router(api_wechat.router)
    return app
