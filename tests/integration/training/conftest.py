"""The training service in-process against the real Kafka and Postgres, with signed clients for
staff, the member portal and the streaming side, and a membership feed on the real topic.

Members reach training the production way: ``MemberJoined``/``MemberLeft`` envelopes produced to
``{namespace}membership.events`` and applied by the service's consumer. Every test uses fresh ids,
so tests sharing the run's database never see each other's rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from services.training.main import Settings, build
from shared.clock import Clock
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined, MemberLeft
from shared.kafka import idempotent_producer
from tests.support.auth import issue_credential, signed_client
from tests.support.clock import ManualClock
from tests.support.database import ScratchDatabase
from tests.support.service import running, settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

STAFF = ("training:manage", "training:read", "reports:read")
PORTAL = ("training:enrol", "training:read")
STREAMING = ("training:viewing",)
CITY = "u-city"


def at(**delta: float) -> str:
    """An instant relative to now, as the API takes it."""
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@dataclass
class Training:
    app: FastAPI
    staff: httpx.AsyncClient
    portal: httpx.AsyncClient
    streaming: httpx.AsyncClient
    public: httpx.AsyncClient
    namespace: str
    database: ScratchDatabase
    bootstrap: str

    @property
    def pool(self) -> Any:
        return self.app.state.runtime.pool

    async def client(self, *scopes: str, organisations: list[str] | None = None) -> Any:
        app_id, secret = await issue_credential(
            self.database.dsn("training"), "training", scopes=scopes, organisations=organisations
        )
        return await signed_client(self.app, app_id, secret)

    # ----- the membership feed -----

    async def publish(self, *events: EventData) -> list[Envelope]:
        envelopes = [Envelope.wrap(e) for e in events]
        producer = idempotent_producer(self.bootstrap)
        await producer.start()
        try:
            sent = [
                await producer.send(
                    f"{self.namespace}membership.events",
                    env.data,
                    key=env.subject.encode(),
                    headers=env.kafka_headers(),
                )
                for env in envelopes
            ]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        return envelopes

    async def members(
        self,
        count: int,
        *,
        union_id: str = "u-factory",
        union_path: tuple[str, ...] = (CITY, "u-county"),
        categories: tuple[str, ...] = (),
    ) -> list[str]:
        """``count`` new members joined through membership events, applied before returning."""
        tag = uuid.uuid4().hex[:8]
        ids = [f"m-{tag}-{n:04d}" for n in range(count)]
        await self.publish(
            *(
                MemberJoined(
                    member_id=member_id,
                    name=f"张{n}",
                    union_id=union_id,
                    union_path=list(union_path),
                    channel="wechat",
                    categories=list(categories),
                    joined_on=date(2025, 1, 5),
                    card_number=f"C{tag}{n:04d}",
                    sex="female",
                    birth_date=date(1990, 1, 1),
                )
                for n, member_id in enumerate(ids)
            )
        )
        await eventually(
            lambda: self.pool.fetchval(
                "SELECT count(*) = $2 FROM members WHERE member_id = ANY($1::text[])", ids, count
            )
        )
        return ids

    async def member(self, **kwargs: Any) -> str:
        [member_id] = await self.members(1, **kwargs)
        return member_id

    async def leave(self, member_id: str) -> Envelope:
        [envelope] = await self.publish(
            MemberLeft(member_id=member_id, left_on=date.today(), reason="resigned")
        )
        await eventually(
            lambda: self.pool.fetchval(
                "SELECT status = 'left' FROM members WHERE member_id = $1", member_id
            )
        )
        return envelope

    # ----- courses and classes -----

    async def course(self, **overrides: Any) -> str:
        body = {
            "title": "工会干部业务培训",
            "kind": "cadre_training",
            "provider": "亳州市总工会",
            "completion": {"min_attendance_percent": 100},
        } | overrides
        answer = await self.staff.post("/courses", json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["course_id"])

    async def klass(self, course_id: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A class open for enrolment now; by default one session in two days, 50 seats."""
        body = {
            "name": "2026年第一期",
            "capacity": 50,
            "enrolment_opens_at": at(hours=-1),
            "enrolment_closes_at": at(days=1),
            "sessions": [{"starts_at": at(days=2), "ends_at": at(days=2, hours=3), "venue": "201"}],
        } | overrides
        course_id = course_id or await self.course()
        answer = await self.staff.post(f"/courses/{course_id}/classes", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def lecture(self, min_watched_minutes: int, enrolled: int) -> tuple[str, list[str]]:
        """An online lecture without seat limit, completed by minutes watched, and ``enrolled``
        new members enrolled in it: (its class id, the members)."""
        course = await self.course(
            kind="lecture_series",
            completion={"min_attendance_percent": None, "min_watched_minutes": min_watched_minutes},
        )
        class_id = str((await self.klass(course, capacity=None))["class_id"])
        members = await self.members(enrolled)
        for member in members:
            assert (await self.enrol(class_id, member)).status_code == 201
        return class_id, members

    async def enrol(self, class_id: str, member_id: str) -> httpx.Response:
        return await self.portal.post(
            f"/classes/{class_id}/enrolments", json={"member_id": member_id}
        )

    async def statuses(self, class_id: str) -> dict[str, str]:
        rows = await self.pool.fetch(
            "SELECT member_id, status FROM enrolments WHERE class_id = $1", class_id
        )
        return {r["member_id"]: r["status"] for r in rows}

    async def events(self, class_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The events recorded for a class (its outbox rows, keyed by class id), in order."""
        rows = await self.pool.fetch(
            "SELECT type, payload FROM outbox WHERE key = $1 ORDER BY id", class_id
        )
        return [
            (r["type"].removeprefix("gonghui.training."), orjson.loads(r["payload"])) for r in rows
        ]


@asynccontextmanager
async def started(
    database: ScratchDatabase, servers: Any, namespace: str, clock: Clock | None = None
) -> AsyncIterator[Training]:
    settings = settings_for(Settings, database, servers, namespace, sweep_seconds=0.2)
    async with running(partial(build, clock=clock), settings) as (app, public):
        clients = []
        for scopes in (STAFF, PORTAL, STREAMING):
            app_id, secret = await issue_credential(
                database.dsn("training"), "training", scopes=scopes
            )
            clients.append(await signed_client(app, app_id, secret))
        staff, portal, streaming = clients
        async with staff, portal, streaming:
            yield Training(
                app, staff, portal, streaming, public, namespace, database, servers.kafka_bootstrap
            )


@pytest.fixture
async def training(
    database: ScratchDatabase, servers: Any, namespace: str
) -> AsyncIterator[Training]:
    async with started(database, servers, namespace) as running_training:
        yield running_training


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def timed_training(
    database: ScratchDatabase, servers: Any, namespace: str, clock: ManualClock
) -> AsyncIterator[Training]:
    """The service on a clock the test moves (``clock``)."""
    async with started(database, servers, namespace, clock) as running_training:
        yield running_training
