"""The notifications service against the WeChat simulator, both in-process.

The simulator serves real HTTP on a free port (the service's client talks to it as to WeChat);
its pushes (delivery reports, subscribe/unsubscribe) go straight into the service's ASGI app. The
service's clock and the simulator's move together (``WeChat.advance``), so token expiry, quota
windows and client_msg_id lifetimes can be crossed without waiting.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import orjson
import uvicorn
from fastapi import FastAPI

from services.notifications.main import RULES, Settings, build
from services.notifications.rules import load_rules
from shared.clock import SystemClock
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined, OrganisationEstablished
from shared.events.training import CertificateIssued, CourseCompleted
from shared.kafka import idempotent_producer
from tests.support.auth import issue_credential, signed_client
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers
from tests.support.service import running, settings_for
from tests.support.waiting import eventually
from wechat_simulator import Simulator, SimulatorConfig, TemplateSpec, create_app
from wechat_simulator.config import DEFAULT_APPID, DEFAULT_SECRET

CALLBACK_TOKEN = "notifications-test-token"
SCOPES = ("bindings:write", "notifications:read", "notifications:manage")
SHIPPED = load_rules(RULES.read_text(encoding="utf-8"))
T = TypeVar("T")


def template_specs(rules_path: Path = RULES) -> list[TemplateSpec]:
    """The account's template library as rules.yaml expects it."""
    rules = load_rules(rules_path.read_text(encoding="utf-8"))
    return [
        TemplateSpec(template_id=t.template_id, keys=list(t.keys)) for t in rules.templates.values()
    ]


def template_id(name: str) -> str:
    return SHIPPED.templates[name].template_id


class ShiftedClock(SystemClock):
    """The service's clock: real time plus the offset the test moved the simulator by. Not a
    ManualClock: the sender paces its sends by the clock, so time must also pass by itself."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=self.offset)

    def today(self) -> date:
        return self.now().astimezone(self.zone).date()


class ToService(httpx.AsyncBaseTransport):
    """The simulator's pushes, delivered into the service's app once it runs."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.app is None:
            return httpx.Response(503)
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


