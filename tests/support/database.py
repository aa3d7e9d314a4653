"""A fresh database per test run, laid out like production: one schema per service, each owned
by that service's own role, so the tests exercise the real permissions."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg

from tests.support.servers import SERVICES, Servers


@dataclass
class ScratchDatabase:
    name: str
    servers: Servers

    def dsn(self, role: str) -> str:
        s = self.servers
        return f"postgresql://{role}:{role}@{s.pg_host}:{s.pg_port}/{self.name}{self.options}"

    @property
    def options(self) -> str:
        # Loopback servers need no TLS (it costs the tests measurable time); keep it elsewhere.
        local = self.servers.pg_host in ("127.0.0.1", "localhost")
        return "?sslmode=disable" if local else ""

    @property
    def admin_dsn(self) -> str:
        base, _, _ = self.servers.pg_admin_dsn.partition("?")[0].rpartition("/")
        return f"{base}/{self.name}{self.options}"


async def create_database(servers: Servers) -> ScratchDatabase:
    name = f"gonghui_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(servers.pg_admin_dsn)
    try:
        for service in SERVICES:
            await _ensure_role(admin, service)
            # The admin role acts for each service role to give it its schema (a no-op once
            # granted).
            await admin.execute(f"GRANT {service} TO CURRENT_USER")
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    db = ScratchDatabase(name, servers)
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        await conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        for service in SERVICES:
            await conn.execute(f'GRANT CONNECT ON DATABASE "{name}" TO {service}')
            await conn.execute(f"CREATE SCHEMA {service} AUTHORIZATION {service}")
    finally:
        await conn.close()
    return db


async def _ensure_role(admin: asyncpg.Connection, service: str) -> None:
    """The service's role, as deploy/local/postgres-init.sql makes it, on a server whose init
    script ran before the service existed (a Docker volume or a server named by GONGHUI_TEST_*
    keeps the roles of its first start; ``deploy/local/infra up`` applies the script each time).
    The admin role may: it has CREATEROLE."""
    if await admin.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", service):
        return
    try:
        await admin.execute(
            f"CREATE ROLE {service} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
            f" PASSWORD '{service}'"
        )
    except asyncpg.DuplicateObjectError:
        return  # another test session made it meanwhile
    await admin.execute(f"ALTER ROLE {service} SET search_path = {service}")


async def drop_database(db: ScratchDatabase, patience: float = 300.0) -> None:
    """Drop the scratch database, retrying: an autovacuum worker (a backend FORCE may not
    terminate for the test role) can be busy in it just after heavy writes. After a benchmark's
    300,000-line export it vacuumed for longer than ten seconds, so wait up to ``patience``."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        admin = await asyncpg.connect(db.servers.pg_admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
            return
        except asyncpg.InsufficientPrivilegeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
