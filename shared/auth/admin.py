"""Administering department credentials of one service, as that service's own database role.

    python -m shared.auth.admin mutual_aid issue --name "City tax bureau" --department tax \\
        --scope claims:read --scope payouts:confirm [--organisation u-123 ...]
    python -m shared.auth.admin mutual_aid rotate tax-0123456789ab \\
        [--old-valid-until 2026-02-01T00:00:00+08:00]
    python -m shared.auth.admin mutual_aid retire-old tax-0123456789ab
    python -m shared.auth.admin mutual_aid revoke tax-0123456789ab
    python -m shared.auth.admin mutual_aid list

It reads ``services.<service>.main.Settings()`` (the ``GONGHUI_<SERVICE>_*`` environment), so it
connects into that service's schema only, and encrypts with that service's ``credentials_key``.
A secret is printed once, when issued or rotated, and cannot be shown again.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from datetime import datetime

from shared.auth import credentials
from shared.db import connect
from shared.migrations import SERVICES_DIR
from shared.settings import ServiceSettings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m shared.auth.admin")
    p.add_argument("service", help="membership, mutual_aid, training, notifications or union_funds")
    commands = p.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue", help="a new credential; prints app id and secret once")
    issue.add_argument("--name", required=True, help="the integrating system, e.g. its owner")
    issue.add_argument("--department", required=True, choices=credentials.DEPARTMENTS)
    issue.add_argument("--scope", action="append", required=True, dest="scopes")
    issue.add_argument(
        "--organisation",
        action="append",
        dest="organisations",
        help="limit to this organisation (repeatable); no limit when left out",
    )
    rotate = commands.add_parser("rotate", help="add a new secret; the old stays valid")
    rotate.add_argument("app_id")
    rotate.add_argument(
        "--old-valid-until",
        type=datetime.fromisoformat,
        help="end of the old secret (ISO 8601 with offset); else until retire-old",
    )
    for name, text in (
        ("retire-old", "end every secret but the newest, now"),
        ("revoke", "refuse the credential from now on"),
    ):
        commands.add_parser(name, help=text).add_argument("app_id")
    commands.add_parser("list", help="the credentials, without secrets")
    return p


def service_settings(service: str) -> ServiceSettings:
    if not (SERVICES_DIR / service / "main.py").is_file():
        raise SystemExit(f"no service {service!r}")
    settings: ServiceSettings = importlib.import_module(f"services.{service}.main").Settings()
    return settings


async def run(args: argparse.Namespace, settings: ServiceSettings) -> str:
    """Do the command; returns what to print."""
    conn = await connect(settings.database_url, settings.db_schema)
    key = settings.credentials_key
    try:
        if args.command == "issue":
            app_id, secret = await credentials.issue(
                conn,
                key,
                name=args.name,
                department=args.department,
                scopes=args.scopes,
                organisations=args.organisations,
            )
            return f"app id: {app_id}\nsecret: {secret}\n(the secret is shown only this once)"
        if args.command == "rotate":
            if args.old_valid_until is not None and args.old_valid_until.tzinfo is None:
                raise credentials.CredentialError("--old-valid-until needs a UTC offset")
            secret = await credentials.rotate(
                conn, key, args.app_id, old_valid_until=args.old_valid_until
            )
            until = args.old_valid_until or "retire-old"
            return f"new secret: {secret}\n(the previous secret stays valid until {until})"
        if args.command == "retire-old":
            retired = await credentials.retire_old(conn, args.app_id)
            return f"{retired} old secret(s) retired"
        if args.command == "revoke":
            await credentials.revoke(conn, args.app_id)
            return f"{args.app_id} revoked"
        lines = [
            f"{c.app_id}\t{c.department}\t{c.name}\tscopes={','.join(c.scopes)}"
            f"\torganisations={'all' if c.organisations is None else ','.join(c.organisations)}"
            f"\tsecrets={c.valid_secrets}\t{'REVOKED' if c.revoked_at else 'active'}"
            for c in await credentials.summaries(conn)
        ]
        return "\n".join(lines) or "no credentials"
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = service_settings(args.service)
    try:
        print(asyncio.run(run(args, settings)))
    except credentials.CredentialError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
