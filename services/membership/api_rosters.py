"""HTTP routes of HR roster sync: an employer's or an HR bureau's staff roster, as a CSV file or a
JSON batch, becomes a job that joins, corrects, transfers and (for a complete roster) takes off
members; the submitter follows the job and reads its per-row errors and changes.

A roster is spooled to disk and answered at once (202); the process running the service's
background work applies it (:mod:`services.membership.roster_import`). docs/rosters.md is the
guide for HR departments.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, File, Form, Query, Request, Response, UploadFile
from fastapi import Path as PathParam

from services.membership import commands as c
from services.membership.api import OrgId, Pool
from services.membership.repository import Organisations
from services.membership.roster_files import (
    CSV_UPLOAD_LIMIT,
    JSON_BATCH_LIMIT,
    read_header,
    write_json_rows,
)
from services.membership.roster_import import create_job
from services.membership.views import (
    ChangeKind,
    RosterChangePage,
    RosterChangeView,
    RosterErrorPage,
    RosterErrorView,
    RosterJobView,
    roster_job_view,
)
from shared.auth import Caller, require_scope
from shared.errors import NotFound
from shared.http import router as shared_router
from shared.inputs import Offset

router = shared_router()
SCOPE = "roster:submit"
# NOTIFY channel (after the schema's name) on which a new roster job wakes the process that
# runs the service's background work (services.membership.main), wherever that runs.
ROSTER_JOBS_CHANNEL = "_roster_jobs"
JobId = Annotated[
    str, PathParam(max_length=64, description="The job's id", examples=["roster-5f0c2a9e1b7d4c3a"])
]
ROW_NUMBER_MAX = 2**31 - 1  # row numbers are Postgres integers
MIB = 1024 * 1024

_DUPLICATE: dict[int | str, dict[str, Any]] = {
    200: {
        "model": RosterJobView,
        "description": "This batch id was submitted before: the first job, with duplicate true",
    }
}
_FOLLOWING = """
**The answer** (202) is the job: `state` is `queued`. Follow it with `GET /rosters/{id}` until
`state` is `done` or `failed` (poll every few seconds; a 657,000-row roster takes minutes). Then
`GET /rosters/{id}/errors` lists the rows that were not applied (`row_number`, `field`, `code`,
`message`) and `GET /rosters/{id}/changes` who joined, was corrected, transferred in, rejoined or
left. A failed job says why in `failure` (`code` `unreadable_id_numbers`: some rows had no
readable ID number, so nobody was taken off; `empty_complete_roster`; `unsupported_encoding`:
part of the file is in another encoding); rows applied before a failure stay applied.

**Idempotency**: `batch_id` is yours (e.g. your export's date and number). The same `batch_id`
for the same union again is answered 200 with the first job and `duplicate: true`, whatever the
file: send a corrected roster under a new `batch_id`.

**Complete rosters**: with `complete` true the roster is everyone: current members of the union
not on it leave the union (reason "not on the complete roster ..."). Rows with errors still count
as on the roster, so a typo in a mobile number never takes anyone off; but if any row's ID number
cannot be read, nobody is taken off (the job fails with `unreadable_id_numbers` after applying
the other rows) and you send it again corrected. A complete roster without rows is refused
(`empty_complete_roster`). Without `complete` (the default) nobody leaves.

**What each row does**: a new ID number joins the union (channel `employer_batch`, card issued);
a member of this union has name, mobile and categories corrected to the roster's (columns left
empty keep what is recorded); a member of another union transfers in; someone who left rejoins.
A suspended member stays suspended.

A credential limited to some unions submits only for them (403 `organisation_not_allowed`);
404 `organisation_not_found` for an unknown union. Guide and example file: `docs/rosters.md`,
`docs/examples/roster-example.csv`.
"""


def _spool_dir(request: Request) -> Path:
    path = Path(request.app.state.runtime.settings.roster_dir or tempfile.gettempdir())
    path.mkdir(parents=True, exist_ok=True)
    return path


def _spool(file: UploadFile, to: Path) -> None:
    with to.open("wb") as out:
        shutil.copyfileobj(file.file, out)


async def _start_job(
    request: Request,
    response: Response,
    org_id: str,
    batch_id: str,
    complete: bool,
    source: str,
    spooled: Path,
) -> RosterJobView:
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
        response.status_code = 200
    return await _job(runtime.pool, job_id, duplicate=not created)


@router.post(
    "/organisations/{org_id}/rosters",
    status_code=202,
    tags=["roster sync"],
    response_model=RosterJobView,
    responses=_DUPLICATE,
    summary="Submit a union's staff roster as a CSV file (HR systems, spreadsheets)",
    description=f"""An employer's HR department (or the HR bureau) sends its staff roster as a CSV
