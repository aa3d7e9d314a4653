"""Webhooks end to end: a department subscribes over the signed API, the service's own events
fan out through its consumer, the sender delivers signed, retries a failing endpoint without
holding up a healthy one, delivers exactly once after recovery, and staff can replay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.auth import signing
from shared.events.notifications import RecipientUnreachable
from shared.webhooks import make_webhook_sender, webhook_fanout_handlers
from tests.integration.auth.probe import OFFERED, ROLE, running_probe, serving
from tests.support.auth import issue_credential, signed_client
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers
from tests.support.waiting import caught_up, eventually

pytestmark = pytest.mark.integration


@dataclass
class Endpoint:
    """One receiving endpoint: answers ``status``; while ``gate`` is closed, requests hang."""

    secret: str = ""
    status: int = 200
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    received: list[dict[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()

    def answered(self, status: int) -> list[dict[str, object]]:
        return [r for r in self.received if r["answer"] == status]


class Receiver:
    def __init__(self) -> None:
        self.endpoints = {"a": Endpoint(), "b": Endpoint()}
        self.app = Starlette(routes=[Route("/hooks/{name}", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        endpoint = self.endpoints[request.path_params["name"]]
        body = await request.body()
        record: dict[str, object] = {
            "event_id": request.headers["x-gonghui-event-id"],
            "delivery_id": request.headers["x-gonghui-delivery-id"],
            "data": orjson.loads(body)["data"],
            "answer": None,
        }
        endpoint.received.append(record)
        try:
            signing.verify(
                endpoint.secret,
                method=request.method,
                path=request.url.path,
                query=request.scope["query_string"],
                body=body,
                headers=request.headers,
            )
            record["verified"] = True
        except signing.SignatureError:
            record["verified"] = False
        await endpoint.gate.wait()
        record["answer"] = endpoint.status
        return Response(status_code=endpoint.status)


async def settled(app: FastAPI) -> None:
    """The service's own topic is consumed to its end (every fan-out made) and no delivery is
    pending or being sent: nothing more can arrive."""
    runtime = app.state.runtime
    settings = runtime.settings
    await caught_up(
        settings.kafka_bootstrap,
        f"{settings.topic_namespace}{settings.service}",
        [settings.events_topic],
    )
    await eventually(
        lambda: runtime.pool.fetchval(
            "SELECT count(*) = 0 FROM webhook_deliveries WHERE status = 'pending'"
        )
    )


@dataclass
class World:
    app: FastAPI
    dsn: str
    schema: str
    receiver: Receiver
    receiver_url: str


@pytest.fixture
async def world(
    database: ScratchDatabase, servers: Servers, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    sender = make_webhook_sender(
        backoff_seconds=0.2, max_backoff_seconds=0.5, poll_seconds=0.1, timeout_seconds=20
    )
    receiver = Receiver()
    async with (
        serving(receiver.app) as url,
        running_probe(
            database,
            servers,
            namespace,
            monkeypatch,
            follows={"notifications.events": webhook_fanout_handlers(OFFERED)},
            workers={"webhooks": sender},
        ) as app,
    ):
        schema = app.state.runtime.settings.db_schema
        try:
            yield World(app, database.dsn(ROLE), schema, receiver, url)
        finally:
            for endpoint in receiver.endpoints.values():
                endpoint.gate.set()  # let hanging requests end so the receiver can stop


async def subscribe(client: httpx.AsyncClient, url: str) -> dict[str, object]:
    answer = await client.post("/webhooks/subscriptions", json={"url": url, "event_types": OFFERED})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def test_failing_endpoint_is_retried_alone_then_delivered_once_and_replayable(
    world: World,
) -> None:
    tax = await issue_credential(
        world.dsn, world.schema, scopes=["webhooks:manage"], department="tax"
    )
    finance = await issue_credential(
        world.dsn, world.schema, scopes=["webhooks:manage"], department="finance"
    )
    emitter = await issue_credential(world.dsn, world.schema, scopes=["events:emit"])
    a, b = world.receiver.endpoints["a"], world.receiver.endpoints["b"]
    async with await signed_client(world.app, *tax) as tax_client:
        a.secret = str((await subscribe(tax_client, f"{world.receiver_url}/hooks/a"))["secret"])
    async with await signed_client(world.app, *finance) as finance_client:
        b.secret = str((await subscribe(finance_client, f"{world.receiver_url}/hooks/b"))["secret"])

    a.gate.clear()  # endpoint a hangs...
    a.status = 500  # ...then fails
    async with await signed_client(world.app, *emitter) as client:
        assert (await client.post("/members/m-42/unreachable")).status_code == 202

    # The healthy endpoint gets the event while a's request is still hanging (the sender's
    # timeout is 20 s: b must not wait for it).
    await eventually(lambda: asyncio.sleep(0, len(b.answered(200)) == 1), timeout=5)
    assert a.received and a.received[0]["answer"] is None
    pool = world.app.state.runtime.pool
    # b's answer reaches its receiver before the sender records the attempt: wait for the row.
    await eventually(
        lambda: pool.fetchval("SELECT count(*) = 1 FROM webhook_attempts"), timeout=5
    )  # b's only
    a.gate.set()
    await eventually(lambda: asyncio.sleep(0, len(a.answered(500)) >= 3))  # retried with back-off
    a.status = 200
    await eventually(lambda: asyncio.sleep(0, len(a.answered(200)) == 1))
    await settled(world.app)  # any wrong extra delivery would have been made by now

    assert len(a.answered(200)) == 1 and len(b.received) == 1  # once each after recovery
    assert all(r["verified"] for r in a.received + b.received)
    assert {r["event_id"] for r in a.received} == {b.received[0]["event_id"]}
    assert b.received[0]["data"]["member_id"] == "m-42"  # type: ignore[index]

    async with await signed_client(world.app, *tax) as tax_client:
        [delivery] = (await tax_client.get("/webhooks/deliveries")).json()
        assert delivery["status"] == "delivered"
        assert delivery["attempts"] >= 4 and delivery["last_status"] == 200
        replay = await tax_client.post(f"/webhooks/deliveries/{delivery['id']}/replay")
        assert replay.status_code == 202
    await eventually(lambda: asyncio.sleep(0, len(a.answered(200)) == 2))
    assert a.received[-1]["event_id"] == delivery["event_id"] and a.received[-1]["verified"]
    assert len(b.received) == 1  # replaying a's delivery does not touch b


async def test_subscriptions_are_owned_scoped_and_checked(world: World) -> None:
    tax = await issue_credential(
        world.dsn, world.schema, scopes=["webhooks:manage"], department="tax"
    )
    hr = await issue_credential(
        world.dsn, world.schema, scopes=["webhooks:manage"], department="hr"
    )
    staff = await issue_credential(world.dsn, world.schema, scopes=["webhooks:manage"])
    limited = await issue_credential(
        world.dsn,
        world.schema,
        scopes=["webhooks:manage"],
        department="employer_hr",
        organisations=["u-acme"],
    )
    no_scope = await issue_credential(world.dsn, world.schema, scopes=["notes:read"])
    url = f"{world.receiver_url}/hooks/a"
    async with await signed_client(world.app, *tax) as tax_client:
        created = await subscribe(tax_client, url)
        bad_url = await tax_client.post(
            "/webhooks/subscriptions", json={"url": "http://tax.example/h", "event_types": OFFERED}
        )
        assert bad_url.status_code == 422 and bad_url.json()["errors"][0]["field"] == "url"
        bad_type = await tax_client.post(
            "/webhooks/subscriptions",
            json={"url": url, "event_types": [*OFFERED, "gonghui.membership.member.joined"]},
        )
        assert bad_type.status_code == 422
        assert bad_type.json()["errors"][0]["field"] == "event_types[1]"
    async with await signed_client(world.app, *hr) as hr_client:
        assert (await hr_client.get("/webhooks/event-types")).json() == OFFERED
        assert (await hr_client.get("/webhooks/subscriptions")).json() == []
        gone = await hr_client.delete(f"/webhooks/subscriptions/{created['id']}")
        assert gone.status_code == 404  # another department's subscription is invisible
    async with await signed_client(world.app, *staff) as staff_client:
        listed = (await staff_client.get("/webhooks/subscriptions")).json()
        assert [s["id"] for s in listed] == [created["id"]]
        assert "secret" not in listed[0]
    async with await signed_client(world.app, *limited) as limited_client:
        refused = await limited_client.post(
            "/webhooks/subscriptions", json={"url": url, "event_types": OFFERED}
        )
        assert refused.status_code == 403
    async with await signed_client(world.app, *no_scope) as no_scope_client:
        assert (await no_scope_client.get("/webhooks/subscriptions")).status_code == 403
    async with await signed_client(world.app, *tax) as tax_client:
        assert (
            await tax_client.delete(f"/webhooks/subscriptions/{created['id']}")
        ).status_code == 204
        assert (await tax_client.get("/webhooks/subscriptions")).json() == []


async def test_events_before_a_subscription_or_of_other_types_are_not_delivered(
    world: World,
) -> None:
    emitter = await issue_credential(world.dsn, world.schema, scopes=["events:emit"])
    tax = await issue_credential(
        world.dsn, world.schema, scopes=["webhooks:manage"], department="tax"
    )
    a = world.receiver.endpoints["a"]
    async with await signed_client(world.app, *emitter) as client:
        assert (await client.post("/members/m-early/unreachable")).status_code == 202
    pool = world.app.state.runtime.pool
    # Wait until the consumer has applied the early event (the inbox records it).
    await eventually(
        lambda: pool.fetchval(
            "SELECT count(*) = 1 FROM inbox WHERE event_type = $1", RecipientUnreachable.type
        )
    )
    async with await signed_client(world.app, *tax) as tax_client:
        a.secret = str((await subscribe(tax_client, f"{world.receiver_url}/hooks/a"))["secret"])
    async with await signed_client(world.app, *emitter) as client:
        assert (await client.post("/members/m-late/unreachable")).status_code == 202
    await eventually(lambda: asyncio.sleep(0, len(a.answered(200)) == 1))
    await settled(world.app)
    assert [r["data"]["member_id"] for r in a.received] == ["m-late"]  # type: ignore[index]
    assert uuid.UUID(str(a.received[0]["event_id"]))
