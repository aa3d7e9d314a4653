"""Credentials of department systems, kept in the service's own schema, secrets encrypted.

A credential is an app id with a name, a department, scopes and an optional list of
organisations it is limited to. Its secrets are Fernet-encrypted with the service's
``credentials_key``: a database dump alone does not let anyone sign requests. A credential has
one current secret, plus, during a rotation, the previous one until its ``valid_until`` (or until
:func:`retire_old`).

A service keeps the credentials it has decrypted in a :class:`CredentialCache`, but a cached entry
is only ever a guess: :func:`spend_nonces`, the statement that records each request's nonce, also
checks that the credential is still as cached (its fingerprint: not revoked, the same valid
secrets, scopes and organisations). So revoking, rotating or retiring takes effect on the next
request, and a signed request costs no query of its own for its credential.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

DEPARTMENTS = ("hr", "tax", "finance", "employer_hr", "federation")


class CredentialError(Exception):
    """An administration request that cannot be done (unknown app id, bad department...)."""


@dataclass(frozen=True)
class Credential:
    app_id: str
    name: str
    department: str
    scopes: frozenset[str]
    organisations: frozenset[str] | None
    secrets: tuple[str, ...]  # decrypted, currently valid; newest first
    fingerprint: str  # of the rows this was read from; see spend_nonces


@dataclass(frozen=True)
class CredentialSummary:
    app_id: str
    name: str
    department: str
    scopes: list[str]
    organisations: list[str] | None
    created_at: datetime
    revoked_at: datetime | None
    valid_secrets: int


def new_secret() -> str:
    return _secrets.token_urlsafe(32)


def new_app_id(department: str) -> str:
    return f"{department.replace('_', '-')}-{_secrets.token_hex(6)}"


def _fernet(key: str) -> MultiFernet:
    # "new,old": encrypt with the first key, decrypt with any, so the key itself can be rotated.
    return MultiFernet([Fernet(k.strip().encode()) for k in key.split(",")])


def encrypt(key: str, secret: str) -> str:
    return _fernet(key).encrypt(secret.encode()).decode()


def decrypt(key: str, token: str) -> str:
    try:
        return _fernet(key).decrypt(token.encode()).decode()
    except InvalidToken as exc:  # a wrong key must not look like a wrong signature to ops
        raise RuntimeError("a credential secret does not decrypt with credentials_key") from exc


# The credentials row and its valid secrets, by app id ($1), for a GROUP BY c.app_id.
def _valid(app_ids: str) -> str:
    """FROM and WHERE of the valid secrets of the credentials whose app id is ``app_ids``."""
    return (
        " FROM credentials c JOIN credential_secrets s USING (app_id)"
        f" WHERE c.app_id {app_ids} AND c.revoked_at IS NULL"
        " AND (s.valid_until IS NULL OR s.valid_until > now())"
    )


# Changes when anything a request's admission rests on changes (a secret's end passing too).
_FINGERPRINT = (
    "md5(row(c.name, c.department, c.scopes, c.organisations,"
    " array_agg(s.id ORDER BY s.id DESC))::text)"
)


async def load(conn: asyncpg.Connection | asyncpg.Pool, key: str, app_id: str) -> Credential | None:
    """The credential with its valid secrets, or None when unknown, revoked or without any."""
    row = await conn.fetchrow(
        "SELECT c.name, c.department, c.scopes, c.organisations,"
        f" array_agg(s.secret_encrypted ORDER BY s.id DESC) AS secrets, {_FINGERPRINT} AS print"
        f"{_valid('= $1')} GROUP BY c.app_id",
        app_id,
    )
    if row is None:
        return None
    orgs = row["organisations"]
    return Credential(
        app_id=app_id,
        name=row["name"],
        department=row["department"],
        scopes=frozenset(row["scopes"]),
        organisations=None if orgs is None else frozenset(orgs),
        secrets=tuple(decrypt(key, token) for token in row["secrets"]),
        fingerprint=row["print"],
    )


async def spend_nonces(
    conn: asyncpg.Connection | asyncpg.Pool, asked: list[tuple[Credential, str, float]]
) -> list[bool | None]:
    """Record requests' nonces, each if its credential is still as it was read, in one statement
    (the requests that arrive together: :class:`shared.coalesce.Coalesced`).

    For each (credential, nonce, signed at), in order: True, recorded. False: the nonce was used
    before (a replay, also by an earlier request of the same batch). None: the credential changed
    since it was read (revoked, rotated, retired, re-scoped), so nothing was recorded: read it
    again and check the request against what it is now.
    """
    rows = await conn.fetch(
        "WITH asked AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[])"
        "  WITH ORDINALITY AS a(app_id, print, nonce, signed_at, n)),"
        f" now_valid AS (SELECT c.app_id, {_FINGERPRINT} AS print"
        f"{_valid('IN (SELECT app_id FROM asked)')} GROUP BY c.app_id),"
        " spent AS (INSERT INTO auth_nonces (app_id, nonce, signed_at)"
        "  SELECT a.app_id, a.nonce, to_timestamp(a.signed_at)"
        "  FROM asked a JOIN now_valid v USING (app_id, print)"
        "  ON CONFLICT DO NOTHING RETURNING app_id, nonce)"
        " SELECT v.app_id IS NOT NULL AS unchanged, s.nonce IS NOT NULL AS fresh"
        " FROM asked a LEFT JOIN now_valid v USING (app_id, print)"
        " LEFT JOIN spent s USING (app_id, nonce) ORDER BY a.n",
        [c.app_id for c, _, _ in asked],
        [c.fingerprint for c, _, _ in asked],
        [nonce for _, nonce, _ in asked],
        [signed_at for _, _, signed_at in asked],
    )
    answers: list[bool | None] = []
    spent: set[tuple[str, str]] = set()
    for (credential, nonce, _), row in zip(asked, rows, strict=True):
        if not row["unchanged"]:
            answers.append(None)
            continue
        key = (credential.app_id, nonce)
        answers.append(bool(row["fresh"]) and key not in spent)  # one insert for both of a pair
        spent.add(key)
    return answers


class CredentialCache:
    """The credentials this process has read, by app id: a guess that :func:`spend_nonces`
    confirms on every request. Only credentials that exist are kept, so made-up app ids add
    nothing; a service has tens of credentials, not millions."""

    def __init__(self) -> None:
        self._by_app_id: dict[str, Credential] = {}

    def cached(self, app_id: str) -> Credential | None:
        return self._by_app_id.get(app_id)

    async def load(
        self, conn: asyncpg.Connection | asyncpg.Pool, key: str, app_id: str
    ) -> Credential | None:
        credential = await load(conn, key, app_id)
        if credential is None:
            self._by_app_id.pop(app_id, None)
        else:
            self._by_app_id[app_id] = credential
        return credential


async def issue(
    conn: asyncpg.Connection,
    key: str,
    *,
    name: str,
    department: str,
    scopes: Iterable[str],
    organisations: Iterable[str] | None = None,
) -> tuple[str, str]:
    """A new credential; returns (app id, secret). The secret is shown to no one else, ever."""
    if department not in DEPARTMENTS:
        raise CredentialError(f"department must be one of {', '.join(DEPARTMENTS)}")
    scope_list = sorted(set(scopes))
    if not scope_list:
        raise CredentialError("a credential needs at least one scope")
    app_id, secret = new_app_id(department), new_secret()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO credentials (app_id, name, department, scopes, organisations)"
            " VALUES ($1, $2, $3, $4, $5)",
            app_id,
            name,
            department,
            scope_list,
            None if organisations is None else sorted(set(organisations)),
        )
        await conn.execute(
            "INSERT INTO credential_secrets (app_id, secret_encrypted) VALUES ($1, $2)",
            app_id,
            encrypt(key, secret),
        )
    return app_id, secret


async def _require(conn: asyncpg.Connection, app_id: str) -> None:
    found = await conn.fetchval(
        "SELECT true FROM credentials WHERE app_id = $1 AND revoked_at IS NULL FOR UPDATE", app_id
    )
    if not found:
        raise CredentialError(f"no active credential {app_id}")


async def rotate(
    conn: asyncpg.Connection, key: str, app_id: str, *, old_valid_until: datetime | None = None
) -> str:
    """Add a new secret; the previous ones stay valid until ``old_valid_until`` (None: until
    :func:`retire_old`), so the department can switch over without downtime."""
    async with conn.transaction():
        await _require(conn, app_id)
        # At most two secrets are ever valid: one left over from an unfinished rotation ends now.
        await conn.execute(
            "UPDATE credential_secrets SET valid_until = now()"
            " WHERE app_id = $1 AND (valid_until IS NULL OR valid_until > now())"
            " AND id <> (SELECT max(id) FROM credential_secrets WHERE app_id = $1)",
            app_id,
        )
        await conn.execute(
            "UPDATE credential_secrets SET valid_until = $2 WHERE app_id = $1"
            " AND (valid_until IS NULL OR valid_until > coalesce($2, 'infinity'::timestamptz))",
            app_id,
            old_valid_until,
        )
        secret = new_secret()
        await conn.execute(
            "INSERT INTO credential_secrets (app_id, secret_encrypted) VALUES ($1, $2)",
            app_id,
            encrypt(key, secret),
        )
    return secret


async def retire_old(conn: asyncpg.Connection, app_id: str) -> int:
    """End every secret but the newest now; returns how many were retired."""
    async with conn.transaction():
        await _require(conn, app_id)
        done = await conn.execute(
            "UPDATE credential_secrets SET valid_until = now()"
            " WHERE app_id = $1 AND (valid_until IS NULL OR valid_until > now())"
            " AND id <> (SELECT max(id) FROM credential_secrets WHERE app_id = $1)",
            app_id,
        )
    return int(done.split()[-1])


async def revoke(conn: asyncpg.Connection, app_id: str) -> None:
    async with conn.transaction():
        await _require(conn, app_id)
        await conn.execute("UPDATE credentials SET revoked_at = now() WHERE app_id = $1", app_id)


async def summaries(conn: asyncpg.Connection) -> list[CredentialSummary]:
    rows = await conn.fetch(
        "SELECT c.app_id, c.name, c.department, c.scopes, c.organisations, c.created_at,"
        " c.revoked_at, count(s.id) FILTER"
        "   (WHERE s.valid_until IS NULL OR s.valid_until > now()) AS valid_secrets"
        " FROM credentials c LEFT JOIN credential_secrets s USING (app_id)"
        " GROUP BY c.app_id ORDER BY c.created_at"
    )
    return [CredentialSummary(**dict(r)) for r in rows]
