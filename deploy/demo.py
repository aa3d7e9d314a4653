"""A small demo federation for a fresh platform: ``python -m deploy.demo`` (run by ./gonghui up).

It issues credentials and saves them in var/demo/credentials.json, so you can call the APIs
yourself with ``python -m shared.auth.client`` (README, "Walking each department's flow"):

- under each service's name, a staff credential holding every scope the service's routes declare
  (``jq .membership var/demo/credentials.json``: base_url, app_id, secret, ...);
- under ``departments``, one credential per department role and service with the role's scopes
  (:data:`ROLES`), e.g. ``jq .departments.finance.mutual_aid var/demo/credentials.json``.

Then it builds a county federation with unions and members through the public APIs, and has the
tax bureau remit the pharma company's union funds for last month. Running it again changes
nothing: a saved credential is issued anew only when its service no longer has it
as wanted (a database reset, changed scopes).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from shared.auth import credentials
from shared.auth.client import SignedAuth
from shared.db import connect
from tests.support.people import credit_code, id_number, mobile

ROOT = Path(__file__).resolve().parent.parent
# GONGHUI_DEMO_DIR: another platform's demo (the compose stack's) keeps its own credentials.
SAVED = Path(os.environ.get("GONGHUI_DEMO_DIR") or ROOT / "var" / "demo") / "credentials.json"
SERVICES = ("membership", "mutual_aid", "training", "notifications", "union_funds")
EMPLOYER_UNION = "bozhou-pharma"  # the demo organisation whose employer's HR system is issued


@dataclass(frozen=True)
class Role:
    """A department's system: its department (``credentials.DEPARTMENTS``), its scopes in each
    service, and the organisations its credentials are limited to (None: not limited)."""

    department: str
    scopes: Mapping[str, tuple[str, ...]]
    organisations: tuple[str, ...] | None = None


# What each department's system is given (docs/departments.md): one credential per service.
# Remittances and subsidies are the union_funds service's.
ROLES: dict[str, Role] = {
    "hr": Role("hr", {"membership": ("roster:submit", "members:read")}),
    "tax": Role("tax", {"union_funds": ("remittances:submit",)}),
    "finance": Role(
        "finance",
        {
            "union_funds": ("subsidies:write",),
            "mutual_aid": ("backstop:read", "backstop:grant", "webhooks:manage"),
        },
    ),
    "employer-hr": Role(
        "employer_hr", {"membership": ("roster:submit",)}, organisations=(EMPLOYER_UNION,)
    ),
}


@dataclass(frozen=True)
class Wanted:
    """One credential the demo keeps in one service."""

    name: str
    department: str
    scopes: tuple[str, ...]
    organisations: tuple[str, ...] | None = None

    def holds(self, credential: credentials.Credential) -> bool:
        orgs = None if self.organisations is None else frozenset(self.organisations)
        return (
            credential.department == self.department
            and credential.scopes == frozenset(self.scopes)
            and credential.organisations == orgs
        )


def settings(service: str) -> Any:
    return importlib.import_module(f"services.{service}.main").Settings()


def declared_scopes(service: str) -> list[str]:
    """Every scope the service's routes declare, from its OpenAPI document (building the app
    connects to nothing)."""
    main = importlib.import_module(f"services.{service}.main")
    paths = main.build(main.Settings()).openapi()["paths"]
    return sorted(
        {
            scope
            for operations in paths.values()
            for operation in operations.values()
            for requirement in operation.get("security", [])
            for scopes in requirement.values()
            for scope in scopes
        }
    )


def wanted_in(service: str) -> dict[str | None, Wanted]:
    """The credentials the demo keeps in ``service``: staff (None) and each role there."""
    staff = Wanted("demo staff", "federation", tuple(declared_scopes(service)))
    return {None: staff} | {
        role: Wanted(f"demo {role}", r.department, r.scopes[service], r.organisations)
        for role, r in ROLES.items()
        if service in r.scopes
    }


async def kept_or_issued(
    conn: asyncpg.Connection, key: str, saved: Any, wanted: Wanted
) -> tuple[str, str]:
    """(app id, secret): the saved credential while its service still has it as wanted, else a
    new one; a saved one that is still active but no longer as wanted is revoked."""
    if isinstance(saved, dict) and isinstance(saved.get("app_id"), str):
        held = await credentials.load(conn, key, saved["app_id"])
        if held is not None:
            if saved.get("secret") in held.secrets and wanted.holds(held):
                return held.app_id, saved["secret"]
            await credentials.revoke(conn, held.app_id)
    return await credentials.issue(
        conn,
        key,
        name=wanted.name,
        department=wanted.department,
        scopes=wanted.scopes,
        organisations=wanted.organisations,
    )


async def forgotten(conn: asyncpg.Connection, saved: Any) -> bool:
    """A saved credential the service has no row of: its database was reset since."""
    if not isinstance(saved, dict):
        return False
    known = await conn.fetchval(
        "SELECT true FROM credentials WHERE app_id = $1", saved.get("app_id")
    )
    return not known


def read_saved() -> dict[str, Any]:
    try:
        saved = json.loads(SAVED.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def save(issued: dict[str, Any]) -> None:
    SAVED.parent.mkdir(parents=True, exist_ok=True)
    fresh = SAVED.with_name(SAVED.name + ".new")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # secrets: owner only
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(issued, indent=2, ensure_ascii=False) + "\n")
    fresh.replace(SAVED)


async def demo_credentials() -> dict[str, Any]:
    """Staff credentials under each service's name, the roles' under ``departments`` (role, then
    service); each entry has base_url, app_id, secret, department, scopes, organisations."""
    saved = read_saved()
    saved_roles = saved.get("departments")
    saved_roles = saved_roles if isinstance(saved_roles, dict) else {}
    issued: dict[str, Any] = {}
    roles: dict[str, dict[str, Any]] = {role: {} for role in ROLES}
    for service in SERVICES:
        s = settings(service)
        conn = await connect(s.database_url, s.db_schema)
        try:
            staff = saved.get(service)
            if service == "training" and await forgotten(conn, staff):
                # training's database was reset: the demo's class went with it
                (SAVED.parent / "training.done").unlink(missing_ok=True)
            for role, wanted in wanted_in(service).items():
                before = staff if role is None else (saved_roles.get(role) or {}).get(service)
                app_id, secret = await kept_or_issued(conn, s.credentials_key, before, wanted)
                entry = {
                    "base_url": f"http://127.0.0.1:{s.http_port}",
                    "app_id": app_id,
                    "secret": secret,
                    "department": wanted.department,
                    "scopes": sorted(wanted.scopes),
                    "organisations": None
                    if wanted.organisations is None
                    else sorted(wanted.organisations),
                }
                if role is None:
                    issued[service] = entry
                else:
                    roles[role][service] = entry
        finally:
            await conn.close()
    issued["departments"] = roles
    if issued != saved:
        save(issued)
    return issued


def client(creds: Mapping[str, Any]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=creds["base_url"], auth=SignedAuth(creds["app_id"], creds["secret"]), timeout=30
    )


async def ensure(c: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """POST, treating "already there" (409) as done: the demo may run on a used platform."""
    answer = await c.post(path, json=body)
    if answer.status_code == 409:
        return None
    if answer.status_code >= 400:
        raise RuntimeError(f"demo step POST {path} failed: {answer.status_code} {answer.text}")
    return answer.json()


ORGANISATIONS: list[dict[str, Any]] = [
    {"id": "bozhou", "name": "亳州市总工会", "kind": "city_federation"},
    {"id": "qiaocheng", "name": "谯城区总工会", "kind": "county_federation", "parent_id": "bozhou"},
    {
        "id": "bozhou-pharma",
        "name": "亳州中药饮片有限公司工会",
        "kind": "enterprise",
        "parent_id": "qiaocheng",
        "founded_on": "2019-04-28",
        "employer": {
            "name": "亳州中药饮片有限公司",
            "credit_code": credit_code(1001),
            "headcount_band": "500-999",
            "address": "亳州市谯城区魏武大道",
        },
    },
    {
        "id": "freight-platform",
        "name": "亳州货运平台企业工会",
        "kind": "platform_company",
        "parent_id": "qiaocheng",
        "founded_on": "2021-06-18",
        "employer": {
            "name": "亳州货运平台科技有限公司",
            "credit_code": credit_code(1002),
            "headcount_band": "100-499",
            "address": "亳州市谯城区汤王大道",
        },
    },
]
MEMBERS: list[dict[str, Any]] = [
    {
        "name": "王芳",
        "serial": 11,
        "union_id": "bozhou-pharma",
        "channel": "on_site",
        "categories": ["migrant_worker"],
        "employer_name": "亳州中药饮片有限公司",
    },
    {
        "name": "李强",
        "serial": 12,
        "union_id": "bozhou-pharma",
        "channel": "online",
        "categories": [],
        "employer_name": "亳州中药饮片有限公司",
    },
    {
        "name": "张伟",
        "serial": 13,
        "union_id": "freight-platform",
        "channel": "platform_worker",
        "categories": ["migrant_worker"],
        "employer_name": None,
    },
]


async def membership(c: httpx.AsyncClient) -> list[str]:
    for org in ORGANISATIONS:
        await ensure(c, "/organisations", org)
    member_ids = []
    for m in MEMBERS:
        body = {k: v for k, v in m.items() if k != "serial"} | {
            "id_number": id_number(m["serial"]),
            "mobile": mobile(m["serial"]),
            "joined_on": "2026-03-01",
        }
        answer = await c.post("/members", json=body)
        if answer.status_code == 409:
            member_ids.append(answer.json()["existing_member_id"])
        elif answer.status_code == 201:
            member_ids.append(answer.json()["id"])
        else:
            raise RuntimeError(f"demo join failed: {answer.status_code} {answer.text}")
    print(f"[demo] membership: {len(ORGANISATIONS)} organisations, {len(member_ids)} members")
    return member_ids


async def retrying(what: str, attempt: Any, patience: float = 60) -> Any:
    """Services learn members from events, a moment after they join: retry until they know."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        answer = await attempt()
        if answer.status_code < 400 or asyncio.get_running_loop().time() > deadline:
            if answer.status_code >= 400:
                raise RuntimeError(f"demo step {what} failed: {answer.status_code} {answer.text}")
            return answer.json()
        await asyncio.sleep(1)


