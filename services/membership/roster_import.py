"""Roster sync jobs: apply a submitted HR roster to a union's members, chunk by chunk.

Each chunk of rows is one transaction: members joined, corrected, transferred or rejoined, their
events (outbox), the job's counters, per-row errors and the change log. A job interrupted by a
restart resumes after its last committed chunk; the rows before it are read again only to
remember their ID numbers (for duplicates and leavers). The same batch id twice is one job.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import itertools
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import asyncpg

from services.membership.domain import DomainError, Member, Organisation
from services.membership.repository import Members, Organisations
from services.membership.roster import (
    ChunkDiff,
    Match,
    NumberedRow,
    RosterRow,
    RosterSync,
    RowError,
)
from services.membership.roster_files import rows_of
from services.membership.settings import Settings
from services.membership.unit_of_work import MembershipUnitOfWork
from shared.clock import Clock
from shared.db import lock_key, session_lock

log = logging.getLogger(__name__)
# A chunk is one transaction. Two are in memory at once (one written while the next is checked),
# some 7 KB a member (the member, its MemberJoined, its COPY and outbox rows): the job alone,
# 100,000 rows in-process, raised the peak RSS by 85 MB at 5,000 a chunk, 50 MB at 2,000, 31 MB
# at 1,000.
# Smaller is not free: each chunk waits for a dozen round trips and a commit's WAL flush in turn,
# and with the relay and consumers busy beside it 1,000-row chunks halved the import's rate in
# the benchmark (1,250-1,600 rows/s against 2,900-3,100 at 2,000 and 5,000).
CHUNK_ROWS = 2000
CHANNEL = "employer_batch"
CHILD_MODULE = "services.membership.roster_child"
RACE_ATTEMPTS = 3  # a chunk compared again this often when others join the same people
# Allocations between the cyclic collector's youngest passes while a job runs (default 700).
GC_YOUNGEST_THRESHOLD = 20_000
_jobs_running = 0
_threshold_before = gc.get_threshold()


class Failure(NamedTuple):
    """Why a job failed, in the one error contract: the field, a code and a message."""

    field: str
    code: str
    message: str


FILE_GONE = Failure("file", "file_gone", "interrupted and its file is gone: submit it again")


def failure_of(exc: Exception) -> Failure:
    """What a job that stopped on ``exc`` tells its submitter."""
    if isinstance(exc, DomainError):
        return Failure(exc.field, exc.code, exc.message)
    if isinstance(exc, UnicodeDecodeError):
        # The encoding was read from the file's first 64 KiB; a later part is in another one.
        message = f"not {exc.encoding} text throughout: save the whole roster in one encoding"
        return Failure("file", "unsupported_encoding", message)
    if isinstance(exc, csv.Error | ValueError):
        return Failure("file", "unreadable_csv", f"not a readable CSV file ({exc})")
    return Failure("job", "internal_error", f"internal error ({type(exc).__name__}); submit again")


@contextmanager
def _collector_spaced_out() -> Iterator[None]:
    """Run the cyclic garbage collector less often while roster jobs run in this process.

    The two chunks in flight keep some 40,000 objects (members, events, rows) alive long
    enough to reach the oldest generation, and at the default threshold that sets off a full
    pass over every object of the process every few thousand rows: a third of the import's CPU.
    Reference counting frees a chunk's objects anyway (they form no cycles); the collector only
    looks for cycles.
    """
    global _jobs_running, _threshold_before
    if _jobs_running == 0:
        _threshold_before = gc.get_threshold()
        gc.set_threshold(GC_YOUNGEST_THRESHOLD, *_threshold_before[1:])
    _jobs_running += 1
    try:
        yield
    finally:
        _jobs_running -= 1
        if _jobs_running == 0:
            gc.set_threshold(*_threshold_before)


async def create_job(
    conn: asyncpg.Connection, organisation_id: str, batch_id: str, source: str, complete: bool
) -> tuple[str, bool]:
    """The job for this batch: (job id, created now). A repeated batch id finds the first job."""
    job_id = f"roster-{uuid.uuid4().hex[:16]}"
    created = await conn.fetchval(
        "INSERT INTO roster_jobs (id, organisation_id, batch_id, source, complete, state)"
        " VALUES ($1, $2, $3, $4, $5, 'queued') ON CONFLICT (organisation_id, batch_id) DO NOTHING"
        " RETURNING id",
        job_id,
        organisation_id,
        batch_id,
        source,
        complete,
    )
    if created:
        return created, True
    existing = await conn.fetchval(
        "SELECT id FROM roster_jobs WHERE organisation_id = $1 AND batch_id = $2",
        organisation_id,
        batch_id,
    )
    return existing, False


def _member_ids(count: int) -> list[str]:
    """New member ids: the time in milliseconds, then 80 random bits, in hex.

    Time-ordered, so a roster's members land at the right-hand end of the members' indexes on
    id rather than on a random page each (which, 657,000 times, made Postgres the bottleneck).
    """
    millis = f"m-{time.time_ns() // 1_000_000:012x}"
    digits = os.urandom(10 * count).hex()
    return [millis + digits[i : i + 20] for i in range(0, 20 * count, 20)]


class _Chunk(NamedTuple):
    """A checked chunk whose joiners are built, waiting for its transaction."""

    rows: int
    good: list[RosterRow]
    checked: list[RowError]  # the rows' own errors, before comparing with the members
    union: Organisation
    diff: ChunkDiff
    joined: list[Member]
    errors: list[RowError]


class RosterJob:
    def __init__(
        self,
        pool: asyncpg.Pool,
        units: Callable[[], MembershipUnitOfWork],
        clock: Clock,
        job_id: str,
        path: Path,
        *,
        dsn: str,
        schema: str,
    ) -> None:
        self.pool = pool  # the job's own rows (state, counters); members change in units of work
        self.units = units
        self.job_id = job_id
        self.path = path
        self.dsn = dsn  # the job's lock is held on a connection of its own, not a pooled one
        self.schema = schema
        self.today = clock.today()

    async def run(self) -> None:
        """Run the job unless another process already does: every process that runs roster jobs
        looks for waiting ones, and a session lock on the job's id lets exactly one run it (a
        process that dies drops its session, so another can resume the job)."""
        async with session_lock(self.dsn, self.schema, _lock_name(self.job_id)) as held:
            if held:
                await self._run_locked()

    async def _run_locked(self) -> None:
        try:
            with _collector_spaced_out():
                await self._run()
        except (DomainError, csv.Error, ValueError) as exc:  # the file or a rule: no bug
            await self._finish("failed", failure_of(exc))
        except asyncio.CancelledError:
            raise  # a shutdown: the job resumes at the next start
        except Exception as exc:
            log.exception("roster job %s failed", self.job_id)
            await self._finish("failed", failure_of(exc))
        else:
            self.path.unlink(missing_ok=True)

    async def _run(self) -> None:
        job = await self.pool.fetchrow("SELECT * FROM roster_jobs WHERE id = $1", self.job_id)
        assert job is not None
        if job["state"] in ("done", "failed"):
            return
        await self.pool.execute(
            "UPDATE roster_jobs SET state = 'running' WHERE id = $1", self.job_id
        )
        sync = RosterSync(
            union_id=job["organisation_id"], complete=job["complete"], today=self.today
        )
        rows = rows_of(self.path)
        done = job["rows_read"]
        if done:  # resuming: re-read what was applied only to remember its ID numbers
            sync.check(itertools.islice(rows, done))
        chunks = iter(lambda: list(itertools.islice(rows, CHUNK_ROWS)), [])
        # While one chunk's transaction keeps Postgres busy, the next is checked and its members
        # built here: the two cores work at once. Chunks still commit one after another.
        async with self.pool.acquire() as conn:
            prepared = await self._prepare(conn, sync, next(chunks, None))
            while prepared is not None:
                writing = asyncio.create_task(self._write(sync, prepared))
                try:
                    prepared = await self._prepare(conn, sync, next(chunks, None))
                finally:
                    await writing  # committed (or failed) before the job goes on or stops
        await self._apply_leavers(sync)
        await self._finish("done", None)

    async def _prepare(
        self, conn: asyncpg.Connection, sync: RosterSync, raw_rows: list[NumberedRow] | None
    ) -> _Chunk | None:
        """Check a chunk, compare it with the members and build its joiners, outside any
        transaction: the chunks before it never hold the same ID numbers (duplicates are errors).
        """
        if raw_rows is None:
            return None
        good, checked = sync.check(raw_rows)
        return await self._compare(conn, sync, len(raw_rows), good, checked)

    async def _compare(
        self,
        conn: asyncpg.Connection,
        sync: RosterSync,
        rows: int,
        good: list[RosterRow],
        checked: list[RowError],
    ) -> _Chunk:
        members = Members(conn)
        union = await Organisations(conn).get(sync.union_id)
        diff = sync.diff(await members.snapshots([r.id_number for r in good]), good)
        errors = list(checked)
        joined = await self._joins(members, union, diff, errors)
        return _Chunk(rows, good, checked, union, diff, joined, errors)

    async def _write(self, sync: RosterSync, chunk: _Chunk) -> None:
        """Write a chunk; if someone joined meanwhile with an ID number it was to add (an online
        join between comparing and writing), compare it again and write what is true now."""
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                await self._write_once(chunk)
                return
            except asyncpg.UniqueViolationError:
                if attempt == RACE_ATTEMPTS:
                    raise
            async with self.pool.acquire() as conn:
                chunk = await self._compare(conn, sync, chunk.rows, chunk.good, chunk.checked)

    async def _write_once(self, chunk: _Chunk) -> None:
        """One chunk's transaction: joiners, matched members (locked and changed here), events,
        change log, errors and the job's counters."""
        diff, joined, errors = chunk.diff, chunk.joined, chunk.errors
        async with self.units() as uow:
            uow.correlation_id = self.job_id
            members, conn = uow.members, uow.conn
            changed = await self._matches(members, chunk.union, diff, errors)
            await members.add_many(joined)
            if changed:
                await members.save_many(changed)
            events = sum(len(m.events) for m in (*joined, *changed))
            await self._log(conn, joined, diff, errors)
            rejected = len({e.row for e in errors})
            await conn.execute(
                "UPDATE roster_jobs SET rows_read = rows_read + $2, accepted = accepted + $3,"
                " rejected = rejected + $4, joined = joined + $5, changed = changed + $6,"
                " unchanged = unchanged + $7, events_written = events_written + $8 WHERE id = $1",
                self.job_id,
                chunk.rows,
                chunk.rows - rejected,
                rejected,
                len(joined),
                len(changed),
                len(diff.unchanged),
                events,
            )
            await uow.commit()  # the members' events go to the outbox with the chunk

    async def _joins(
        self, members: Members, union: Organisation, diff: ChunkDiff, errors: list[RowError]
    ) -> list[Member]:
        employer = union.employer.name if union.employer else None
        serials = iter(await members.card_serials(len(diff.joins)))
        joined: list[Member] = []
        for i, (row, member_id) in enumerate(
            zip(diff.joins, _member_ids(len(diff.joins)), strict=True)
        ):
            if i % 500 == 499:
                await asyncio.sleep(0)  # the previous chunk's transaction goes on meanwhile
            try:
                joined.append(
                    Member.join(
                        id=member_id,
                        name=row.name,
                        id_number=row.id_number,
                        mobile=row.mobile,
                        categories=row.categories or (),
                        channel=CHANNEL,
                        union=union,
                        employer_name=employer,
                        joined_on=row.joined_on or self.today,
                        card_serial=next(serials),
                        today=self.today,
                    )
                )
            except DomainError as exc:
                errors.append(RowError(row.row, exc.field, exc.code, exc.message))
        return joined

    async def _matches(
        self, members: Members, union: Organisation, diff: ChunkDiff, errors: list[RowError]
    ) -> list[Member]:
        matches: list[tuple[str, Match]] = [
            *(("change", m) for m in diff.changes),
            *(("transfer", m) for m in diff.transfers),
            *(("rejoin", m) for m in diff.rejoins),
        ]
        if not matches:
            return []
        loaded = {m.id: m for m in await members.by_ids([m.member_id for _, m in matches])}
        changed: list[Member] = []
        for kind, match in matches:
            member = loaded[match.member_id]
            row = match.row
            try:
                if kind == "rejoin":
                    on = row.joined_on or self.today
                    member.rejoin(union=union, on=on, channel=CHANNEL, today=self.today)
                elif kind == "transfer":
                    member.transfer(to_union=union, on=self.today, today=self.today)
                if match.changed_fields:
                    member.correct_details(
                        name=row.name if "name" in match.changed_fields else None,
                        mobile=row.mobile if "mobile" in match.changed_fields else None,
                        categories=row.categories if "categories" in match.changed_fields else None,
                    )
            except DomainError as exc:
                member.events.clear()
                errors.append(RowError(row.row, exc.field, exc.code, exc.message))
                continue
            changed.append(member)
        return changed

    async def _log(
        self,
        conn: asyncpg.Connection,
        joined: list[Member],
        diff: ChunkDiff,
        errors: list[RowError],
    ) -> None:
        records: list[tuple[str, str, str, list[str]]] = [
            (self.job_id, m.id, "joined", []) for m in joined
        ]
        for change, matches in (
            ("corrected", diff.changes),
            ("transferred", diff.transfers),
            ("rejoined", diff.rejoins),
        ):
            records += [(self.job_id, m.member_id, change, list(m.changed_fields)) for m in matches]
        if records:
            await conn.copy_records_to_table(
                "roster_changes",
                records=records,
                columns=("job_id", "member_id", "change", "fields"),
            )
        if errors:
            await conn.copy_records_to_table(
                "roster_errors",
                records=[(self.job_id, e.row, e.field, e.code, e.message) for e in errors],
                columns=("job_id", "row_number", "field", "code", "message"),
            )

    async def _apply_leavers(self, sync: RosterSync) -> None:
        async with self.units() as uow:
            uow.correlation_id = self.job_id
            members, conn = uow.members, uow.conn
            numbers = sync.leavers(())  # none unless complete; refused if some ID was unreadable
            if sync.complete:  # the union's members, read in batches: there may be 657,000
                async for current in members.current_id_numbers(sync.union_id):
                    numbers += sync.leavers(current)
            batch = await conn.fetchval(
                "SELECT batch_id FROM roster_jobs WHERE id = $1", self.job_id
            )
            leaving = await members.by_ids(await members.ids_by_id_number(numbers))
            for member in leaving:
                reason = f"not on the complete roster {batch}"
                member.leave(on=self.today, reason=reason, today=self.today)
            await members.save_many(leaving)
            events = sum(len(m.events) for m in leaving)
            if leaving:
                await conn.copy_records_to_table(
                    "roster_changes",
                    records=[(self.job_id, m.id, "left", []) for m in leaving],
                    columns=("job_id", "member_id", "change", "fields"),
                )
            await conn.execute(
                "UPDATE roster_jobs SET left_union = $2, events_written = events_written + $3"
                " WHERE id = $1",
                self.job_id,
                len(leaving),
                events,
            )
            await uow.commit()

    async def _finish(self, state: str, failure: Failure | None) -> None:
        field, code, message = failure or (None, None, None)
        await self.pool.execute(
            "UPDATE roster_jobs SET state = $2, failure_field = $3, failure_code = $4,"
            " failure = $5, finished_at = now() WHERE id = $1",
            self.job_id,
            state,
            field,
            code,
            message,
        )


