"""Each request is timed under its route's template and the status it got; credentials never
reach a span's URL; a consumer drops the lag of partitions it no longer holds."""

from __future__ import annotations

import uuid

import httpx
from aiokafka import TopicPartition
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from shared.consumer import LagReport
from shared.http import create_app
from shared.telemetry import redacted_url

COUNT = "gonghui_http_request_duration_seconds_count"


def count(service: str, route: str, method: str, status: str) -> float:
    labels = {"service": service, "route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value(COUNT, labels) or 0.0


def test_requests_are_counted_by_route_template_method_and_status() -> None:
    service = f"probe{uuid.uuid4().hex[:6]}"
    app = create_app(service)

    @app.get("/members/{member_id}")
    async def member(member_id: int) -> dict[str, int]:
        return {"id": member_id}

    client = TestClient(app, raise_server_exceptions=False)
    for member_id in ("1", "2", "x"):
        client.get(f"/members/{member_id}")
    client.get("/nowhere/at/all")
    client.get("/members/1%01")  # the target guard refuses it before any route matches
    assert count(service, "/members/{member_id}", "GET", "200") == 2
    assert count(service, "/members/{member_id}", "GET", "422") == 1
    assert count(service, "unmatched", "GET", "404") == 1
    assert count(service, "unmatched", "GET", "400") == 1
    assert client.get("/metrics").status_code == 200
    assert count(service, "/metrics", "GET", "200") == 1


def test_a_span_url_keeps_no_token_or_secret() -> None:
    url = httpx.URL("https://api.weixin.qq.com/cgi-bin/token?grant_type=x&appid=wx1&secret=s3")
    assert redacted_url(url) == (
        "https://api.weixin.qq.com/cgi-bin/token?grant_type=x&appid=REDACTED&secret=REDACTED"
    )
    send = httpx.URL("http://sim/cgi-bin/message/template/send?access_token=T0K3N")
    assert "T0K3N" not in redacted_url(send)


class Consumer:
    """What LagReport reads from an aiokafka consumer."""

    def __init__(self, held: dict[TopicPartition, tuple[int | None, int]]) -> None:
        self.held = held

    def assignment(self) -> set[TopicPartition]:
        return set(self.held)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.held[tp][0]

    async def position(self, tp: TopicPartition) -> int:
        return self.held[tp][1]


def lag(group: str, partition: int) -> float | None:
    labels = {"service": "probe", "group": group, "topic": "t", "partition": str(partition)}
    return REGISTRY.get_sample_value("gonghui_consumer_lag", labels)


async def test_lag_is_reported_for_held_partitions_and_dropped_after_a_rebalance() -> None:
    group = f"g{uuid.uuid4().hex[:6]}"
    report = LagReport("probe", group, every=0)
    first, second, unfetched = (TopicPartition("t", p) for p in (0, 1, 2))
    consumer = Consumer({first: (120, 100), second: (50, 50), unfetched: (None, 0)})
    await report.report(consumer)
    assert (lag(group, 0), lag(group, 1), lag(group, 2)) == (20, 0, None)
    consumer.held = {second: (70, 55)}
    await report.report(consumer)
    assert (lag(group, 0), lag(group, 1)) == (None, 15)
