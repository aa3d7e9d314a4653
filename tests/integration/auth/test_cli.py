"""The two command lines a person uses: the admin CLI (as the service's role, into its schema)
and the reference client CLI a department developer starts from."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic import command

from shared.migrations import alembic_config
from tests.integration.auth.probe import ROLE, running_probe, serving
from tests.support.auth import issue_credential
from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.servers import ROOT, Servers

pytestmark = pytest.mark.integration


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        env=os.environ | (env or {}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def fresh(servers: Servers) -> AsyncIterator[ScratchDatabase]:
    """A database of its own: the admin CLI works on the real ``notifications`` schema."""
    db = await create_database(servers)
    dsn = db.dsn(ROLE)
    await asyncio.to_thread(command.upgrade, alembic_config(ROLE, dsn, ROLE), "0001")
    yield db
    await drop_database(db)


async def test_admin_cli_issues_rotates_retires_revokes_and_lists(fresh: ScratchDatabase) -> None:
    env = {"GONGHUI_NOTIFICATIONS_DATABASE_URL": fresh.dsn(ROLE)}
    admin = ("-m", "shared.auth.admin", "notifications")
    code, out, err = await run(
        *admin,
        "issue",
        "--name",
        "Acme HR",
        "--department",
        "employer_hr",
        "--scope",
        "rosters:submit",
        "--scope",
        "members:read",
        "--organisation",
        "u-acme",
        env=env,
    )
    assert code == 0, err
    app_id = re.search(r"app id: (\S+)", out).group(1)  # type: ignore[union-attr]
    secret = re.search(r"secret: (\S+)", out).group(1)  # type: ignore[union-attr]
    conn = await asyncpg.connect(fresh.dsn(ROLE), server_settings={"search_path": ROLE})
    try:
        row = await conn.fetchrow("SELECT * FROM credentials WHERE app_id = $1", app_id)
        assert row["department"] == "employer_hr"
        assert sorted(row["scopes"]) == ["members:read", "rosters:submit"]
        assert row["organisations"] == ["u-acme"]
        stored = await conn.fetchval(
            "SELECT string_agg(secret_encrypted, '') FROM credential_secrets"
        )
        assert secret not in stored

        code, out, _ = await run(*admin, "rotate", app_id, env=env)
        assert code == 0 and "new secret:" in out
        valid = (
            "SELECT count(*) FROM credential_secrets"
            " WHERE valid_until IS NULL OR valid_until > now()"
        )
        assert await conn.fetchval(valid) == 2
        code, out, _ = await run(*admin, "retire-old", app_id, env=env)
        assert code == 0 and out.startswith("1 old secret")
        assert await conn.fetchval(valid) == 1

        code, out, _ = await run(*admin, "list", env=env)
        assert code == 0 and app_id in out and "active" in out and secret not in out
        code, _, _ = await run(*admin, "revoke", app_id, env=env)
        assert code == 0
        assert await conn.fetchval("SELECT revoked_at IS NOT NULL FROM credentials") is True
        code, _, err = await run(*admin, "rotate", app_id, env=env)
        assert code == 1 and "no active credential" in err
    finally:
        await conn.close()


async def test_admin_cli_refuses_an_unknown_department(fresh: ScratchDatabase) -> None:
    env = {"GONGHUI_NOTIFICATIONS_DATABASE_URL": fresh.dsn(ROLE)}
    code, _, err = await run(
        "-m", "shared.auth.admin", "notifications", "issue", "--name", "x",
        "--department", "police", "--scope", "a", env=env,
    )  # fmt: skip
    assert code == 2 and "invalid choice" in err


async def test_client_cli_sends_a_signed_request(
    database: ScratchDatabase, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}."
    async with running_probe(database, servers, namespace, monkeypatch) as app, serving(app) as url:
        schema = app.state.runtime.settings.db_schema
        app_id, secret = await issue_credential(
            database.dsn(ROLE), schema, scopes=["notes:write", "notes:read"]
        )
        client = ("-m", "shared.auth.client", "--base-url", url, "--app-id", app_id)
        code, out, err = await run(
            *client, "POST", "/unions/u-cli/notes", "--json", '{"text": "来自命令行"}',
            env={"GONGHUI_SECRET": secret},
        )  # fmt: skip
        assert code == 0, out + err
        assert out.startswith("201 Created")
        code, out, _ = await run(
            *client, "--secret", secret, "GET", "/unions/u-cli/notes?text=来自命令行"
        )
        assert code == 0 and "来自命令行" in out
        code, out, _ = await run(*client, "--secret", "wrong", "GET", "/unions/u-cli/notes")
        assert code == 1 and out.startswith("401")
