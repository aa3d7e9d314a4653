"""A throwaway service for the auth and webhook tests: the real runtime, app factory and first
migration, in a scratch schema owned by a real service role, with a few guarded routes."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import asyncpg
import uvicorn
from alembic import command
from fastapi import Depends, FastAPI, File, UploadFile
from pydantic import BaseModel

from shared.auth import Caller, require_scope
from shared.consumer import Handler
from shared.events.notifications import RecipientUnreachable
from shared.http import create_app
from shared.migrations import alembic_config
from shared.runtime import ServiceRuntime, Worker
from shared.settings import ServiceSettings
from shared.uow import UnitOfWork
from shared.webhooks import webhooks_router
from tests.support.database import ScratchDatabase
from tests.support.ports import free_port
from tests.support.servers import Servers

ROLE = "notifications"  # the probe logs in as a real service role, into a schema it owns
OFFERED = [RecipientUnreachable.type]


class ProbeSettings(ServiceSettings):
    service: ClassVar[str] = ROLE
    probe_schema: str = "probe"

    @property
    def db_schema(self) -> str:
        return self.probe_schema


class NoteIn(BaseModel):
    text: str


async def create_probe_schema(database: ScratchDatabase) -> str:
    """A schema owned by the service role with the real 0001 migration and a ``notes`` table."""
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database.admin_dsn)
    try:
        await admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {ROLE}")
    finally:
        await admin.close()
    dsn = database.dsn(ROLE)
    await asyncio.to_thread(command.upgrade, alembic_config(ROLE, dsn, schema), "0001")
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await conn.execute(
            "CREATE TABLE notes (id bigserial PRIMARY KEY, union_id text, text text, app_id text)"
        )
    finally:
        await conn.close()
    return schema


async def _schema_ready(service: str, dsn: str, schema: str) -> None:
    """Stands in for the runtime's migrations: the probe schema was migrated to 0001 already
    (the service's later revisions are other engineers' and are not the probe's business)."""


MIB = 1024 * 1024


def build(
    settings: ProbeSettings,
    *,
    follows: dict[str, dict[str, Handler]] | None = None,
    workers: dict[str, Worker] | None = None,
) -> FastAPI:
    runtime = ServiceRuntime(settings, follows=follows, workers=workers)
    app = create_app(
        "probe", lifespan=runtime.lifespan, body_limits={r"/unions/[^/]+/attachments": 8 * MIB}
    )
    app.state.runtime = runtime

    @app.post("/unions/{union_id}/notes", status_code=201)
    async def add_note(
        union_id: str, note: NoteIn, caller: Caller = Depends(require_scope("notes:write"))
    ) -> dict[str, Any]:
        caller.ensure_organisation(union_id, field="union_id")
        note_id = await runtime.pool.fetchval(
            "INSERT INTO notes (union_id, text, app_id) VALUES ($1, $2, $3) RETURNING id",
            union_id,
            note.text,
            caller.app_id,
        )
        return {"id": note_id, "department": caller.department}

    @app.get("/unions/{union_id}/notes", dependencies=[Depends(require_scope("notes:read"))])
    async def list_notes(union_id: str, text: str | None = None) -> list[str]:
        rows = await runtime.pool.fetch(
            "SELECT text FROM notes WHERE union_id = $1 AND ($2::text IS NULL OR text = $2)"
            " ORDER BY id",
            union_id,
            text,
        )
        return [r["text"] for r in rows]

    @app.delete(
        "/unions/{union_id}/notes",
        dependencies=[Depends(require_scope("notes:read"))],
    )
    async def purge_notes(
        union_id: str, caller: Caller = Depends(require_scope("notes:purge"))
    ) -> dict[str, int]:
        # Two guards on one route: both scopes needed, the signature checked (and the nonce
        # spent) once.
        done = await runtime.pool.execute("DELETE FROM notes WHERE union_id = $1", union_id)
        return {"deleted": int(done.split()[-1])}

    @app.post(
        "/unions/{union_id}/attachments", dependencies=[Depends(require_scope("notes:write"))]
    )
    async def attach(union_id: str, file: UploadFile = File()) -> dict[str, Any]:
        # What the endpoint received of a signed upload, to compare with what was sent.
        digest, size = hashlib.sha256(), 0
        while chunk := await file.read(64 * 1024):
            digest.update(chunk)
            size += len(chunk)
        return {"bytes": size, "sha256": digest.hexdigest()}

    @app.post("/unions/{union_id}/explode", dependencies=[Depends(require_scope("notes:write"))])
    async def explode(union_id: str) -> None:
        raise RuntimeError("a bug in an endpoint")

    @app.post("/members/{member_id}/unreachable", status_code=202)
    async def unreachable(
        member_id: str, caller: Caller = Depends(require_scope("events:emit"))
    ) -> dict[str, str]:
        async with UnitOfWork(runtime.pool, settings.events_topic) as uow:
            uow.publish(
                RecipientUnreachable(
                    member_id=member_id, openid_masked="o***x", errcode=43004, reason="unfollowed"
                )
            )
            await uow.commit()
        return {"member_id": member_id}

    app.include_router(webhooks_router(OFFERED))
    return app


@asynccontextmanager
async def running_probe(
    database: ScratchDatabase,
    servers: Servers,
    namespace: str,
    monkeypatch: Any,
    **build_args: Any,
) -> AsyncIterator[FastAPI]:
    schema = await create_probe_schema(database)
    settings = ProbeSettings(
        database_url=database.dsn(ROLE),
        kafka_bootstrap=servers.kafka_bootstrap,
        topic_namespace=namespace,
        relay_poll_seconds=0.2,
        probe_schema=schema,
        run_relay=bool(build_args.get("follows")),
    )
    monkeypatch.setattr("shared.runtime.upgrade_async", _schema_ready)
    app = build(settings, **build_args)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app over real HTTP on 127.0.0.1; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,  # a test that failed mid-request must not hang here
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