@dataclass
class WeChat:
    base_url: str
    simulator: Simulator
    client: httpx.AsyncClient
    clock: ShiftedClock
    pushes: ToService

    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = await self.client.request(method, f"/_sim{path}", **kwargs)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def follower(self, *openids: str, state: str = "following") -> None:
        users = [{"openid": o, "state": state} for o in openids]
        await self.admin("POST", "/users", json={"users": users, "quiet": True})

    async def messages(self, openid: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        params = {"limit": 10_000, **filters} | ({"openid": openid} if openid else {})
        items: list[dict[str, Any]] = (await self.admin("GET", "/messages", params=params))["items"]
        return items

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = await self.admin("GET", "/stats")
        return stats

    async def faults(self, **faults: Any) -> None:
        await self.admin("POST", "/faults", json=faults)

    async def config(self, **settings: Any) -> None:
        await self.admin("POST", "/config", json=settings)

    async def advance(self, seconds: float, *, service_too: bool = True) -> None:
        """Move WeChat's clock, and the service's with it unless told otherwise."""
        await self.admin("POST", "/clock/advance", json={"seconds": seconds})
        if service_too:
            self.clock.offset += seconds

    async def now(self) -> float:
        now: float = (await self.admin("GET", "/clock"))["now"]
        return now

    async def flush(self) -> None:
        await self.admin("POST", "/callbacks/flush", params={"timeout": 10})


@asynccontextmanager
async def wechat_simulator(**config: Any) -> AsyncIterator[WeChat]:
    pushes = ToService()
    app = create_app(
        SimulatorConfig(
            callback_url="http://service/wechat/callback",
            callback_token=CALLBACK_TOKEN,
            templates=template_specs(),
            **config,
        ),
        callback_transport=pushes,
    )
    # IPPROTO_TCP, or asyncio leaves Nagle on and every answer waits for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the simulator did not start"
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield WeChat(base_url, app.state.simulator, client, ShiftedClock(), pushes)
    finally:
        server.should_exit = True
        await task


@dataclass
class Service:
    app: FastAPI
    # Signed as the federation's tools are, with every scope the service has.
    api: httpx.AsyncClient
    # Unsigned, as WeChat's pushes come.
    raw: httpx.AsyncClient
    namespace: str
    servers: Servers

    @property
    def pool(self) -> asyncpg.Pool:
        pool: asyncpg.Pool = self.app.state.runtime.pool
        return pool

    async def publish(
        self, *events: EventData, copies: int = 1, trace_headers: dict[str, str] | None = None
    ) -> list[Envelope]:
        """Each event as its producer would send it (``copies`` > 1: redelivered as is)."""
        producer = idempotent_producer(self.servers.kafka_bootstrap)
        await producer.start()
        envelopes = [Envelope.wrap(e, trace_headers=trace_headers) for e in events]
        try:
            for envelope in envelopes:
                service = envelope.source.rpartition("/")[2]
                for _ in range(copies):
                    await producer.send_and_wait(
                        f"{self.namespace}{service}.events",
                        envelope.data,
                        key=envelope.subject.encode(),
                        headers=envelope.kafka_headers(),
                    )
        finally:
            await producer.stop()
        return envelopes

    async def known(self, *member_ids: str) -> None:
        """The members as if membership's MemberJoined had reached the service earlier, without
        the welcome it would send; a member already known keeps what its events said."""
        await self.pool.execute(
            "INSERT INTO members (member_id, name, union_id, union_path, status)"
            " SELECT id, '王芳', 'u-city', '{}', 'active' FROM unnest($1::text[]) AS id"
            " ON CONFLICT (member_id) DO NOTHING",
            list(member_ids),
        )

    async def bind(self, member_id: str, openid: str) -> dict[str, Any]:
        """Bind a member known to the service (made known if need be: binding needs that)."""
        await self.known(member_id)
        answer = await self.api.put(f"/members/{member_id}/binding", json={"openid": openid})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        answer = await self.api.get("/deliveries", params={"limit": 1000, **filters})
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    async def delivery_of(self, event: Envelope, **filters: Any) -> dict[str, Any] | None:
        found = [d for d in await self.deliveries(**filters) if d["event_id"] == event.id]
        assert len(found) <= 1, found
        return found[0] if found else None

    async def settled(self, event: Envelope, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        """The event's delivery once it has reached one of ``statuses``."""

        async def check() -> dict[str, Any] | None:
            found = await self.delivery_of(event)
            return found if found and found["status"] in statuses else None

        return await eventually(check, timeout, f"delivery of {event.type} in {statuses}")

    async def outbox(self, event_type: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT payload FROM outbox WHERE type = $1 ORDER BY id", event_type
        )
        return [orjson.loads(r["payload"]) for r in rows]


def service_settings(
    database: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, **overrides: Any
) -> Settings:
    options: dict[str, Any] = {
        "wechat_base_url": wechat.base_url,
        "wechat_appid": DEFAULT_APPID,
        "wechat_secret": DEFAULT_SECRET,
        "wechat_callback_token": CALLBACK_TOKEN,
        "send_rate_per_second": 200.0,
        "sender_poll_seconds": 0.2,
        "retry_base_seconds": 0.2,
        **overrides,
    }
    settings = settings_for(Settings, database, servers, namespace, **options)
    assert isinstance(settings, Settings)
    return settings


@asynccontextmanager
async def notifications(
    database: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, **overrides: Any
) -> AsyncIterator[Service]:
    settings = service_settings(database, servers, namespace, wechat, **overrides)
    async with running(partial(build, clock=wechat.clock), settings) as (app, raw):
        app_id, secret = await issue_credential(
            database.dsn("notifications"), "notifications", scopes=SCOPES
        )
        if wechat.pushes.app is None:
            wechat.pushes.app = app  # the first replica answers WeChat's pushes
        try:
            async with await signed_client(app, app_id, secret) as api:
                yield Service(app, api, raw, namespace, servers)
        finally:
            if wechat.pushes.app is app:
                wechat.pushes.app = None


# ------------------------------------------------------------------------ events


def union(
    organisation_id: str, name: str, path: list[str] | None = None
) -> OrganisationEstablished:
    return OrganisationEstablished(
        organisation_id=organisation_id,
        name=name,
        kind="enterprise",
        parent_id=path[-1] if path else None,
        path=path or [],
    )


def joined(
    member_id: str,
    name: str = "王芳",
    union_id: str = "u-city",
    union_path: list[str] | None = None,
    categories: list[str] | None = None,
) -> MemberJoined:
    return MemberJoined(
        member_id=member_id,
        name=name,
        union_id=union_id,
        union_path=union_path or [],
        channel="online",
        categories=categories or [],
        joined_on=date(2026, 3, 1),
        card_number=f"GH{abs(hash(member_id)) % 10**10:010d}",
        sex="F",
        birth_date=date(1990, 5, 1),
    )


def enrolment(member_id: str) -> dict[str, str]:
    """What every event of one member's enrolment in the lecture (class-1) says."""
    return {
        "class_id": "class-1",
        "enrolment_id": f"e-{member_id}",
        "member_id": member_id,
        "course_id": "course-1",
        "course_title": "职工云课堂",
        "class_name": "live",
    }


def completed(member_id: str, on: date = date(2026, 12, 5)) -> CourseCompleted:
    return CourseCompleted(**enrolment(member_id), completed_on=on)


def certificate(member_id: str, on: date = date(2026, 12, 5)) -> CertificateIssued:
    return CertificateIssued(
        **enrolment(member_id), certificate_number=f"C-{member_id}", issued_on=on
    )


@dataclass
class Ids:
    """Fresh ids per test, so rows and openids never collide with another test's."""

    tag: str
    counter: int = field(default=0)

    def next(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.tag}-{self.counter}"
