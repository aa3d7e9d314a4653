"""One trace, exported by OTLP, from a member's online join to the welcome's WeChat call: the HTTP
server span, the relay's producer span, each consumer's process span and the WeChat HTTP client
span, with OpenTelemetry's HTTP and messaging conventions. The services run as real processes
(as in production) against a real OTLP/HTTP receiver and the WeChat simulator; their /metrics
then count the same join, and export every name the dashboard reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.events.membership import MemberJoined
from tests.e2e.test_platform import bind, signed, union_with_member
from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.otlp import Receiver, Span, otlp_receiver
from tests.support.platform import Platform, launch_platform, wait_ready
from tests.support.prometheus import metric_names, samples, scraped_names
from tests.support.servers import ROOT, SERVICES, Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
# Services that apply MemberJoined, each in its consumer group.
FOLLOWERS = ("mutual_aid", "training", "notifications")


@pytest.fixture
async def own_database(servers: Servers) -> AsyncIterator[ScratchDatabase]:
    """Not the suite's shared database: these processes' relays would publish its rows."""
    db = await create_database(servers)
    yield db
    await drop_database(db)


def one(spans: list[Span], what: str) -> Span:
    assert len(spans) == 1, f"{what}: {spans}"
    return spans[0]


async def test_a_join_is_one_trace_from_the_request_to_the_wechat_call(
    own_database: ScratchDatabase, servers: Servers, tmp_path: Path
) -> None:
    namespace = f"trace{uuid.uuid4().hex[:6]}."
    async with otlp_receiver() as receiver:
        telemetry = {"OTEL_BSP_SCHEDULE_DELAY": "100"}  # export within 0.1 s, not 5 s
        for service in SERVICES:
            prefix = f"GONGHUI_{service.upper()}_"
            telemetry[f"{prefix}TELEMETRY"] = "otlp"
            telemetry[f"{prefix}OTLP_ENDPOINT"] = f"{receiver.url}/v1/traces"
        platform = launch_platform(
            {s: own_database.dsn(s) for s in SERVICES},
            servers.kafka_bootstrap,
            namespace,
            tmp_path,
            settings=telemetry,
        )
        try:
            await wait_ready(platform, timeout=300)  # six processes start on a shared machine
            await joined_and_welcomed(platform, own_database, receiver, namespace)
            await counted(platform, namespace)
        finally:
            platform.stop()


def wechat_sends(spans: list[Span]) -> list[Span]:
    return [
        s
        for s in spans
        if s.kind == "CLIENT" and "/message/template/send" in str(s.attributes.get("url.full"))
    ]


def in_group(spans: list[Span], group: str) -> list[Span]:
    return [s for s in spans if s.attributes.get("messaging.consumer.group.name") == group]


async def joined_and_welcomed(
    platform: Platform, database: ScratchDatabase, receiver: Receiver, namespace: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    scopes = ("organisations:write", "members:join")
    membership = await signed(platform, database, "membership", *scopes)
    notifications = await signed(platform, database, "notifications", "bindings:write")
    async with membership, notifications:
        # No traceparent sent: the join's request starts the trace.
        member = await union_with_member(membership, tag)
        await bind(notifications, member["id"], f"o{tag}member")

    async def join() -> Span | None:
        found = [
            s
            for s in receiver.spans
            if s.kind == "SERVER" and s.attributes.get("http.route") == "/members"
        ]
        return found[0] if found else None

    server = await eventually(join, what="the join's server span")
    topic = f"{namespace}membership.events"

    async def whole() -> list[Span] | None:
        spans = receiver.trace(server.trace_id)
        followed = all(in_group(spans, f"{namespace}{f}") for f in FOLLOWERS)
        return spans if followed and wechat_sends(spans) else None

    spans = await eventually(whole, timeout=60, what="the trace through every consumer to WeChat")

    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.response.status_code"] == 201
    send = one([s for s in spans if s.kind == "PRODUCER"], "the relay's send span")
    assert send.service == "gonghui-membership" and send.name == f"send {topic}"
    assert send.parent_id == server.span_id
    assert send.attributes["messaging.system"] == "kafka"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.destination.name"] == topic
    for follower in FOLLOWERS:
        process = one(in_group(spans, f"{namespace}{follower}"), f"{follower}'s process span")
        assert process.service == f"gonghui-{follower}" and process.name == f"process {topic}"
        assert process.parent_id == server.span_id  # the traceparent the event carries
        assert process.attributes["messaging.system"] == "kafka"
        assert process.attributes["messaging.operation.type"] == "process"
        assert process.attributes["messaging.destination.name"] == topic
    wechat = one(wechat_sends(spans), "the WeChat call")
    assert wechat.service == "gonghui-notifications"
    assert wechat.attributes["http.request.method"] == "POST"
    assert wechat.attributes["url.full"].startswith(platform.urls["wechat_simulator"])
    assert "access_token=REDACTED" in wechat.attributes["url.full"]
    assert wechat.attributes["http.response.status_code"] == 200


async def counted(platform: Platform, namespace: str) -> None:
    joined = MemberJoined.type
    async with httpx.AsyncClient(timeout=10) as client:

        async def lag_reported() -> dict[str, str] | None:
            """Every service's metrics, once each follower has reported its lag (a consumer
            reports it at most once a second, after it has fetched)."""
            scrapes = {s: (await client.get(f"{platform.urls[s]}/metrics")).text for s in SERVICES}
            reported = all(samples(scrapes[f], "gonghui_consumer_lag") for f in FOLLOWERS)
            return scrapes if reported else None

        scrapes = await eventually(lag_reported, timeout=30, what="every follower's lag")
    published = samples(scrapes["membership"], "gonghui_events_published_total")
    assert published[(("service", "membership"), ("type", joined))] == 1
    joins = samples(scrapes["membership"], "gonghui_http_request_duration_seconds_count")
    join = (("method", "POST"), ("route", "/members"), ("service", "membership"), ("status", "201"))
    assert joins[join] == 1
    for follower in FOLLOWERS:
        group = f"{namespace}{follower}"
        applied = samples(scrapes[follower], "gonghui_events_applied_total")
        assert applied[(("group", group), ("service", follower), ("type", joined))] == 1
        lag = samples(scrapes[follower], "gonghui_consumer_lag")
        assert {dict(labels)["group"] for labels in lag} == {group}
    answers = samples(scrapes["notifications"], "gonghui_wechat_errcode_total")
    assert answers[(("api", "/cgi-bin/message/template/send"), ("errcode", "0"))] == 1
    assert samples(scrapes["notifications"], "gonghui_wechat_token_refreshes_total")[()] >= 1
    # Every name the dashboard reads is in what the services serve (``up`` is Prometheus's).
    dashboard = json.loads((ROOT / "deploy/grafana/gonghui.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    read = set().union(*(metric_names(e) for e in exprs)) - {"up"}
    served = set().union(*(scraped_names(text) for text in scrapes.values()))
    assert read - served == set()
