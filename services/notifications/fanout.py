"""The fan-out worker: turns broadcasts into deliveries, a batch a unit of work, and closes the
finished ones. A ``Worker`` loop: its state is the broadcasts' rows, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from services.notifications import handlers
from services.notifications.commands import CloseFinishedBroadcasts, FanOutBatch
from services.notifications.unit_of_work import NotificationsUnitOfWork

log = logging.getLogger(__name__)


async def fan_out(
    units: Callable[[], NotificationsUnitOfWork], batch_size: int, poll_seconds: float
) -> None:
    """Never returns: while a broadcast is planning it goes batch after batch, else it polls."""
    batch, close = FanOutBatch(batch_size=batch_size), CloseFinishedBroadcasts()
    while True:
        try:
            busy = await handlers.fan_out_batch(batch, units()) or (
                await handlers.close_finished_broadcasts(close, units())
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("broadcast fan-out: database trouble (%r); retrying", exc)
            busy = False
        except Exception:
            # The batch rolled back and is retried; a bug must not stop every broadcast.
            log.exception("broadcast fan-out: a batch failed; retrying")
            busy = False
        if not busy:
            await asyncio.sleep(poll_seconds)
