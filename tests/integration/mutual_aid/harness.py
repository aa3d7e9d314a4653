"""The mutual-aid service in-process against the real Kafka and Postgres, for integration tests.

The fund is one aggregate per schema, so every test gets a scratch database of its own (a shared
one would mix one test's money into another's sums). Time is a :class:`ManualClock` the test
moves; members arrive the production way, as membership events on the real topic.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from services.mutual_aid.followup import FollowedUp, FollowUpWorker
from services.mutual_aid.main import Settings, build
from services.mutual_aid.payouts import PayoutWorker, Settlement
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import MemberJoined, MemberLeft
from shared.kafka import idempotent_producer
from tests.support.auth import issue_credential, signed_client
from tests.support.clock import ManualClock
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers
from tests.support.service import running, settings_for
from tests.support.waiting import eventually

YEAR = 2025
ZONE = ZoneInfo("Asia/Shanghai")
OFFICE = (
    "plans:write",
    "plans:read",
    "enrolment:write",
    "enrolment:read",
    "contributions:write",
    "claims:submit",
    "claims:read",
    "claims:review",
    "reports:read",
)
FINANCE = ("backstop:read", "backstop:grant", "reports:read")
UNIT = ("claims:submit", "claims:read", "enrolment:read")
CONTRIBUTION = 12_000  # 120.00 a member a year, in the standard plan


def clock_at(day: date, hour: int = 9) -> ManualClock:
    return ManualClock(datetime(day.year, day.month, day.day, hour, tzinfo=ZONE).astimezone(UTC))


def rules(**overrides: Any) -> dict[str, Any]:
    """The standard plan's rules: deductible 1,000.00; 50% to 10,000, 60% to 50,000, 70% above;
    ceilings 50,000.00 a claim and 80,000.00 a year; 90 days' wait; claims within 180 days."""
    return {
        "deductible_fen": 100_000,
        "bands": [
            {"lower_fen": 0, "upper_fen": 1_000_000, "ratio": "0.5"},
            {"lower_fen": 1_000_000, "upper_fen": 5_000_000, "ratio": "0.6"},
            {"lower_fen": 5_000_000, "upper_fen": None, "ratio": "0.7"},
        ],
        "per_claim_ceiling_fen": 5_000_000,
        "yearly_ceiling_fen": 8_000_000,
        "waiting_period_days": 90,
        "submission_deadline_days": 180,
        **overrides,
    }


def joined(member_id: str, on: date = date(2020, 1, 6)) -> MemberJoined:
    return MemberJoined(
        member_id=member_id,
        name="张三",
        union_id="u-factory",
        union_path=["u-city", "u-county"],
        channel="wechat",
        categories=[],
        joined_on=on,
        card_number="GH0000000001",
        sex="F",
        birth_date=date(1985, 3, 1),
    )


def left(member_id: str, on: date) -> MemberLeft:
    return MemberLeft(member_id=member_id, left_on=on, reason="changed employer")


