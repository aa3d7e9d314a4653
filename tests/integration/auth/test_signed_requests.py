"""Signed requests against a running probe service: who gets in, what a refusal leaves behind
(nothing but an audit row), rotation, revocation, organisation limits and the OpenAPI scopes."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from shared.auth import credentials, dependency, signing
from shared.auth.client import GonghuiClient, SignedAuth
from shared.settings import DEVELOPMENT_CREDENTIALS_KEY
from tests.integration.auth.probe import ROLE, running_probe
from tests.support.auth import issue_credential, signed_client
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

ID_NUMBER = "110105194912310021"
MOBILE = "13800138000"


@dataclass
class Probe:
    app: FastAPI
    dsn: str
    schema: str
    pool: asyncpg.Pool

    async def issue(self, *scopes: str, **kwargs: object) -> tuple[str, str]:
        return await issue_credential(self.dsn, self.schema, scopes=scopes, **kwargs)  # type: ignore[arg-type]

    def client(self, app_id: str, secret: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://probe",
            auth=SignedAuth(app_id, secret),
        )

    def unsigned(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://probe"
        )

    async def notes(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM notes"))

    async def audit(self, app_id: str | None = None) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT * FROM audit_log WHERE app_id IS NOT DISTINCT FROM $1 ORDER BY id", app_id
        )

    async def last_audit(self) -> asyncpg.Record:
        return await self.pool.fetchrow("SELECT * FROM audit_log ORDER BY id DESC LIMIT 1")


@pytest.fixture(scope="module")
async def probe(database: ScratchDatabase, servers: Servers) -> AsyncIterator[Probe]:
    with pytest.MonkeyPatch.context() as mp:
        namespace = f"t{uuid.uuid4().hex[:8]}."
        async with running_probe(database, servers, namespace, mp) as app:
            runtime = app.state.runtime
            yield Probe(app, database.dsn(ROLE), runtime.settings.db_schema, runtime.pool)


async def test_a_signed_call_with_the_scope_is_served_and_audited(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:write", department="hr", name="City HR")
    async with probe.client(app_id, secret) as client:
        answer = await client.post("/unions/u1/notes", json={"text": "hello"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["department"] == "hr"
    assert (
        await probe.pool.fetchval("SELECT app_id FROM notes WHERE id = $1", answer.json()["id"])
        == app_id
    )
    [row] = await probe.audit(app_id)
    assert (row["department"], row["method"], row["route"], row["status"], row["outcome"]) == (
        "hr",
        "POST",
        "/unions/{union_id}/notes",
        201,
        "accepted",
    )


async def test_a_signed_get_with_a_query_is_served(probe: Probe) -> None:
    writer = await probe.issue("notes:write", "notes:read")
    async with probe.client(*writer) as client:
        await client.post("/unions/u-q/notes", json={"text": "张三 & co"})
        answer = await client.get("/unions/u-q/notes", params={"text": "张三 & co", "z": "1"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == ["张三 & co"]


async def refused(
    probe: Probe, request: httpx.Request, status: int, outcome: str, app_id: str | None
) -> httpx.Response:
    """Send ``request``; it must be refused with ``status``, change nothing and be audited."""
    before = await probe.notes()
    async with probe.unsigned() as client:
        answer = await client.send(request)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert await probe.notes() == before
    last = await probe.last_audit()
    assert (last["app_id"], last["status"], last["outcome"]) == (app_id, status, outcome)
    assert last["route"] == "/unions/{union_id}/notes"
    return answer


def signed_request(
    app_id: str, secret: str, *, body: bytes = b'{"text": "x"}', **sign_args: object
) -> httpx.Request:
    headers = signing.sign(
        app_id,
        secret,
        method="POST",
        path="/unions/u1/notes",
        body=body,
        **sign_args,  # type: ignore[arg-type]
    )
    return httpx.Request(
        "POST",
        "http://probe/unions/u1/notes",
        content=body,
        headers=headers | {"Content-Type": "application/json"},
    )


async def test_a_large_signed_upload_arrives_whole_and_a_changed_one_is_refused(
    probe: Probe, tmp_path: Path
) -> None:
    # Larger than what the audit middleware keeps in memory: it goes through the disk spool.
    content = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32)
    upload = tmp_path / "roster.csv"
    upload.write_bytes(content)
    app_id, secret = await probe.issue("notes:write")
    async with probe.client(app_id, secret) as client:
        with upload.open("rb") as file:
            answer = await client.post("/unions/u1/attachments", files={"file": ("r.csv", file)})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }

        async def tampered(request: httpx.Request) -> None:
            upload.write_bytes(content[:-1] + b"!")  # changed after the signature was made

        client.event_hooks["request"] = [tampered]
        with upload.open("rb") as file:
            answer = await client.post("/unions/u1/attachments", files={"file": ("r.csv", file)})
    assert answer.status_code == 401, answer.text
    assert answer.json()["errors"][0]["code"] == "bad_signature"


async def test_a_wrong_signature_is_refused(probe: Probe) -> None:
    app_id, _ = await probe.issue("notes:write")
    answer = await refused(
        probe, signed_request(app_id, "not-the-secret"), 401, "bad_signature", app_id
    )
    assert answer.headers["www-authenticate"] == "GonghuiSignature"


async def test_a_body_changed_after_signing_is_refused(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:write")
    request = signed_request(app_id, secret)
    tampered = httpx.Request("POST", request.url, content=b'{"text": "y"}', headers=request.headers)
    await refused(probe, tampered, 401, "bad_signature", app_id)


async def test_a_replayed_request_is_refused(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:write")
    request = signed_request(app_id, secret)
    async with probe.unsigned() as client:
        assert (await client.send(request)).status_code == 201
    again = httpx.Request("POST", request.url, content=request.content, headers=request.headers)
    await refused(probe, again, 401, "replayed_nonce", app_id)


async def test_concurrent_requests_spend_their_nonces_together_and_a_replay_among_them_fails(
    probe: Probe,
) -> None:
    # Sent at once, their nonces are spent by the same statement: each fresh one is accepted,
    # and of two requests with one nonce exactly one.
    app_id, secret = await probe.issue("notes:write")
    first = signed_request(app_id, secret)
    copy = httpx.Request("POST", first.url, content=first.content, headers=first.headers)
    others = [signed_request(app_id, secret) for _ in range(6)]
    before = await probe.notes()
    async with probe.unsigned() as client:
        answers = await asyncio.gather(*(client.send(r) for r in (first, copy, *others)))
    statuses = [a.status_code for a in answers]
    assert sorted(statuses[:2]) == [201, 401], [a.text for a in answers]
    assert statuses[2:] == [201] * 6
    refusal = next(a for a in answers if a.status_code == 401)
    assert refusal.json()["errors"][0]["code"] == "replayed_nonce"
    assert await probe.notes() == before + 7


async def test_one_statement_spends_a_batch_of_nonces_a_repeated_one_once(probe: Probe) -> None:
    app_id, _ = await probe.issue("notes:write")
    credential = await credentials.load(probe.pool, DEVELOPMENT_CREDENTIALS_KEY, app_id)
    assert credential is not None
    stale = dataclasses.replace(credential, fingerprint="changed since it was read")
    now = time.time()
    asked = [(credential, "nonce-aaaaaaaaaaaa", now), (credential, "nonce-aaaaaaaaaaaa", now)]
    asked += [(credential, "nonce-bbbbbbbbbbbb", now), (stale, "nonce-cccccccccccc", now)]
    assert await credentials.spend_nonces(probe.pool, asked) == [True, False, True, None]
    assert await credentials.spend_nonces(probe.pool, asked[2:3]) == [False]


async def test_a_stale_or_future_timestamp_is_refused(probe: Probe) -> None:
    import time

    app_id, secret = await probe.issue("notes:write")
    for skew in (-301, 400):
        stale = signed_request(app_id, secret, timestamp=int(time.time()) + skew)
        await refused(probe, stale, 401, "stale_timestamp", app_id)


async def test_missing_headers_are_refused_and_audited_without_an_app_id(probe: Probe) -> None:
    request = httpx.Request("POST", "http://probe/unions/u1/notes", json={"text": "x"})
    await refused(probe, request, 401, "missing_signature", None)


async def test_an_unknown_app_id_is_refused_and_kept_only_if_it_looks_issued(probe: Probe) -> None:
    await refused(
        probe,
        signed_request("tax-000000000000", "x"),
        401,
        "unknown_credential",
        "tax-000000000000",
    )
    await refused(
        probe, signed_request(ID_NUMBER, "x"), 401, "unknown_credential", "(unrecognised)"
    )


async def test_a_missing_scope_is_refused_with_403(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:read")
    answer = await refused(probe, signed_request(app_id, secret), 403, "missing_scope", app_id)
    assert answer.json()["errors"] == [
        {
            "field": "scope",
            "code": "missing_scope",
            "message": "this credential lacks the scope 'notes:write'",
        }
    ]
    assert (await probe.last_audit())["department"] == "federation"


async def test_a_revoked_credential_is_refused_at_once(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:write")
    async with probe.client(app_id, secret) as client:
        assert (await client.post("/unions/u1/notes", json={"text": "a"})).status_code == 201
        conn = await asyncpg.connect(probe.dsn, server_settings={"search_path": probe.schema})
        await credentials.revoke(conn, app_id)
        await conn.close()
    await refused(probe, signed_request(app_id, secret), 401, "unknown_credential", app_id)


async def test_an_organisation_limit_refuses_other_organisations(probe: Probe) -> None:
    app_id, secret = await probe.issue(
        "notes:write", department="employer_hr", organisations=["u-acme"]
    )
    before = await probe.notes()
    async with probe.client(app_id, secret) as client:
        other = await client.post("/unions/u-other/notes", json={"text": "x"})
        assert other.status_code == 403
        assert other.json()["errors"][0]["field"] == "union_id"
        assert await probe.notes() == before
        own = await client.post("/unions/u-acme/notes", json={"text": "x"})
        assert own.status_code == 201
    statuses = [(r["status"], r["outcome"]) for r in await probe.audit(app_id)]
    assert statuses == [(403, "refused"), (201, "accepted")]


async def test_rotation_keeps_both_secrets_until_the_old_is_retired(probe: Probe) -> None:
    app_id, old = await probe.issue("notes:write")
    conn = await asyncpg.connect(probe.dsn, server_settings={"search_path": probe.schema})
    try:
        new = await credentials.rotate(conn, DEVELOPMENT_CREDENTIALS_KEY, app_id)
        assert new != old
        for secret in (old, new):
            async with probe.client(app_id, secret) as client:
                assert (
                    await client.post("/unions/u1/notes", json={"text": "r"})
                ).status_code == 201
        assert await credentials.retire_old(conn, app_id) == 1
    finally:
        await conn.close()
    async with probe.client(app_id, new) as client:
        assert (await client.post("/unions/u1/notes", json={"text": "r"})).status_code == 201
    await refused(probe, signed_request(app_id, old), 401, "bad_signature", app_id)


async def test_rotation_with_an_end_time_in_the_past_ends_the_old_secret(probe: Probe) -> None:
    from datetime import UTC, datetime, timedelta

    app_id, old = await probe.issue("notes:write")
    conn = await asyncpg.connect(probe.dsn, server_settings={"search_path": probe.schema})
    try:
        second = await credentials.rotate(conn, DEVELOPMENT_CREDENTIALS_KEY, app_id)
        # A second rotation ends the first secret at once: never more than two are valid.
        third = await credentials.rotate(
            conn,
            DEVELOPMENT_CREDENTIALS_KEY,
            app_id,
            old_valid_until=datetime.now(UTC) - timedelta(seconds=1),
        )
    finally:
        await conn.close()
    await refused(probe, signed_request(app_id, old), 401, "bad_signature", app_id)
    await refused(probe, signed_request(app_id, second), 401, "bad_signature", app_id)
    async with probe.client(app_id, third) as client:
        assert (await client.post("/unions/u1/notes", json={"text": "r"})).status_code == 201


async def test_secrets_are_stored_encrypted(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:write")
    stored = await probe.pool.fetchval(
        "SELECT secret_encrypted FROM credential_secrets WHERE app_id = $1", app_id
    )
    assert secret not in stored
    assert credentials.decrypt(DEVELOPMENT_CREDENTIALS_KEY, stored) == secret


async def test_audit_rows_hold_no_personal_data_and_secrets_are_never_logged(
    probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app_id, secret = await probe.issue("notes:write", "notes:read")
    async with probe.client(app_id, secret) as client:
        await client.post(f"/unions/{ID_NUMBER}/notes", json={"text": MOBILE})
        await client.get(f"/unions/{ID_NUMBER}/notes", params={"text": MOBILE})
        await client.get(f"/unions/{MOBILE}/missing/{ID_NUMBER}")
    async with probe.unsigned() as client:
        await client.send(signed_request(MOBILE, secret))
    rows = await probe.pool.fetch("SELECT * FROM audit_log")
    text = repr([dict(r) for r in rows])
    assert app_id in text  # the rows are there...
    assert "(no route)" in text
    assert ID_NUMBER not in text and MOBILE not in text  # ...without the personal data
    assert secret not in caplog.text


async def test_a_call_that_crashes_the_endpoint_is_audited_as_failed(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:write")
    transport = httpx.ASGITransport(app=probe.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://probe", auth=SignedAuth(app_id, secret)
    ) as client:
        assert (await client.post("/unions/u1/explode")).status_code == 500
    [row] = await probe.audit(app_id)
    assert (row["route"], row["status"], row["outcome"]) == (
        "/unions/{union_id}/explode",
        500,
        "failed",
    )


async def test_unsigned_calls_to_open_routes_are_not_audited(probe: Probe) -> None:
    before = await probe.pool.fetchval("SELECT count(*) FROM audit_log")
    async with probe.unsigned() as client:
        assert (await client.get("/healthz")).status_code == 200
    assert await probe.pool.fetchval("SELECT count(*) FROM audit_log") == before


async def test_old_nonces_are_pruned(probe: Probe, monkeypatch: pytest.MonkeyPatch) -> None:
    app_id, secret = await probe.issue("notes:write")
    await probe.pool.execute(
        "INSERT INTO auth_nonces VALUES ($1, 'old-nonce-0000000', now() - interval '1 hour')",
        app_id,
    )
    monkeypatch.setattr(dependency, "_next_prune", {})
    async with probe.client(app_id, secret) as client:
        assert (await client.post("/unions/u1/notes", json={"text": "p"})).status_code == 201
    nonces = await probe.pool.fetch("SELECT nonce FROM auth_nonces WHERE app_id = $1", app_id)
    assert len(nonces) == 1 and nonces[0]["nonce"] != "old-nonce-0000000"


async def test_two_guards_on_a_route_need_both_scopes_and_check_the_signature_once(
    probe: Probe,
) -> None:
    both = await probe.issue("notes:write", "notes:read", "notes:purge")
    purge_only = await probe.issue("notes:purge")
    async with probe.client(*both) as client:
        await client.post("/unions/u-purge/notes", json={"text": "a"})
        answer = await client.delete("/unions/u-purge/notes")
        assert answer.status_code == 200, answer.text  # a second check would see a replay
        assert answer.json() == {"deleted": 1}
    async with probe.client(*purge_only) as client:
        assert (await client.delete("/unions/u1/notes")).status_code == 403


async def test_openapi_lists_each_operations_scopes(probe: Probe) -> None:
    async with probe.unsigned() as client:
        doc = (await client.get("/openapi.json")).json()
    scheme = doc["components"]["securitySchemes"]["GonghuiSignature"]
    assert scheme["in"] == "header" and scheme["name"] == signing.SIGNATURE
    scopes = {
        (method.upper(), path): op.get("security")
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    assert scopes[("POST", "/unions/{union_id}/notes")] == [{"GonghuiSignature": ["notes:write"]}]
    assert scopes[("GET", "/unions/{union_id}/notes")] == [{"GonghuiSignature": ["notes:read"]}]
    assert scopes[("POST", "/webhooks/subscriptions")] == [
        {"GonghuiSignature": ["webhooks:manage"]}
    ]
    # One requirement naming both scopes: OpenAPI reads that as "needs both".
    assert scopes[("DELETE", "/unions/{union_id}/notes")] == [
        {"GonghuiSignature": ["notes:read", "notes:purge"]}
    ]
    assert scopes[("GET", "/healthz")] is None


async def test_support_helpers_and_reference_client(probe: Probe) -> None:
    app_id, secret = await probe.issue("notes:write", "notes:read")
    async with await signed_client(probe.app, app_id, secret) as client:
        assert (await client.post("/unions/u-c/notes", json={"text": "a"})).status_code == 201
    transport = httpx.ASGITransport(app=probe.app)
    async with GonghuiClient("http://probe", app_id, secret, transport=transport) as gonghui:
        assert (await gonghui.get("/unions/u-c/notes")).json() == ["a"]


@pytest.mark.parametrize("segment", ["a%23b", "a%3Fb", "a%5Cb", "%E5%BC%A0%20%E4%B8%89"])
async def test_reserved_characters_in_a_path_segment_are_signed_as_sent(
    probe: Probe, segment: str
) -> None:
    reader = await probe.issue("notes:read")
    async with probe.client(*reader) as client:
        answer = await client.get(f"/unions/{segment}/notes")
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("char", ["%09", "%0A", "%0D", "%00"])
async def test_a_path_with_a_control_character_is_refused_before_the_signature_is_read(
    probe: Probe, char: str
) -> None:
    app_id, secret = await probe.issue("notes:read")
    # Signed for the path without the character: the service must not act on another path.
    headers = signing.sign(app_id, secret, method="GET", path="/unions/ab/notes")
    async with probe.unsigned() as client:
        answer = await client.get(f"/unions/a{char}b/notes", headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0] == {
        "field": "union_id",
        "code": "control_character",
        "message": "must not contain control characters",
    }


async def test_callers_are_checked_before_the_body_is_read(probe: Probe) -> None:
    reader = await probe.issue("notes:read")
    bad = b'{"text": 12, "unknown": true'  # not even JSON
    async with probe.client(*reader) as client:
        answer = await client.post(
            "/unions/u1/notes", content=bad, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 403, answer.text
    assert answer.json()["errors"][0]["code"] == "missing_scope"
    async with probe.unsigned() as client:
        answer = await client.post(
            "/unions/u1/notes", content=bad, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == "missing_signature"
