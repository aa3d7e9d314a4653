"""Paying approved claims, and asking finance for what the fund cannot pay: the backstop saga.

One function, :func:`settle`, does it all in one transaction under the fund's lock: it pays the
approved claims in approval order while the balance allows, marks the rest as awaiting funds and,
for claims that have waited out the batching window, opens a backstop request for exactly the
shortfall not already asked for. It decides from the state in the database alone, so running it
again (after a crash, on another replica, twice in a row) pays nothing twice and asks for nothing
twice: a paid claim is no longer payable, and open requests count against the shortfall. When
contributions arrive before finance's grant and pay the waiting claims, what open requests still
ask for beyond the remaining need is withdrawn (newest request first), and finance hears so.

:class:`PayoutWorker` runs it when woken and on a poll, and once at start-up: a grant recorded just
before a crash is paid out on restart. An approval, a contribution or a grant wakes it through
Postgres (NOTIFY on commit, see ``unit_of_work``), so the API and the worker may be different
processes (``--role api`` and ``--role worker``); the poll covers a notification lost with a
dropped listening connection.

The batching window (``backstop_batch_minutes``) turns a burst of approvals into one request
instead of one per approval: only claims approved at least that long ago are asked for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from services.mutual_aid.backstop import BackstopRequest, decide_payouts, withdraw_surplus
from services.mutual_aid.claims import Claim
from services.mutual_aid.ledger import JournalEntry
from services.mutual_aid.ledger_repository import payout_entry
from services.mutual_aid.unit_of_work import MutualAidUnitOfWork, payouts_channel
from shared.clock import Clock
from shared.db import connect
from shared.routes import units_of_work
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settlement:
    paid: tuple[str, ...] = ()
    awaiting: tuple[str, ...] = ()
    request: BackstopRequest | None = None
    withdrawn: tuple[str, ...] = ()  # requests finance need no longer pay (in part or whole)


async def settle(batch_window: timedelta, uow: MutualAidUnitOfWork) -> Settlement:
    async with uow:
        ledger = await uow.fund.open_ledger()
        queue, newly_approved = await uow.claims.payable()
        # Locked: the follow-up worker must not remind finance of a request withdrawn here.
        open_requests = await uow.backstop.open(lock=True)
        if not queue and not open_requests:
            return Settlement()
        now, today = uow.clock.now(), uow.clock.today()
        balance = ledger.fund_balance
        decision = decide_payouts(balance, queue, open_requests)
        withdrawn = withdraw_surplus(open_requests, decision.surplus, today)
        # Claims approved in the window are left out of the ask, not out of the queue: ``ripe``
        # is a prefix of the approval order, so what it pays now is what ``decision`` pays.
        ripe = [c for c in queue if c.approved_at <= now - batch_window]
        ask = decide_payouts(balance, ripe, open_requests)

        to_mark = [c.claim_id for c in decision.unpaid if c.claim_id in newly_approved]
        claims = await uow.claims.get_many(
            [c.claim_id for c in decision.pay_now] + to_mark, lock=True
        )
        references = await uow.payments.next_references(today.year, len(decision.pay_now))
        payments = []
        for payable, reference in zip(decision.pay_now, references, strict=True):
            entry_id = None
            if payable.amount > 0:  # a zero benefit moves no money
                entry_id = payout_entry(payable.claim_id)
                ledger.post(
                    JournalEntry.payout(
                        entry_id, payable.amount, today, payable.claim_id, reference
                    )
                )
            claims[payable.claim_id].pay(reference, now)
            payments.append((reference, payable.claim_id, payable.amount, now, entry_id))
        for claim_id in to_mark:
            claims[claim_id].await_funds(now)

        for earlier in withdrawn:
            await uow.backstop.save(earlier)
        request = None
        if ask.shortfall > 0:
            request = ask.request(await uow.backstop.next_id(today.year), today)
            assert request is not None
            await uow.backstop.add(request)
        changed: list[Claim] = list(claims.values())
        await uow.claims.save_many(changed, via=None)
        await uow.fund.save(ledger)
        await uow.payments.add_many(payments)
        await uow.commit()
    return Settlement(
        paid=tuple(c.claim_id for c in decision.pay_now),
        awaiting=tuple(c.claim_id for c in decision.unpaid),
        request=request,
        withdrawn=tuple(r.request_id for r in withdrawn),
    )


class PayoutWorker:
    def __init__(
        self,
        clock: Clock,
        *,
        poll_seconds: float,
        batch_window: timedelta,
    ) -> None:
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.batch_window = batch_window
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Settle soon rather than at the next poll (what a notification on the channel does)."""
        self._wake.set()

    async def settle_once(self, units: Callable[[], MutualAidUnitOfWork]) -> Settlement:
        return await settle(self.batch_window, units())

    async def run(self, runtime: ServiceRuntime) -> None:
        units = units_of_work(runtime, MutualAidUnitOfWork, self.clock)
        listener: asyncpg.Connection | None = None
        try:
            while True:
                self._wake.clear()
                if listener is None or listener.is_closed():
                    listener = await self._listen(runtime.settings)
                try:
                    done = await self.settle_once(units)
                    if done.paid or done.request or done.withdrawn:
                        log.info(
                            "paid %d claims; %d awaiting funds; backstop request %s; withdrawn %s",
                            len(done.paid),
                            len(done.awaiting),
                            done.request.request_id if done.request else "none",
                            ", ".join(done.withdrawn) or "none",
                        )
                except Exception:  # nothing is lost: the claims stay payable, the next run retries
                    log.exception("settling payouts failed; retrying in %.1fs", self.poll_seconds)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            if listener is not None:
                await listener.close()

    async def _listen(self, settings: ServiceSettings) -> asyncpg.Connection | None:
        """A connection of its own LISTENing for changes that make claims payable; None (poll
        only, try again next round) while Postgres cannot be reached."""
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect(settings.database_url, settings.db_schema)
            await conn.add_listener(payouts_channel(settings.db_schema), lambda *_: self.wake())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("payout worker polls only: cannot LISTEN (%r)", exc)
            if conn is not None:
                conn.terminate()
            return None
        return conn
