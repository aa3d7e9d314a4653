from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from services.membership.main import Settings, build
from tests.support.auth import issue_credential, signed_client
from tests.support.database import ScratchDatabase
from tests.support.people import credit_code
from tests.support.service import running, settings_for

STAFF_SCOPES = (
    "organisations:read",
    "organisations:write",
    "members:join",
    "members:read",
    "members:write",
    "reports:read",
    "roster:submit",
)


@dataclass
class Membership:
    app: FastAPI
    staff: httpx.AsyncClient
    namespace: str
    database: ScratchDatabase

    async def client(
        self, *scopes: str, organisations: list[str] | None = None
    ) -> httpx.AsyncClient:
        app_id, secret = await issue_credential(
            self.database.dsn("membership"),
            "membership",
            scopes=scopes,
            organisations=organisations,
        )
        return await signed_client(self.app, app_id, secret)

    async def union_tree(self) -> dict[str, str]:
        """A city federation, a county federation and two enterprise unions, fresh ids."""
        tag = uuid.uuid4().hex[:6]
        ids = {k: f"{k}-{tag}" for k in ("city", "county", "factory", "depot")}
        serial = int(tag, 16)
        for body in (
            {"id": ids["city"], "name": "亳州市总工会", "kind": "city_federation"},
            {
                "id": ids["county"],
                "name": "谯城区总工会",
                "kind": "county_federation",
                "parent_id": ids["city"],
            },
            *(
                {
                    "id": ids[k],
                    "name": f"{k} 工会",
                    "kind": "enterprise",
                    "parent_id": ids["county"],
                    "founded_on": "2021-05-01",
                    "employer": {
                        "name": f"亳州{k}有限公司",
                        "credit_code": credit_code(serial * 10 + i),
                        "headcount_band": "100-499",
                        "address": "亳州市谯城区",
                    },
                }
                for i, k in enumerate(("factory", "depot"))
            ),
        ):
            answer = await self.staff.post("/organisations", json=body)
            assert answer.status_code == 201, answer.text
        return ids


@pytest.fixture
async def membership(
    database: ScratchDatabase, servers, namespace: str
) -> AsyncIterator[Membership]:
    async with running(build, settings_for(Settings, database, servers, namespace)) as (app, _):
        app_id, secret = await issue_credential(
            database.dsn("membership"), "membership", scopes=STAFF_SCOPES
        )
        async with await signed_client(app, app_id, secret) as staff:
            yield Membership(app, staff, namespace, database)