async def mutual_aid(c: httpx.AsyncClient, member_ids: list[str]) -> None:
    year = date.today().year
    if (await c.get("/plans")).json():
        print("[demo] mutual aid: already set up")
        return
    draft = await ensure(
        c,
        "/plans",
        {
            "scheme_year": year,
            "contribution_per_member_fen": 12_000,
            "rules": {
                "deductible_fen": 100_000,
                "bands": [
                    {"lower_fen": 0, "upper_fen": 1_000_000, "ratio": "0.5"},
                    {"lower_fen": 1_000_000, "upper_fen": None, "ratio": "0.6"},
                ],
                "per_claim_ceiling_fen": 5_000_000,
                "yearly_ceiling_fen": 8_000_000,
                "waiting_period_days": 30,
                "submission_deadline_days": 180,
            },
        },
    )
    assert draft is not None
    await ensure(c, f"/plans/{draft['plan_id']}/publish", {})
    pharma = member_ids[:2]
    enrolment = await retrying(
        "enrol a unit",
        lambda: c.post(
            "/enrolments",
            json={
                "unit_id": "bozhou-pharma",
                "scheme_year": year,
                "staff": pharma,
                "enrolled_on": "2026-03-02",
            },
        ),
    )
    await ensure(
        c,
        f"/enrolments/{enrolment['enrolment_id']}/contributions",
        {"receipt_number": "R-2026-001", "amount_fen": 24_000, "payer": "亳州中药饮片有限公司"},
    )
    claim = await ensure(
        c,
        "/claims",
        {
            "member_id": pharma[0],
            "unit_id": "bozhou-pharma",
            "admission_date": "2026-10-08",
            "discharge_date": "2026-10-15",
            "hospital": "亳州市人民医院",
            "invoice_numbers": ["INV-2026-10-0001"],
            "total_expense_fen": 800_000,
            "paid_by_basic_insurance_fen": 500_000,
            "self_paid_in_catalogue_fen": 300_000,
            "self_paid_outside_catalogue_fen": 0,
            "diagnosis_code": "K35.2",
            "submitted_by": {"kind": "unit", "id": "bozhou-pharma"},
        },
    )
    assert claim is not None
    await ensure(c, f"/claims/{claim['claim_id']}/approve", {"officer": "demo-officer"})
    print(
        "[demo] mutual aid: plan published, unit enrolled, 240.00 contributed, a 1,000.00 claim"
        " approved: the fund cannot pay it, so a backstop request goes to finance"
    )


