"""The platform as it runs in production: every service its own process, real Kafka, Postgres
and the WeChat simulator. A member joins and receives the welcome on WeChat, in one trace."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import httpx
import pytest

from shared.auth.client import SignedAuth
from tests.support.auth import issue_credential
from tests.support.database import ScratchDatabase
from tests.support.people import credit_code, id_number, mobile
from tests.support.platform import Platform

pytestmark = pytest.mark.e2e


async def signed(
    platform: Platform, database: ScratchDatabase, service: str, *scopes: str
) -> httpx.AsyncClient:
    app_id, secret = await issue_credential(database.dsn(service), service, scopes=scopes)
    return httpx.AsyncClient(
        base_url=platform.urls[service], auth=SignedAuth(app_id, secret), timeout=30
    )


async def poll(fetch: Any, timeout: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await fetch()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, "nothing arrived in time"
        await asyncio.sleep(0.3)


async def test_every_service_is_ready_and_lists_its_scopes(platform: Platform) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for service in ("membership", "mutual_aid", "training", "notifications"):
            url = platform.urls[service]
            assert (await client.get(f"{url}/readyz")).json()["status"] == "ready"
            spec = (await client.get(f"{url}/openapi.json")).json()
            assert "securitySchemes" in spec.get("components", {}), service


async def test_a_member_who_joins_receives_the_welcome_on_wechat_in_one_trace(
    platform: Platform, database: ScratchDatabase
) -> None:
    tag = uuid.uuid4().hex[:6]
    membership = await signed(
        platform, database, "membership", "organisations:write", "members:join"
    )
    notifications = await signed(platform, database, "notifications", "bindings:write")
    async with membership, notifications:
        for body in (
            {"id": f"city-{tag}", "name": "亳州市总工会", "kind": "city_federation"},
            {
                "id": f"county-{tag}",
                "name": "谯城区总工会",
                "kind": "county_federation",
                "parent_id": f"city-{tag}",
            },
            {
                "id": f"union-{tag}",
                "name": "亳州药业工会",
                "kind": "enterprise",
                "parent_id": f"county-{tag}",
                "founded_on": "2020-01-01",
                "employer": {
                    "name": "亳州药业有限公司",
                    "credit_code": credit_code(int(tag, 16)),
                    "headcount_band": "100-499",
                    "address": "亳州市",
                },
            },
        ):
            assert (await membership.post("/organisations", json=body)).status_code == 201
        trace_id = secrets.token_hex(16)
        joined = await membership.post(
            "/members",
            json={
                "name": "王芳",
                "id_number": id_number(int(tag, 16) % 100_000),
                "mobile": mobile(1),
                "channel": "online",
                "union_id": f"union-{tag}",
                "employer_name": "亳州药业有限公司",
            },
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
        assert joined.status_code == 201, joined.text
        member = joined.json()
        openid = f"o{tag}member"
        bound = await notifications.put(f"/members/{member['id']}/binding", json={"openid": openid})
        assert bound.status_code == 200, bound.text

        async with httpx.AsyncClient(base_url=platform.urls["wechat_simulator"]) as sim:

            async def delivered() -> list[dict[str, Any]]:
                answer = await sim.get("/_sim/messages", params={"openid": openid})
                return answer.json()["items"]

            messages = await poll(delivered)
    assert len(messages) == 1
    welcome = messages[0]
    assert member["card_number"] in str(welcome["data"])
    assert welcome["traceparent"].split("-")[1] == trace_id
