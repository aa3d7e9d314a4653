"""A small demo federation for a fresh platform: ``python -m deploy.demo`` (run by ./gonghui up).

It issues a staff credential in each service (saved to var/demo/credentials.json so you can call
the APIs yourself with ``python -m shared.auth.client``), then builds a county federation with
unions and members through the public APIs. Running it again changes nothing.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from shared.auth import credentials
from shared.auth.client import SignedAuth
from shared.db import connect
from tests.support.people import credit_code, id_number, mobile

ROOT = Path(__file__).resolve().parent.parent
SAVED = ROOT / "var" / "demo" / "credentials.json"
STAFF_SCOPES = {
    "membership": [
        "organisations:read",
        "organisations:write",
        "members:join",
        "members:read",
        "members:write",
        "members:read_personal",
        "reports:read",
        "roster:submit",
    ],
    "notifications": ["notifications:manage", "notifications:read", "bindings:write"],
    "mutual_aid": [
        "plans:write",
        "plans:read",
        "enrolment:write",
        "contributions:write",
        "claims:submit",
        "claims:review",
        "claims:read",
        "backstop:read",
        "reports:read",
    ],
    "training": ["training:manage", "training:enrol", "training:viewing", "reports:read"],
}


def settings(service: str) -> Any:
    return importlib.import_module(f"services.{service}.main").Settings()


async def staff_credentials() -> dict[str, dict[str, str]]:
    if SAVED.exists():
        return json.loads(SAVED.read_text())
    issued: dict[str, dict[str, str]] = {}
    for service, scopes in STAFF_SCOPES.items():
        s = settings(service)
        conn = await connect(s.database_url, s.db_schema)
        try:
            app_id, secret = await credentials.issue(
                conn, s.credentials_key, name="demo staff", department="federation", scopes=scopes
            )
        finally:
            await conn.close()
        issued[service] = {
            "base_url": f"http://127.0.0.1:{s.http_port}",
            "app_id": app_id,
            "secret": secret,
        }
    SAVED.parent.mkdir(parents=True, exist_ok=True)
    SAVED.write_text(json.dumps(issued, indent=2))
    SAVED.chmod(0o600)
    return issued


def client(creds: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=creds["base_url"], auth=SignedAuth(creds["app_id"], creds["secret"]), timeout=30
    )


async def ensure(c: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """POST, treating "already there" (409) as done: the demo may run on a used platform."""
    answer = await c.post(path, json=body)
    if answer.status_code == 409:
        return None
    if answer.status_code >= 400:
        raise RuntimeError(f"demo step POST {path} failed: {answer.status_code} {answer.text}")
    return answer.json()


ORGANISATIONS: list[dict[str, Any]] = [
    {"id": "bozhou", "name": "亳州市总工会", "kind": "city_federation"},
    {"id": "qiaocheng", "name": "谯城区总工会", "kind": "county_federation", "parent_id": "bozhou"},
    {
        "id": "bozhou-pharma",
        "name": "亳州中药饮片有限公司工会",
        "kind": "enterprise",
        "parent_id": "qiaocheng",
        "founded_on": "2019-04-28",
        "employer": {
            "name": "亳州中药饮片有限公司",
            "credit_code": credit_code(1001),
            "headcount_band": "500-999",
            "address": "亳州市谯城区魏武大道",
        },
    },
    {
        "id": "freight-platform",
        "name": "亳州货运平台企业工会",
        "kind": "platform_company",
        "parent_id": "qiaocheng",
        "founded_on": "2021-06-18",
        "employer": {
            "name": "亳州货运平台科技有限公司",
            "credit_code": credit_code(1002),
            "headcount_band": "100-499",
            "address": "亳州市谯城区汤王大道",
        },
    },
]
MEMBERS: list[dict[str, Any]] = [
    {
        "name": "王芳",
        "serial": 11,
        "union_id": "bozhou-pharma",
        "channel": "on_site",
        "categories": ["migrant_worker"],
        "employer_name": "亳州中药饮片有限公司",
    },
    {
        "name": "李强",
        "serial": 12,
        "union_id": "bozhou-pharma",
        "channel": "online",
        "categories": [],
        "employer_name": "亳州中药饮片有限公司",
    },
    {
        "name": "张伟",
        "serial": 13,
        "union_id": "freight-platform",
        "channel": "platform_worker",
        "categories": ["migrant_worker"],
        "employer_name": None,
    },
]


async def membership(c: httpx.AsyncClient) -> list[str]:
    for org in ORGANISATIONS:
        await ensure(c, "/organisations", org)
    member_ids = []
    for m in MEMBERS:
        body = {k: v for k, v in m.items() if k != "serial"} | {
            "id_number": id_number(m["serial"]),
            "mobile": mobile(m["serial"]),
            "joined_on": "2026-03-01",
        }
        answer = await c.post("/members", json=body)
        if answer.status_code == 409:
            member_ids.append(answer.json()["existing_member_id"])
        elif answer.status_code == 201:
            member_ids.append(answer.json()["id"])
        else:
            raise RuntimeError(f"demo join failed: {answer.status_code} {answer.text}")
    print(f"[demo] membership: {len(ORGANISATIONS)} organisations, {len(member_ids)} members")
    return member_ids


async def main() -> int:
    creds = await staff_credentials()
    async with client(creds["membership"]) as c:
        await membership(c)
    print(f"[demo] staff credentials for each service: {SAVED}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