def _lock_name(job_id: str) -> str:
    return f"roster {job_id}"


# Whether a session lock is free right now, on a pooled connection that does not keep it.
_LOCK_FREE = "SELECT CASE WHEN pg_try_advisory_lock($1) THEN pg_advisory_unlock($1) ELSE false END"


class RosterJobs:
    """The roster jobs this process starts, each in a child process of its own
    (:mod:`services.membership.roster_child`): a 657,000-row roster's allocations go back to the
    system when its process ends, instead of staying in this one's heap beside the relay and the
    consumers, and the import has a core of its own while they work on its events.

    ``resume`` starts the jobs waiting in the database (at start-up, on a notification, on each
    poll) and may be called again and again: a job whose process runs is not started a second
    time; one whose process died is started again (its session lock died with it)."""

    def __init__(
        self, settings: Settings, units: Callable[[], MembershipUnitOfWork], clock: Clock
    ) -> None:
        self.settings = settings
        self.spool_dir = Path(settings.roster_dir)
        self.units = units
        self.clock = clock
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, job_id: str, path: Path) -> None:
        if job_id in self.tasks:
            return
        task = asyncio.create_task(self._run_apart(job_id, path))
        self.tasks[job_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(job_id, None))

    async def _run_apart(self, job_id: str, path: Path) -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", CHILD_MODULE, job_id, str(path), stdin=asyncio.subprocess.PIPE
        )
        try:
            # The settings go on its stdin, whole: the child runs with exactly this process's.
            await child.communicate(self.settings.model_dump_json().encode())
        except asyncio.CancelledError:
            child.terminate()  # it stops between chunks; the job resumes at the next start
            await child.wait()
            raise
        if child.returncode:
            log.warning(
                "roster job %s: its process exited with %s; it starts again at the next look",
                job_id,
                child.returncode,
            )

    async def resume(self, pool: asyncpg.Pool) -> None:
        rows = await pool.fetch("SELECT id FROM roster_jobs WHERE state IN ('queued', 'running')")
        for row in rows:
            spooled = list(self.spool_dir.glob(f"{row['id']}.*"))
            if row["id"] in self.tasks:
                continue
            if not await pool.fetchval(_LOCK_FREE, lock_key(_lock_name(row["id"]))):
                continue  # another process runs it (a process per job only for a free job)
            if spooled:
                self.start(row["id"], spooled[0])
            else:
                job = RosterJob(
                    pool,
                    self.units,
                    self.clock,
                    row["id"],
                    Path("/nonexistent"),
                    dsn=self.settings.database_url,
                    schema=self.settings.db_schema,
                )
                await job._finish("failed", FILE_GONE)

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
