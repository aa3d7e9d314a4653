"""HTTP routes of the membership service: validate, call a handler, shape the answer.

ID numbers and mobile numbers are masked in every answer unless the caller holds the
``members:read_personal`` scope.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from services.membership import commands as c
from services.membership import handlers
from services.membership.domain import Category, Status, roll_up
from services.membership.handlers import MembershipUnitOfWork
from services.membership.identity import normalise_card_number, normalise_id_number
from services.membership.repository import Members, Organisations, member_of
from services.membership.roster_files import read_header, write_json_rows
from services.membership.roster_import import create_job
from shared.auth import Caller, require_scope
from shared.errors import NotFound
from shared.masking import mask_id_number, mask_mobile

router = APIRouter()
PERSONAL = "members:read_personal"


# Dependencies are coroutines: FastAPI runs a plain function in a worker thread, per request.
async def uow(request: Request) -> MembershipUnitOfWork:
    runtime = request.app.state.runtime
    return MembershipUnitOfWork(runtime.pool, runtime.settings.events_topic)


async def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


Uow = Annotated[MembershipUnitOfWork, Depends(uow)]
Pool = Annotated[asyncpg.Pool, Depends(pool)]


def member_view(m: Any, caller: Caller) -> dict[str, Any]:
    member = member_of(m) if isinstance(m, asyncpg.Record) else m
    personal = PERSONAL in caller.scopes
    number, mobile = member.resident_id.number, member.mobile
    return {
        "id": member.id,
        "name": member.name,
        "id_number": number if personal else mask_id_number(number),
        "mobile": (mobile if personal else mask_mobile(mobile)) if mobile else None,
        "sex": member.resident_id.sex.value,
        "birth_date": member.resident_id.birth_date.isoformat(),
        "categories": sorted(member.categories),
        "employer_name": member.employer_name,
        "channel": member.channel.value,
        "union_id": member.union_id,
        "status": member.status.value,
        "joined_on": member.joined_on.isoformat(),
        "card_number": member.card_number,
        "timeline": [
            {"start": s.start.isoformat(), "status": s.status.value, "union_id": s.union_id}
            for s in member.timeline
        ],
    }


def organisation_view(o: Any) -> dict[str, Any]:
    return {
        "id": o.id,
        "name": o.name,
        "kind": o.kind.value,
        "parent_id": o.parent_id,
        "path": o.path,
        "employer": None
        if o.employer is None
        else {
            "name": o.employer.name,
            "credit_code": o.employer.credit_code,
            "headcount_band": o.employer.headcount_band.value,
            "address": o.employer.address,
        },
        "founded_on": o.founded_on.isoformat() if o.founded_on else None,
        "dissolved_on": o.dissolved_on.isoformat() if o.dissolved_on else None,
    }


# Organisations ---------------------------------------------------------------------------------


@router.post("/organisations", status_code=201, tags=["organisations"])
async def establish(
    cmd: c.EstablishOrganisation,
    uow: Uow,
    pool: Pool,
    _: Caller = Depends(require_scope("organisations:write")),
) -> dict[str, Any]:
    org_id = await handlers.establish_organisation(cmd, uow)
    async with pool.acquire() as conn:
        return organisation_view(await Organisations(conn).get(org_id))


@router.get("/organisations/{org_id}", tags=["organisations"])
async def get_organisation(
    org_id: str, pool: Pool, _: Caller = Depends(require_scope("organisations:read"))
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return organisation_view(await Organisations(conn).get(org_id))


def _organisation_action(method: str, path: str, command: type[c.Command], handler: Any) -> None:
    async def act(
        org_id: str,
        cmd: c.Command,
        uow: Uow,
        pool: Pool,
        caller: Caller = Depends(require_scope("organisations:write")),
    ) -> dict[str, Any]:
        await handler(org_id, cmd, uow)
        return await get_organisation(org_id, pool, caller)

    act.__annotations__["cmd"] = command  # each route validates its own command
    router.add_api_route(
        f"/organisations/{{org_id}}{path}",
        act,
        methods=[method],
        tags=["organisations"],
        name=f"{handler.__name__}",
    )


_organisation_action("PATCH", "", c.RenameOrganisation, handlers.rename_organisation)
_organisation_action("POST", "/move", c.MoveOrganisation, handlers.move_organisation)
_organisation_action("POST", "/dissolve", c.DissolveOrganisation, handlers.dissolve_organisation)


@router.get("/organisations/{org_id}/statistics", tags=["organisations"])
async def statistics(
    org_id: str,
    pool: Pool,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    _: Caller = Depends(require_scope("reports:read")),
) -> dict[str, Any]:
    """Members by category, new members and new unions in the period, over the subtree."""
    async with pool.acquire() as conn:
        await Organisations(conn).get(org_id)
        tree = await Organisations(conn).tree(org_id)
        counts: dict[str, dict[str, int]] = {
            r["id"]: {
                "new_unions": int(r["founded_on"] is not None and start <= r["founded_on"] <= end)
            }
            for r in tree
        }
        for r in await Members(conn).counts_by_union([t["id"] for t in tree], start, end):
            counts[r["union_id"]].update({k: v for k, v in r.items() if k != "union_id"})
    totals = roll_up(
        [(r["id"], r["parent_id"] if r["id"] != org_id else None) for r in tree], counts
    )
    return {"organisation_id": org_id, "from": start, "to": end, "totals": dict(totals[org_id])}


@router.get("/organisations/{org_id}/members", tags=["members"])
async def union_roster(
    org_id: str,
    pool: Pool,
    caller: Caller = Depends(require_scope("members:read")),
    status: Annotated[Status | None, Query()] = None,
    category: Annotated[Category | None, Query()] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        await Organisations(conn).get(org_id)
        rows = await Members(conn).roster(
            org_id,
            status=status.value if status else None,
            category=category.value if category else None,
            after=after,
            limit=limit,
        )
    items = [member_view(r, caller) for r in rows]
    return {"items": items, "next_after": items[-1]["id"] if len(items) == limit else None}


# Members ---------------------------------------------------------------------------------------


async def _member(pool: asyncpg.Pool, member_id: str, caller: Caller) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return member_view(await Members(conn).get(member_id), caller)


@router.post("/members", status_code=201, tags=["members"])
async def join(
    cmd: c.JoinUnion, uow: Uow, caller: Caller = Depends(require_scope("members:join"))
) -> dict[str, Any]:
    caller.ensure_organisation(cmd.union_id, field="union_id")
    return member_view(await handlers.join(cmd, uow), caller)  # as written: no second read


@router.get("/members/{member_id}", tags=["members"])
async def get_member(
    member_id: str, pool: Pool, caller: Caller = Depends(require_scope("members:read"))
) -> dict[str, Any]:
    return await _member(pool, member_id, caller)


@router.get("/members/{member_id}/standing", tags=["members"])
async def standing(
    member_id: str,
    pool: Pool,
    on: date,
    _: Caller = Depends(require_scope("members:read")),
) -> dict[str, Any]:
    """Was this person a member on ``on``, and of which union."""
    async with pool.acquire() as conn:
        member = await Members(conn).get(member_id)
    status = member.status_on(on)
    return {
        "member_id": member_id,
        "on": on,
        "member": status is not None and status is not Status.LEFT,
        "active": member.was_active_on(on),
        "status": status.value if status else None,
        "union_id": member.union_on(on),
    }


@router.get("/cards/{card_number}", tags=["members"])
async def by_card(
    card_number: str, pool: Pool, caller: Caller = Depends(require_scope("members:read"))
) -> dict[str, Any]:
    number = normalise_card_number(card_number)
    async with pool.acquire() as conn:
        member_id = await Members(conn).id_of(card_number=number)
        if member_id is None:
            raise NotFound("card_number", "no member has this card")
        member = await Members(conn).get(member_id)
    return member_view(member, caller) | {"card_valid": member.card_is_valid(number)}


@router.post("/members/lookup", tags=["members"])
async def by_id_number(
    body: dict[str, str], pool: Pool, caller: Caller = Depends(require_scope(PERSONAL))
) -> dict[str, Any]:
    """By resident ID number, sent in the body so it never lands in access logs."""
    number = normalise_id_number(body.get("id_number", ""))
    async with pool.acquire() as conn:
        member_id = await Members(conn).id_of(id_number=number)
    if member_id is None:
        raise NotFound("id_number", "no member has this ID number")
    return await _member(pool, member_id, caller)


@router.patch("/members/{member_id}", tags=["members"])
async def correct(
    member_id: str,
    cmd: c.CorrectDetails,
    uow: Uow,
    pool: Pool,
    caller: Caller = Depends(require_scope("members:write")),
) -> dict[str, Any]:
    changed = await handlers.correct_details(member_id, cmd, uow)
    return await _member(pool, member_id, caller) | {"changed_fields": changed}


def _member_action(path: str, command: type[c.Command], handler: Any, scope: str) -> None:
    async def act(
        member_id: str,
        cmd: c.Command,
        uow: Uow,
        pool: Pool,
        caller: Caller = Depends(require_scope(scope)),
    ) -> dict[str, Any]:
        await handler(member_id, cmd, uow)
        return await _member(pool, member_id, caller)

    act.__annotations__["cmd"] = command  # each route validates its own command
    router.add_api_route(
        f"/members/{{member_id}}/{path}", act, methods=["POST"], tags=["members"], name=path
    )


_member_action("transfer", c.Transfer, handlers.transfer, "members:write")
_member_action("suspend", c.Suspend, handlers.suspend, "members:write")
_member_action("reinstate", c.Reinstate, handlers.reinstate, "members:write")
_member_action("leave", c.Leave, handlers.leave, "members:write")
_member_action("card/reissue", c.ReissueCard, handlers.reissue_card, "members:write")


# Roster sync -----------------------------------------------------------------------------------


def _spool_dir(request: Request) -> Path:
    path = Path(request.app.state.runtime.settings.roster_dir or tempfile.gettempdir())
    path.mkdir(parents=True, exist_ok=True)
    return path


def _spool(file: UploadFile, to: Path) -> None:
    with to.open("wb") as out:
        shutil.copyfileobj(file.file, out)


# NOTIFY channel (after the schema's name) on which a new roster job wakes the process that
# runs the service's background work (services.membership.main), wherever that runs.
ROSTER_JOBS_CHANNEL = "_roster_jobs"


async def _start_job(
    request: Request, org_id: str, batch_id: str, complete: bool, source: str, spooled: Path
) -> JSONResponse:
    runtime = request.app.state.runtime
    async with runtime.pool.acquire() as conn, conn.transaction():
        await Organisations(conn).get(org_id)
        job_id, created = await create_job(conn, org_id, batch_id, source, complete)
        if created:
            # Renamed before the job commits: whoever runs it looks for its file at once.
            spooled = spooled.rename(spooled.with_name(f"{job_id}{spooled.suffix}"))
            await conn.execute(
                "SELECT pg_notify(current_schema() || $1, $2)", ROSTER_JOBS_CHANNEL, job_id
            )
    if not created:
        spooled.unlink(missing_ok=True)
        return JSONResponse(await _job(runtime.pool, job_id) | {"duplicate": True}, status_code=200)
    return JSONResponse(await _job(runtime.pool, job_id), status_code=202)


@router.post("/organisations/{org_id}/rosters", status_code=202, tags=["roster sync"])
async def submit_roster_csv(
    request: Request,
    org_id: str,
    file: Annotated[UploadFile, File(description="CSV, UTF-8 or GBK")],
    batch_id: Annotated[str, Form(min_length=1, max_length=80)],
    complete: Annotated[bool, Form()] = False,
    caller: Caller = Depends(require_scope("roster:submit")),
) -> JSONResponse:
    caller.ensure_organisation(org_id)
    spooled = _spool_dir(request) / f"upload-{batch_id.encode().hex()[:40]}-{id(file)}.csv"
    await asyncio.to_thread(_spool, file, spooled)
    try:
        read_header(spooled)  # a wrong encoding or header is refused before any job starts
    except Exception:
        spooled.unlink(missing_ok=True)
        raise
    return await _start_job(request, org_id, batch_id, complete, "csv", spooled)


@router.post("/organisations/{org_id}/rosters/batch", status_code=202, tags=["roster sync"])
async def submit_roster_json(
    request: Request,
    org_id: str,
    batch: c.RosterBatch,
    caller: Caller = Depends(require_scope("roster:submit")),
) -> JSONResponse:
    caller.ensure_organisation(org_id)
    spooled = _spool_dir(request) / f"upload-{batch.batch_id.encode().hex()[:40]}-{id(batch)}.jsonl"
    await asyncio.to_thread(write_json_rows, spooled, batch.rows)
    return await _start_job(request, org_id, batch.batch_id, batch.complete, "json", spooled)


async def _job(pool: asyncpg.Pool, job_id: str) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT * FROM roster_jobs WHERE id = $1", job_id)
    if row is None:
        raise NotFound("job_id", f"no roster job {job_id}")
    job = dict(row)
    job["created_at"] = job["created_at"].isoformat()
    job["finished_at"] = job["finished_at"].isoformat() if job["finished_at"] else None
    return job


@router.get("/rosters/{job_id}", tags=["roster sync"])
async def roster_job(
    job_id: str, pool: Pool, caller: Caller = Depends(require_scope("roster:submit"))
) -> dict[str, Any]:
    job = await _job(pool, job_id)
    caller.ensure_organisation(job["organisation_id"])
    return job


@router.get("/rosters/{job_id}/errors", tags=["roster sync"])
async def roster_errors(
    job_id: str,
    pool: Pool,
    caller: Caller = Depends(require_scope("roster:submit")),
    after_row: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    job = await _job(pool, job_id)
    caller.ensure_organisation(job["organisation_id"])
    rows = await pool.fetch(
        "SELECT row_number, field, reason FROM roster_errors WHERE job_id = $1 AND row_number > $2"
        " ORDER BY row_number LIMIT $3",
        job_id,
        after_row,
        limit,
    )
    return {"items": [dict(r) for r in rows]}


@router.get("/rosters/{job_id}/changes", tags=["roster sync"])
async def roster_changes(
    job_id: str,
    pool: Pool,
    caller: Caller = Depends(require_scope("roster:submit")),
    change: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    job = await _job(pool, job_id)
    caller.ensure_organisation(job["organisation_id"])
    rows = await pool.fetch(
        "SELECT member_id, change, fields FROM roster_changes WHERE job_id = $1"
        " AND ($2::text IS NULL OR change = $2) ORDER BY member_id LIMIT $3 OFFSET $4",
        job_id,
        change,
        limit,
        offset,
    )
    return {"items": [dict(r) for r in rows]}
