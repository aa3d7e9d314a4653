"""The per-process credential cache never outlives a change: each request is confirmed against
the tables in the statement that spends its nonce (shared.auth.credentials.spend_nonces)."""

from __future__ import annotations

import asyncpg
import pytest

from shared.auth import credentials
from shared.settings import DEVELOPMENT_CREDENTIALS_KEY
from tests.integration.auth import test_signed_requests
from tests.integration.auth.test_signed_requests import Probe, refused, signed_request

pytestmark = pytest.mark.integration
probe = test_signed_requests.probe  # the same running probe service (a fixture)


async def admin(probe: Probe) -> asyncpg.Connection:
    return await asyncpg.connect(probe.dsn, server_settings={"search_path": probe.schema})


async def test_a_secret_rotated_after_the_credential_was_cached_signs_at_once(
    probe: Probe,
) -> None:
    app_id, old = await probe.issue("notes:write")
    async with probe.client(app_id, old) as client:
        assert (await client.post("/unions/u1/notes", json={"text": "a"})).status_code == 201
    conn = await admin(probe)
    try:
        new = await credentials.rotate(conn, DEVELOPMENT_CREDENTIALS_KEY, app_id)
    finally:
        await conn.close()
    for secret in (new, old):
        async with probe.client(app_id, secret) as client:
            assert (await client.post("/unions/u1/notes", json={"text": "b"})).status_code == 201


async def test_scopes_changed_behind_the_cache_apply_to_the_next_request(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:write")
    async with probe.client(app_id, secret) as client:
        assert (await client.post("/unions/u1/notes", json={"text": "a"})).status_code == 201
    conn = await admin(probe)
    try:
        await conn.execute(
            "UPDATE credentials SET scopes = '{notes:read}' WHERE app_id = $1", app_id
        )
    finally:
        await conn.close()
    await refused(probe, signed_request(app_id, secret), 403, "missing_scope", app_id)


async def test_a_replay_is_refused_when_the_credential_is_cached(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:write")
    first = signed_request(app_id, secret)
    async with probe.unsigned() as client:
        assert (await client.send(first)).status_code == 201
        assert probe.app.state.credential_cache.cached(app_id) is not None
    again = signed_request(app_id, secret, nonce=first.headers["X-Gonghui-Nonce"])
    await refused(probe, again, 401, "replayed_nonce", app_id)