def claim_body(
    member_id: str,
    unit_id: str,
    *,
    in_catalogue_fen: int = 600_000,
    admitted: date = date(YEAR, 6, 3),
    discharged: date = date(YEAR, 6, 10),
    invoice: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A hospital stay whose parts add up: basic insurance paid 5,000.00, the member the rest."""
    return {
        "member_id": member_id,
        "unit_id": unit_id,
        "admission_date": admitted.isoformat(),
        "discharge_date": discharged.isoformat(),
        "hospital": "亳州市人民医院",
        "invoice_numbers": [invoice or f"INV-{member_id}-{admitted.isoformat()}"],
        "total_expense_fen": 500_000 + in_catalogue_fen,
        "paid_by_basic_insurance_fen": 500_000,
        "self_paid_in_catalogue_fen": in_catalogue_fen,
        "self_paid_outside_catalogue_fen": 0,
        "diagnosis_code": "K35.2",
        "documents": ["invoice", "discharge-summary"],
        "submitted_by": {"kind": "unit", "id": unit_id},
        **overrides,
    }


@dataclass
class MutualAid:
    app: FastAPI
    office: httpx.AsyncClient
    finance: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    clock: ManualClock
    settings: Settings
    database: ScratchDatabase
    servers: Servers
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.app.state.runtime.pool

    async def client(
        self,
        *scopes: str,
        department: str = "federation",
        organisations: Sequence[str] | None = None,
    ) -> httpx.AsyncClient:
        app_id, secret = await issue_credential(
            self.database.dsn("mutual_aid"),
            "mutual_aid",
            scopes=scopes,
            department=department,
            organisations=organisations,
        )
        client = await signed_client(self.app, app_id, secret)
        self._clients.append(client)
        return client

    # ----- the membership feed -----

    async def publish(self, *envelopes: Envelope) -> None:
        producer = idempotent_producer(self.servers.kafka_bootstrap)
        await producer.start()
        try:
            sent = [
                await producer.send(
                    self.settings.topic("membership.events"),
                    env.data,
                    key=env.subject.encode(),
                    headers=env.kafka_headers(),
                )
                for env in envelopes
            ]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    async def feed(self, *events: EventData) -> list[Envelope]:
        """Membership events, produced and applied (seen in the inbox) before returning."""
        envelopes = [Envelope.wrap(e) for e in events]
        await self.publish(*envelopes)
        ids = [e.id for e in envelopes]
        await eventually(
            lambda: self.pool.fetchval(
                "SELECT count(*) = $2 FROM inbox WHERE event_id = ANY($1)", ids, len(ids)
            )
        )
        return envelopes

    # ----- setting the scene through the API -----

    async def publish_plan(self, **overrides: Any) -> dict[str, Any]:
        body = {"scheme_year": YEAR, "contribution_per_member_fen": 12_000, "rules": rules()}
        draft = await self.office.post("/plans", json=body | overrides)
        assert draft.status_code == 201, draft.text
        published = await self.office.post(f"/plans/{draft.json()['plan_id']}/publish")
        assert published.status_code == 200, published.text
        return published.json()

    async def enrol(self, unit_id: str, staff: Sequence[str]) -> dict[str, Any]:
        body = {
            "unit_id": unit_id,
            "scheme_year": YEAR,
            "staff": list(staff),
            "enrolled_on": f"{YEAR}-01-01",
        }
        answer = await self.office.post("/enrolments", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def contribute(self, enrolment_id: str, amount_fen: int, receipt: str) -> None:
        answer = await self.office.post(
            f"/enrolments/{enrolment_id}/contributions",
            json={"receipt_number": receipt, "amount_fen": amount_fen, "payer": "单位财务科"},
        )
        assert answer.status_code == 201, answer.text

    async def submit(self, body: dict[str, Any], client: httpx.AsyncClient | None = None) -> Any:
        answer = await (client or self.office).post("/claims", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def claim(self, claim_id: str) -> Any:
        answer = await self.office.get(f"/claims/{claim_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def states(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT state, count(*) AS n FROM claims GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    async def requests(self) -> list[dict[str, Any]]:
        answer = await self.finance.get("/backstop/requests")
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def settle_once(self) -> Settlement:
        """One run of the payout worker's use case, now."""
        payouts: PayoutWorker = self.app.state.payouts
        return await payouts.settle_once(self.app.state.unit_of_work)

    async def follow_up(self) -> list[FollowedUp]:
        """One check of the unanswered backstop requests, now."""
        follow_ups: FollowUpWorker = self.app.state.follow_ups
        return await follow_ups.check_once(self.app.state.unit_of_work)

    async def settled(self) -> None:
        """Wait until the payout worker has looked at every approval (none left unmarked)."""
        self.app.state.payouts.wake()
        await eventually(
            lambda: self.pool.fetchval("SELECT count(*) = 0 FROM claims WHERE state = 'approved'")
        )


@asynccontextmanager
async def mutual_aid(
    servers: Servers,
    database: ScratchDatabase,
    namespace: str,
    clock: ManualClock,
    **overrides: Any,
) -> AsyncIterator[MutualAid]:
    settings = settings_for(
        Settings,
        database,
        servers,
        namespace,
        payout_poll_seconds=0.2,
        backstop_batch_minutes=10,
        **overrides,
    )
    assert isinstance(settings, Settings)
    async with running(functools.partial(build, clock=clock), settings) as (app, anonymous):
        service = MutualAid(
            app, anonymous, anonymous, anonymous, clock, settings, database, servers
        )
        service.office = await service.client(*OFFICE)
        service.finance = await service.client(*FINANCE, department="finance")
        try:
            yield service
        finally:
            for client in service._clients:
                await client.aclose()


async def scene(service: MutualAid, members: int, contributed_fen: int) -> tuple[str, list[str]]:
    """A published plan, ``members`` members covered in one unit, ``contributed_fen`` paid in,
    and one claim under review per member; the claim ids in submission order."""
    await service.publish_plan()
    ids = [f"m-{n:03d}" for n in range(members)]
    await service.feed(*(joined(i) for i in ids))
    enrolment = await service.enrol("unit-saga", ids)
    await service.contribute(enrolment["enrolment_id"], contributed_fen, "R-SAGA-1")
    claims = []
    for n, member_id in enumerate(ids, start=1):
        # self-paid 1,000.00 + n × 10.01: after the deductible, n × 10.01 at 50% (half-up)
        body = claim_body(member_id, "unit-saga", in_catalogue_fen=100_000 + 1001 * n)
        claim = await service.submit(body)
        assert claim["state"] == "under_review"
        assert claim["assessment"]["benefit_fen"] == (1001 * n + 1) // 2
        claims.append(claim["claim_id"])
    return enrolment["enrolment_id"], claims


async def approve_all(service: MutualAid, claim_ids: list[str]) -> None:
    answers = await asyncio.gather(
        *(
            service.office.post(f"/claims/{c}/approve", json={"officer": "officer-wang"})
            for c in claim_ids
        )
    )
    assert [a.status_code for a in answers] == [200] * len(claim_ids)


async def emitted(
    servers: Servers, topic: str, until: Callable[[list[EventData]], bool], timeout: float = 30.0
) -> list[EventData]:
    """The events on ``topic`` (read from the start) once ``until`` holds for them."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[EventData] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(found):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {len(found)} events on {topic} in {timeout}s")
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(Envelope.from_kafka(r.headers, r.value).read() for r in records)
    finally:
        await consumer.stop()
    return found


def of_type(events: list[EventData], kind: type[EventData]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def table_counts(pool: asyncpg.Pool) -> dict[str, int]:
    """Rows in every table of the schema except the audit trail and nonces (which record the
    refused calls themselves) and the inbox (the service's own earlier events, still arriving
    through Kafka; the outbox shows that no new one was caused): equal before and after means
    a refused request changed nothing."""
    tables = await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        " AND tablename NOT IN ('audit_log', 'auth_nonces', 'alembic_version', 'inbox')"
    )
    return {
        t["tablename"]: await pool.fetchval(f'SELECT count(*) FROM "{t["tablename"]}"')
        for t in tables
    }
