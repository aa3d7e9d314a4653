"""The platform as it runs in production: every service its own process, real Kafka, Postgres
and the WeChat simulator. Members join, enrol, and hear about it on WeChat."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.auth.client import SignedAuth
from tests.support.auth import issue_credential
from tests.support.database import ScratchDatabase
from tests.support.people import credit_code, id_number, mobile
from tests.support.platform import Platform
from tests.support.servers import SERVICES

pytestmark = pytest.mark.e2e


async def signed(
    platform: Platform,
    database: ScratchDatabase,
    service: str,
    *scopes: str,
    department: str = "federation",
) -> httpx.AsyncClient:
    app_id, secret = await issue_credential(
        database.dsn(service), service, scopes=scopes, department=department
    )
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


async def union_with_member(
    membership: httpx.AsyncClient, tag: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A city, a county, an enterprise union, and a member who joins it online."""
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
        headers=headers,
    )
    assert joined.status_code == 201, joined.text
    return dict(joined.json())


async def bind(notifications: httpx.AsyncClient, member_id: str, openid: str) -> None:
    """Bind the member's WeChat openid. Notifications learns a member from membership's events a
    moment after the join, and answers 404 ``unknown_member`` until then: retry."""

    async def bound() -> bool:
        answer = await notifications.put(f"/members/{member_id}/binding", json={"openid": openid})
        if answer.status_code == 404 and answer.json()["errors"][0]["code"] == "unknown_member":
            return False
        assert answer.status_code == 200, answer.text
        return True

    await poll(bound)


async def messages_to(platform: Platform, openid: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=platform.urls["wechat_simulator"]) as sim:
        answer = await sim.get("/_sim/messages", params={"openid": openid})
        return list(answer.json()["items"])


async def test_every_service_is_ready_and_lists_its_scopes(platform: Platform) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for service in SERVICES:
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
        trace_id = secrets.token_hex(16)
        traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
        member = await union_with_member(membership, tag, {"traceparent": traceparent})
        openid = f"o{tag}member"
        await bind(notifications, member["id"], openid)
        messages = await poll(lambda: messages_to(platform, openid))
    assert len(messages) == 1
    welcome = messages[0]
    assert member["card_number"] in str(welcome["data"])
    assert welcome["traceparent"].split("-")[1] == trace_id


async def test_a_confirmed_enrolment_reaches_the_member_on_wechat(
    platform: Platform, database: ScratchDatabase
) -> None:
    tag = uuid.uuid4().hex[:6]
    membership = await signed(
        platform, database, "membership", "organisations:write", "members:join"
    )
    notifications = await signed(platform, database, "notifications", "bindings:write")
    training = await signed(platform, database, "training", "training:manage", "training:enrol")
    async with membership, notifications, training:
        member = await union_with_member(membership, tag)
        openid = f"o{tag}learner"
        await bind(notifications, member["id"], openid)
        course = await training.post(
            "/courses",
            json={"title": "工会干部培训班", "kind": "cadre_training", "provider": "亳州市总工会"},
        )
        assert course.status_code == 201, course.text
        now = datetime.now(UTC)
        klass = await training.post(
            f"/courses/{course.json()['course_id']}/classes",
            json={
                "name": "第1期",
                "capacity": 30,
                "enrolment_opens_at": now.isoformat(),
                "enrolment_closes_at": (now + timedelta(days=5)).isoformat(),
                "sessions": [
                    {
                        "starts_at": (now + timedelta(days=6)).isoformat(),
                        "ends_at": (now + timedelta(days=6, hours=3)).isoformat(),
                        "venue": "亳州市职工服务中心",
                    }
                ],
            },
        )
        assert klass.status_code == 201, klass.text
        path = f"/classes/{klass.json()['class_id']}/enrolments"

        async def enrolled() -> dict[str, Any] | None:
            # Training learns of the member from membership's events, a moment after the join.
            answer = await training.post(path, json={"member_id": member["id"]})
            return dict(answer.json()) if answer.status_code == 201 else None

        enrolment = await poll(enrolled)
        assert enrolment["status"] == "confirmed"

        async def confirmation() -> list[dict[str, Any]]:
            found = await messages_to(platform, openid)
            return [m for m in found if m["template_id"] == "gh-tpl-enrolment-status"]

        messages = await poll(confirmation)
    assert len(messages) == 1
    assert "工会干部培训班" in str(messages[0]["data"])


async def test_a_union_established_in_membership_has_its_remittances_matched_by_union_funds(
    platform: Platform, database: ScratchDatabase
) -> None:
    tag = uuid.uuid4().hex[:6]
    membership = await signed(
        platform, database, "membership", "organisations:write", "members:join"
    )
    staff = await signed(platform, database, "union_funds", "reports:read")
    tax = await signed(platform, database, "union_funds", "remittances:submit", department="tax")
    async with membership, staff, tax:
        await union_with_member(membership, tag)
        union = f"union-{tag}"

        async def known() -> dict[str, Any] | None:
            # Union funds learns the union from membership's events, a moment after.
            answer = await staff.get("/remittances", params={"union_id": union})
            return dict(answer.json()) if answer.status_code == 200 else None

        code = (await poll(known))["credit_code"]
        assert code == credit_code(int(tag, 16))
        sent = await tax.post(
            "/remittances/batches",
            json={
                "batch_id": f"e2e-{tag}",
                "records": [
                    {
                        "employer_credit_code": code,
                        "employer_name": "亳州药业有限公司",
                        "period": "2025-10",
                        "payroll_base_fen": 40_000_000,
                        "amount_fen": 800_000,
                        "paid_on": "2025-11-10",
                    }
                ],
            },
        )
        assert sent.status_code == 201, sent.text
        record = sent.json()["records"][0]
        assert (record["outcome"], record["union_id"]) == ("matched", union)
