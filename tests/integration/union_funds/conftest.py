"""Union funds in-process against the real servers. Unions reach it as membership's organisation
events: here applied through the service's own handler (:meth:`UnionFunds.announce`), as its
consumer applies them; ``test_union_funds_projection`` runs membership too and lets Kafka carry
them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
import pytest
from fastapi import FastAPI

from services.union_funds import handlers
from services.union_funds.main import Settings, build
from services.union_funds.unit_of_work import UnionFundsUnitOfWork
from shared.events.base import EventData
from shared.events.envelope import Envelope
from shared.events.membership import OrganisationDissolved, OrganisationEstablished
from tests.support.auth import issue_credential, signed_client
from tests.support.database import ScratchDatabase
from tests.support.people import credit_code
from tests.support.servers import Servers
from tests.support.service import running, settings_for

STAFF_SCOPES = ("reports:read", "remittances:submit", "subsidies:write")


@dataclass
class UnionFunds:
    app: FastAPI
    staff: httpx.AsyncClient
    namespace: str
    database: ScratchDatabase

    async def client(
        self,
        *scopes: str,
        department: str = "federation",
        organisations: list[str] | None = None,
    ) -> httpx.AsyncClient:
        app_id, secret = await issue_credential(
            self.database.dsn("union_funds"),
            "union_funds",
            scopes=scopes,
            department=department,
            organisations=organisations,
        )
        return await signed_client(self.app, app_id, secret)

    async def announce(self, *events: EventData) -> None:
        """Membership's events, applied by the handler its consumer calls, each in its own unit
        of work, published now."""
        for event in events:
            await handlers.organisation_event(event, self.unit_for(event, datetime.now(UTC)))

    def unit_for(self, event: EventData, at: datetime) -> UnionFundsUnitOfWork:
        """A unit of work as the consumer gives the handler: caused by the event, published at."""
        runtime = self.app.state.runtime
        uow = UnionFundsUnitOfWork(runtime.pool, runtime.settings.events_topic)
        uow.cause = Envelope.wrap(event).model_copy(update={"time": at})
        return uow

    async def establish(
        self, parent: str, kind: str, founded_on: str, code: str, name: str | None = None
    ) -> str:
        union_id = f"{kind}-{uuid.uuid4().hex[:8]}"
        path = await self.app.state.runtime.pool.fetchval(
            "SELECT path || id FROM unions WHERE id = $1", parent
        )
        await self.announce(
            OrganisationEstablished(
                organisation_id=union_id,
                name=name or f"{kind} 工会",
                kind=kind,
                parent_id=parent,
                path=path,
                founded_on=date.fromisoformat(founded_on),
                employer_credit_code=code,
                employer_name=f"亳州{kind}单位",
            )
        )
        return union_id

    async def dissolve(self, union_id: str, on: str) -> None:
        await self.announce(
            OrganisationDissolved(organisation_id=union_id, dissolved_on=date.fromisoformat(on))
        )

    async def code_of(self, union_id: str) -> str:
        return str(
            await self.app.state.runtime.pool.fetchval(
                "SELECT credit_code FROM unions WHERE id = $1", union_id
            )
        )

    async def union_tree(self) -> dict[str, str]:
        """A city federation, a county federation and two enterprise unions, fresh ids."""
        tag = uuid.uuid4().hex[:6]
        ids = {k: f"{k}-{tag}" for k in ("city", "county", "factory", "depot")}
        serial = int(tag, 16)
        await self.announce(
            OrganisationEstablished(
                organisation_id=ids["city"],
                name="亳州市总工会",
                kind="city_federation",
                parent_id=None,
                path=[],
            ),
            OrganisationEstablished(
                organisation_id=ids["county"],
                name="谯城区总工会",
                kind="county_federation",
                parent_id=ids["city"],
                path=[ids["city"]],
            ),
            *(
                OrganisationEstablished(
                    organisation_id=ids[k],
                    name=f"{k} 工会",
                    kind="enterprise",
                    parent_id=ids["county"],
                    path=[ids["city"], ids["county"]],
                    founded_on=date(2021, 5, 1),
                    employer_credit_code=credit_code(serial * 10 + i),
                    employer_name=f"亳州{k}有限公司",
                )
                for i, k in enumerate(("factory", "depot"))
            ),
        )
        return ids


@pytest.fixture
async def union_funds(
    database: ScratchDatabase, servers: Servers, namespace: str
) -> AsyncIterator[UnionFunds]:
    settings = settings_for(Settings, database, servers, namespace)
    async with running(build, settings) as (app, _):
        app_id, secret = await issue_credential(
            database.dsn("union_funds"), "union_funds", scopes=STAFF_SCOPES
        )
        async with await signed_client(app, app_id, secret) as staff:
            yield UnionFunds(app, staff, namespace, database)
