"""City-scale roster: 100,000 generated members imported, each join consumed by another service."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from services.notifications.main import Settings as NotificationsSettings
from services.notifications.main import build as build_notifications
from tests.integration.membership.conftest import Membership
from tests.integration.membership.test_membership_roster import finished, submit_csv
from tests.support.people import roster_rows
from tests.support.service import running, settings_for

pytestmark = pytest.mark.integration
ROWS = 100_000


async def test_a_100k_roster_imports_and_every_join_reaches_notifications(
    membership: Membership, database, servers
) -> None:
    ids = await membership.union_tree()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id_number", "name", "mobile", "categories"])
    writer.writeheader()
    writer.writerows(roster_rows(ROWS, start=2_000_000))
    answer = await submit_csv(membership, ids["factory"], out.getvalue().encode(), "city-100k")
    assert answer.status_code == 202, answer.text
    settings = settings_for(NotificationsSettings, database, servers, membership.namespace)
    async with running(build_notifications, settings) as (app, _):
        job = await finished(membership.staff, answer.json(), timeout=300)
        assert job["state"] == "done", job
        assert (job["rows_read"], job["joined"], job["rejected"]) == (ROWS, ROWS, 0)
        assert job["events_written"] == ROWS
        pool = app.state.runtime.pool
        deadline = asyncio.get_running_loop().time() + 300
        while (
            seen := await pool.fetchval(
                "SELECT count(*) FROM members WHERE union_id = $1", ids["factory"]
            )
        ) < ROWS:
            assert asyncio.get_running_loop().time() < deadline, f"notifications saw {seen}"
            await asyncio.sleep(0.5)
        assert seen == ROWS
