"""``python -m services.membership.roster_child JOB_ID PATH``: one roster job, in a process of
its own, started by :class:`services.membership.roster_import.RosterJobs` with the service's
settings on its stdin. SIGTERM stops it between chunks; the job resumes at the next start."""

from __future__ import annotations

import asyncio
import signal
import sys
from contextlib import suppress
from pathlib import Path

from services.membership.roster_import import RosterJob
from services.membership.settings import Settings
from services.membership.unit_of_work import MembershipUnitOfWork
from shared.clock import SystemClock
from shared.db import create_pool
from shared.masking import setup_logging


async def run(job_id: str, path: Path, settings: Settings) -> None:
    running = asyncio.current_task()
    assert running is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, running.cancel)
    clock = SystemClock(settings.timezone)
    pool = await create_pool(settings.database_url, settings.db_schema)
    try:
        job = RosterJob(
            pool,
            lambda: MembershipUnitOfWork(pool, settings.events_topic, clock),
            clock,
            job_id,
            path,
            dsn=settings.database_url,
            schema=settings.db_schema,
        )
        await job.run()
    finally:
        await pool.close()


def main(argv: list[str]) -> None:
    setup_logging()
    job_id, path = argv
    settings = Settings.model_validate_json(sys.stdin.buffer.read())
    with suppress(asyncio.CancelledError):
        asyncio.run(run(job_id, Path(path), settings))


if __name__ == "__main__":
    main(sys.argv[1:])