async def training(c: httpx.AsyncClient, member_ids: list[str]) -> None:
    done = SAVED.parent / "training.done"
    if done.exists():  # courses get fresh ids, so a second run would add a second class
        print("[demo] training: already set up")
        return
    course = await ensure(
        c,
        "/courses",
        {"title": "工会干部培训班", "kind": "cadre_training", "provider": "亳州市总工会"},
    )
    if course is None:
        return
    now = datetime.now(UTC)
    klass = await ensure(
        c,
        f"/courses/{course['course_id']}/classes",
        {
            "name": "2026年第1期",
            "capacity": 30,
            "enrolment_opens_at": now.isoformat(),
            "enrolment_closes_at": (now + timedelta(days=20)).isoformat(),
            "sessions": [
                {
                    "starts_at": (now + timedelta(days=21 + d, hours=1)).isoformat(),
                    "ends_at": (now + timedelta(days=21 + d, hours=4)).isoformat(),
                    "venue": "亳州市职工服务中心",
                }
                for d in range(3)
            ],
        },
    )
    assert klass is not None
    for member_id in member_ids[:2]:
        await retrying(
            "enrol a member",
            lambda m=member_id: c.post(
                f"/classes/{klass['class_id']}/enrolments", json={"member_id": m}
            ),
        )
    done.write_text(klass["class_id"])
    print("[demo] training: a cadre class of 30 seats with 2 members enrolled")