file, `multipart/form-data` with the fields `file`, `batch_id` and `complete`. The service keeps
the union's members in step with it.

**The file**: CSV with a header row, one person a row, at most {CSV_UPLOAD_LIMIT // MIB} MiB
(657,000 rows fit; a larger body is answered 413). Encoding UTF-8 (with or without a byte-order
mark), GBK or GB18030, as Excel and WPS save "CSV"; UTF-16 ("Unicode text") is refused. Columns,
in any order, headers in English or Chinese:

- `id_number` (身份证号, 身份证号码, 公民身份号码): required, 18 characters with the check
  character;
- `name` (姓名): required, at most 50 characters;
- `mobile` (手机, 手机号, 手机号码, 联系电话): optional, 11 digits; spaces, dashes and +86 are
  fine;
- `categories` (类别, 人员类别): optional, 农民工 (migrant_worker), 新就业形态
  (new_employment_form), 女 (woman, which must agree with the ID number); several separated by
  、 , ; or |;
- `joined_on` (入会日期, 入会时间): optional, YYYY-MM-DD or YYYY/MM/DD; for new members only,
  today if empty.

Another header is refused before any job starts (422 `unknown_column`, `missing_columns`,
`unsupported_encoding`, `empty_file`, all naming `file`). Rows are checked one by one; a bad row
is reported with the number the spreadsheet shows it under (the header is row 1, so the first
person is row 2) and the good rows are applied.
{_FOLLOWING}""",
)
async def submit_roster_csv(
    request: Request,
    response: Response,
    org_id: OrgId,
    file: Annotated[
        UploadFile, File(description="The roster, CSV in UTF-8, GBK or GB18030, header first")
    ],
    batch_id: Annotated[
        str,
        Form(
            min_length=1,
            max_length=80,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="Your id for this roster: the same id again answers the first job",
            examples=["2026-07-hr-export"],
        ),
    ],
    complete: Annotated[
        bool, Form(description="true: this is everyone; members not on it leave the union")
    ] = False,
    caller: Caller = Depends(require_scope(SCOPE)),
) -> RosterJobView:
    caller.ensure_organisation(org_id)
    spooled = _spool_dir(request) / f"upload-{batch_id.encode().hex()[:40]}-{id(file)}.csv"
    await asyncio.to_thread(_spool, file, spooled)
    try:
        read_header(spooled)  # a wrong encoding or header is refused before any job starts
    except Exception:
        spooled.unlink(missing_ok=True)
        raise
    return await _start_job(request, response, org_id, batch_id, complete, "csv", spooled)


@router.post(
    "/organisations/{org_id}/rosters/batch",
    status_code=202,
    tags=["roster sync"],
    response_model=RosterJobView,
    responses=_DUPLICATE,
    summary="Submit a union's staff roster as JSON (HR systems that call APIs)",
    description=f"""The same as the CSV upload for systems that send JSON: `rows` holds up to
100,000 people (the body at most {JSON_BATCH_LIMIT // MIB} MiB; send a larger roster as CSV),
each with `id_number`, `name` and optionally `mobile`, `categories` (text or a list) and
`joined_on`. A field not listed is refused (422 naming it, e.g. `rows[3].idnumber`), so a
misspelt key never empties a column; values are checked row by row when the job runs, and a
bad row is reported with its position in `rows`, the first being row 1.
{_FOLLOWING}""",
)
async def submit_roster_json(
    request: Request,
    response: Response,
    org_id: OrgId,
    batch: c.RosterBatch,
    caller: Caller = Depends(require_scope(SCOPE)),
) -> RosterJobView:
    caller.ensure_organisation(org_id)
    spooled = _spool_dir(request) / f"upload-{batch.batch_id.encode().hex()[:40]}-{id(batch)}.jsonl"
    rows = [row.model_dump(exclude_none=True) for row in batch.rows]
    await asyncio.to_thread(write_json_rows, spooled, rows)
    return await _start_job(
        request, response, org_id, batch.batch_id, batch.complete, "json", spooled
    )


async def _job(pool: asyncpg.Pool, job_id: str, *, duplicate: bool = False) -> RosterJobView:
    row = await pool.fetchrow("SELECT * FROM roster_jobs WHERE id = $1", job_id)
    if row is None:
        raise NotFound("job_id", "roster_job_not_found", f"no roster job {job_id}")
    return roster_job_view(row, duplicate=duplicate)


@router.get(
    "/rosters/{job_id}",
    tags=["roster sync"],
    response_model=RosterJobView,
    summary="Follow a roster job",
)
async def roster_job(
    job_id: JobId, pool: Pool, caller: Caller = Depends(require_scope(SCOPE))
) -> RosterJobView:
    """The job a roster submission answered with: its `state` (queued, running, done, failed),
    the counts so far and, for a failed job, `failure` (`field`, `code`, `message`). Poll it
    every few seconds until done or failed. 404 `roster_job_not_found`; 403
    `organisation_not_allowed` for another union's job."""
    job = await _job(pool, job_id)
    caller.ensure_organisation(job.organisation_id)
    return job


@router.get(
    "/rosters/{job_id}/errors",
    tags=["roster sync"],
    response_model=RosterErrorPage,
    summary="The rows of a roster that were not applied, and why",
)
async def roster_errors(
    job_id: JobId,
    pool: Pool,
    caller: Caller = Depends(require_scope(SCOPE)),
    after_row: Annotated[
        int, Query(ge=0, le=ROW_NUMBER_MAX, description="The previous page's next_after_row")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Rows (not errors) a page")] = 200,
) -> RosterErrorPage:
    """Every error of the job's rows in row order: `row_number` is the row as the spreadsheet
    shows it (header row 1) for a CSV file, the position in `rows` (from 1) for a JSON batch;
    `field` the column; `code` what is wrong (e.g. `check_character_mismatch`, `not_11_digits`,
    `duplicate_id_number`; all in docs/errors/membership.md) and `message` in words. A page holds
    every error of up to `limit` rows; pass `next_after_row` as `after_row` until it is None."""
    job = await _job(pool, job_id)
    caller.ensure_organisation(job.organisation_id)
    rows = await pool.fetch(
        "SELECT row_number, field, code, message FROM roster_errors"
        " WHERE job_id = $1 AND row_number IN (SELECT DISTINCT row_number FROM roster_errors"
        " WHERE job_id = $1 AND row_number > $2 ORDER BY row_number LIMIT $3)"
        " ORDER BY row_number",
        job_id,
        after_row,
        limit,
    )
    items = [RosterErrorView(**dict(r)) for r in rows]
    full = len({e.row_number for e in items}) == limit
    return RosterErrorPage(items=items, next_after_row=items[-1].row_number if full else None)


@router.get(
    "/rosters/{job_id}/changes",
    tags=["roster sync"],
    response_model=RosterChangePage,
    summary="What a roster job changed, member by member",
)
async def roster_changes(
    job_id: JobId,
    pool: Pool,
    caller: Caller = Depends(require_scope(SCOPE)),
    change: Annotated[ChangeKind | None, Query(description="Only this kind of change")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> RosterChangePage:
    """Each member the job joined, corrected (with the fields), transferred in, rejoined or took
    off (left), by member id; pass `next_offset` as `offset` until it is None."""
    job = await _job(pool, job_id)
    caller.ensure_organisation(job.organisation_id)
    rows = await pool.fetch(
        "SELECT member_id, change, fields FROM roster_changes WHERE job_id = $1"
        " AND ($2::text IS NULL OR change = $2) ORDER BY member_id LIMIT $3 OFFSET $4",
        job_id,
        change.value if change else None,
        limit,
        offset,
    )
    items = [RosterChangeView(**dict(r)) for r in rows]
    return RosterChangePage(
        items=items, next_offset=offset + limit if len(items) == limit else None
    )
