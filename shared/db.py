"""Postgres access: one asyncpg pool per service, logged in as that service's own role.

The role's ``search_path`` is its schema, but every pool also sets it explicitly so a service never
reads or writes outside its schema even on a server configured by hand.

Pooled connections carry no session state: nothing runs ``SET``, ``LISTEN`` or takes a session
advisory lock on them (listeners and the relay's lock holder use :func:`connect`). So a released
connection is not sent asyncpg's ``RESET ALL``/``UNLISTEN *``/``CLOSE ALL`` query, which would
cost one more round trip per request; an open transaction is still rolled back.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson


def lock_key(name: str) -> int:
    """The advisory-lock key of a named thing (``"relay membership"``, ``"roster <job id>"``):
    the first 8 bytes of its SHA-256 as a signed bigint. Every lock derives its key here, so two
    names can only share a key by a hash collision. Session locks are taken on a connection of
    their own (:func:`connect`), never a pooled one (see above)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary codecs (jsonb's wire format is a version byte, then the text) so COPY works too.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: b"\x01" + orjson.dumps(v),
        decoder=lambda b: orjson.loads(b[1:]),
        schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "json", encoder=orjson.dumps, decoder=orjson.loads, schema="pg_catalog", format="binary"
    )


async def connect(dsn: str, schema: str) -> asyncpg.Connection:
    """A single connection outside the pool (the relay holds one for its leader lock)."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    await _init_connection(conn)
    return conn


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without the reset query (see the module docstring)."""


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 2, max_size: int = 10
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"gonghui-{schema}"},
        init=_init_connection,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def session_lock(dsn: str, schema: str, name: str) -> AsyncIterator[bool]:
    """Try the session advisory lock ``name`` on a connection of its own; yields whether this
    process holds it. Closing the connection ends the session, which frees the lock even when
    the holder is cancelled, and a process that dies frees it with its session."""
    conn = await connect(dsn, schema)
    try:
        yield bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(name)))
    finally:
        await conn.close()