async def union_funds(staff: httpx.AsyncClient, tax: httpx.AsyncClient) -> None:
    """The tax bureau's remittance for the pharma company, last month, matched to its union once
    union funds has learned the union from membership's events."""
    await retrying(  # 404 until membership's event about the union has arrived
        "union funds learns the demo union",
        lambda: staff.get("/remittances", params={"union_id": EMPLOYER_UNION}),
    )
    first = date.today().replace(day=1)
    month = (first - timedelta(days=1)).strftime("%Y-%m")
    pharma = next(o for o in ORGANISATIONS if o["id"] == EMPLOYER_UNION)["employer"]
    answer = await tax.post(
        "/remittances/batches",
        json={
            "batch_id": f"demo-remittance-{month}",
            "records": [
                {
                    "employer_credit_code": pharma["credit_code"],
                    "employer_name": pharma["name"],
                    "period": month,
                    "payroll_base_fen": 50_000_000,
                    "amount_fen": 1_000_000,  # 2% of the payroll
                    "paid_on": first.isoformat(),
                }
            ],
        },
    )
    if answer.status_code >= 400:
        raise RuntimeError(f"demo remittance failed: {answer.status_code} {answer.text}")
    outcome = answer.json()["records"][0]["outcome"]
    print(f"[demo] union funds: the tax bureau's remittance for {month} {outcome}")


async def main() -> int:
    creds = await demo_credentials()
    async with client(creds["membership"]) as c:
        member_ids = await membership(c)
    async with client(creds["mutual_aid"]) as c:
        await mutual_aid(c, member_ids)
    async with client(creds["training"]) as c:
        await training(c, member_ids)
    tax = creds["departments"]["tax"]["union_funds"]
    async with client(creds["union_funds"]) as staff, client(tax) as c:
        await union_funds(staff, c)
    print(
        f"[demo] credentials in {SAVED}: staff for each service, and under departments for"
        f" {', '.join(ROLES)} (README: Walking each department's flow)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
