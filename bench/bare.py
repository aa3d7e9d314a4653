"""The bare endpoint bench/online_joins compares the platform with: FastAPI and asyncpg, one
transaction inserting a member row and its outbox row into a scratch schema of its own, no
signature, no rules. What the machine gives a join with nothing of the platform around it.

    GONGHUI_BENCH_BARE_DSN=postgresql://... python -m uvicorn bench.bare:app --workers N
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

SCHEMA = "bench_bare"
DSN = "GONGHUI_BENCH_BARE_DSN"
# The shape of membership's member row and the backbone's outbox row, without their indexes'
# purposes (no lookups here): what one join writes, at the least.
DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.members (
    id text PRIMARY KEY,
    id_number text NOT NULL UNIQUE,
    name text NOT NULL,
    mobile text,
    union_id text NOT NULL,
    employer_name text,
    channel text NOT NULL,
    joined_on date NOT NULL DEFAULT current_date,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.outbox (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    topic text NOT NULL,
    key text NOT NULL,
    type text NOT NULL,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON {SCHEMA}.outbox (id) WHERE published_at IS NULL;
"""


class Join(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=18, max_length=18)
    mobile: str | None = Field(default=None, max_length=20)
    channel: str
    union_id: str = Field(min_length=1, max_length=64)
    employer_name: str | None = Field(default=None, max_length=200)


class Joined(BaseModel):
    id: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ[DSN], min_size=2, max_size=10)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/members", status_code=201)
async def join(body: Join, request: Request) -> Joined:
    member_id = uuid.uuid4().hex
    payload = orjson.dumps({"member_id": member_id, **body.model_dump()})
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            f"INSERT INTO {SCHEMA}.members (id, id_number, name, mobile, union_id, employer_name,"
            " channel) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            member_id,
            body.id_number,
            body.name,
            body.mobile,
            body.union_id,
            body.employer_name,
            body.channel,
        )
        await conn.execute(
            f"INSERT INTO {SCHEMA}.outbox (event_id, topic, key, type, payload)"
            " VALUES ($1, 'membership.events', $2, 'gonghui.membership.member.joined', $3)",
            uuid.uuid4(),
            member_id,
            payload,
        )
    return Joined(id=member_id)


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}
