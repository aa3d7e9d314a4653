"""Union funds learns unions from membership's events alone, over Kafka: membership and union
funds run in-process side by side, each with its own schema and role, and share nothing but the
topics. An organisation established in membership becomes matchable in union funds; renamed or
moved, its reports follow; dissolved, it is matched no more from its dissolution day on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.membership import main as membership
from services.union_funds import handlers
from shared.events.membership import (
    OrganisationChanged,
    OrganisationDissolved,
    OrganisationEstablished,
)
from tests.integration.union_funds.conftest import UnionFunds
from tests.support.auth import issue_credential, signed_client
from tests.support.database import ScratchDatabase
from tests.support.people import credit_code
from tests.support.servers import Servers
from tests.support.service import running, settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def membership_staff(
    database: ScratchDatabase, servers: Servers, namespace: str
) -> AsyncIterator[httpx.AsyncClient]:
    """Membership on the same topics as the union_funds fixture (same namespace)."""
    settings = settings_for(membership.Settings, database, servers, namespace)
    async with running(membership.build, settings) as (app, _):
        app_id, secret = await issue_credential(
            database.dsn("membership"), "membership", scopes=["organisations:write"]
        )
        async with await signed_client(app, app_id, secret) as staff:
            yield staff


def remitted(code: str, period: str) -> dict[str, Any]:
    return {
        "employer_credit_code": code,
        "employer_name": "亳州药业有限公司",
        "period": period,
        "payroll_base_fen": 40_000_000,
        "amount_fen": 800_000,
        "paid_on": "2025-12-10",
    }


async def test_the_view_of_unions_follows_membership_events(
    membership_staff: httpx.AsyncClient, union_funds: UnionFunds
) -> None:
    tag = uuid.uuid4().hex[:6]
    city, county, other, union = (f"{k}-{tag}" for k in ("city", "county", "other", "pharma"))
    code = credit_code(int(tag, 16) * 10 + 3)
    for body in (
        {"id": city, "name": "亳州市总工会", "kind": "city_federation"},
        {"id": county, "name": "谯城区总工会", "kind": "county_federation", "parent_id": city},
        {"id": other, "name": "利辛县总工会", "kind": "county_federation", "parent_id": city},
        {
            "id": union,
            "name": "亳州药业工会",
            "kind": "enterprise",
            "parent_id": county,
            "founded_on": "2020-01-01",
            "employer": {
                "name": "亳州药业有限公司",
                "credit_code": code,
                "headcount_band": "100-499",
                "address": "亳州市谯城区",
            },
        },
    ):
        answer = await membership_staff.post("/organisations", json=body)
        assert answer.status_code == 201, answer.text
    staff = union_funds.staff

    async def known() -> bool:
        listed = await staff.get("/remittances", params={"union_id": union})
        return listed.status_code == 200 and listed.json()["credit_code"] == code

    await eventually(known)

    async def arrears(under: str) -> dict[str, dict[str, Any]]:
        # November: the remittances below are for October, then (once dissolved) November.
        answer = await staff.get(
            "/remittances/arrears", params={"period": "2025-11", "under": under}
        )
        assert answer.status_code == 200, answer.text
        return {i["union_id"]: i for i in answer.json()["items"]}

    owing = (await arrears(county))[union]
    assert (owing["name"], owing["employer_name"]) == ("亳州药业工会", "亳州药业有限公司")

    async with await union_funds.client("remittances:submit", department="tax") as tax:
        first = await tax.post(
            "/remittances/batches",
            json={"batch_id": f"follow-{tag}-1", "records": [remitted(code, "2025-10")]},
        )
        assert first.status_code == 201, first.text
        assert (first.json()["records"][0]["outcome"], first.json()["records"][0]["union_id"]) == (
            "matched",
            union,
        )

        # Renamed and moved in membership: union funds' reports follow.
        renamed = await membership_staff.patch(f"/organisations/{union}", json={"name": "药业工会"})
        assert renamed.status_code == 200, renamed.text
        moved = await membership_staff.post(
            f"/organisations/{union}/move", json={"parent_id": other}
        )
        assert moved.status_code == 200, moved.text

        async def followed() -> bool:
            found = (await arrears(other)).get(union, {})
            return found.get("name") == "药业工会"

        await eventually(followed)
        assert union not in await arrears(county)

        # Dissolved in membership (a day ago, in any time zone): matched no more.
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
        dissolved = await membership_staff.post(
            f"/organisations/{union}/dissolve", json={"dissolved_on": yesterday.isoformat()}
        )
        assert dissolved.status_code == 200, dissolved.text

        async def gone() -> bool:
            return union not in await arrears(city)

        await eventually(gone)
        second = await tax.post(
            "/remittances/batches",
            json={"batch_id": f"follow-{tag}-2", "records": [remitted(code, "2025-11")]},
        )
        assert second.status_code == 201, second.text
        assert second.json()["records"][0]["outcome"] == "unmatched"
    unorganised = await staff.get("/remittances/unorganised", params={"period": "2025-11"})
    assert code in {i["credit_code"] for i in unorganised.json()["items"]}
    # Its remittances are still found under it, the first one matched when it arrived.
    listed = await staff.get("/remittances", params={"union_id": union})
    assert [(r["period"], r["matched_union_id"]) for r in listed.json()["items"]] == [
        ("2025-10", union),
        ("2025-11", None),
    ]


async def test_an_event_older_than_what_a_union_shows_changes_nothing(
    union_funds: UnionFunds,
) -> None:
    """The runbook seeds the view from membership's table; membership's events still retained in
    Kafka are then replayed to the new consumer group, and must not undo the seed."""
    runtime = union_funds.app.state.runtime
    union = f"seeded-{uuid.uuid4().hex[:6]}"
    seeded_at = datetime.now(UTC)

    async def apply(event: Any, at: datetime) -> None:
        await handlers.organisation_event(event, union_funds.unit_for(event, at))

    await apply(
        OrganisationEstablished(
            organisation_id=union,
            name="药业工会",
            kind="enterprise",
            parent_id="city",
            path=["city"],
            employer_credit_code=credit_code(5),
        ),
        seeded_at,
    )
    renamed_long_ago = OrganisationChanged(
        organisation_id=union, name="旧名", parent_id="city", path=["city"], changed_fields=["name"]
    )
    await apply(renamed_long_ago, seeded_at - timedelta(days=3))
    row = await runtime.pool.fetchrow("SELECT name, as_of FROM unions WHERE id = $1", union)
    assert (row["name"], row["as_of"]) == ("药业工会", seeded_at)
    await apply(OrganisationDissolved(organisation_id=union, dissolved_on=date(2026, 1, 5)), now())
    assert await runtime.pool.fetchval(
        "SELECT dissolved_on FROM unions WHERE id = $1", union
    ) == date(2026, 1, 5)


def now() -> datetime:
    return datetime.now(UTC)
