"""The sender worker: claims due deliveries, sends them to WeChat at the shared pace, records.

Each of a few loops claims a block of due rows (see ``queue.py``), takes as many send slots from
the shared gate, sends each message at its slot (at most ``concurrency`` in flight per worker) and
records the block's outcomes in one unit of work, with the events they cause (MessageDelivered,
published for the block at once; RecipientUnreachable, the closed bindings'). Several loops
overlap so that claiming and recording never leave the pace idle.

Exactly once: every attempt at a row carries the row's ``client_msg_id``, and WeChat answers a
repeated one with the first msgid instead of sending again. A worker that dies between WeChat's
answer and the record leaves its rows ``sending``; when their lease ends they are claimed again
"in doubt" and resent with the same id, which WeChat deduplicates. WeChat only remembers an id
for a while (``dedup_window``); a row in doubt for longer is not resent blindly but reconciled
against WeChat's delivery reports: a report for that openid since the attempt, matching no
delivery, is the lost answer. Without one the row is recorded ``unconfirmed`` for a person to
look at: a duplicate cannot be taken back, a missing message can be sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from opentelemetry import trace
from prometheus_client import Counter

from services.notifications import queue
from services.notifications.domain import Binding, TemplateMessage
from services.notifications.errcodes import BACKOFF, Backoff
from services.notifications.gate import Block, Pause, SendGate
from services.notifications.outcomes import before_sending, judge, released
from services.notifications.queue import Claimed, Outcome, Recorded
from services.notifications.repository import WAKE_CHANNEL
from services.notifications.unit_of_work import NotificationsUnitOfWork
from services.notifications.wechat import WeChatClient
from shared.clock import Clock
from shared.events.base import EventData
from shared.events.notifications import MessageDelivered
from shared.telemetry import context_from_headers

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("gonghui.notifications.sender")
WITHDRAWALS_POLL_SECONDS = 0.5
SENDS = Counter("notifications_sends_total", "WeChat send outcomes recorded", ["status"])


@dataclass(frozen=True)
class SenderConfig:
    batch_size: int = 500
    concurrency: int = 32
    loops: int = 3
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0
    retry_base_seconds: float = 2.0
    # How long WeChat deduplicates a client_msg_id (10 minutes), less a margin for the resend.
    dedup_window_seconds: float = 570.0
    config_pause_seconds: float = 60.0


class Sender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        client: WeChatClient,
        gate: SendGate,
        units: Callable[[], NotificationsUnitOfWork],
        config: SenderConfig,
        clock: Clock,
        listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
    ) -> None:
        self.pool = pool
        self.client = client
        self.gate = gate
        self.units = units
        self.config = config
        self.clock = clock
        self._listen = listen
        self._wake = asyncio.Event()
        self._withdrawn = queue.Withdrawn()
        self._in_flight = asyncio.Semaphore(config.concurrency)
        self._config_pause = timedelta(seconds=config.config_pause_seconds)
        self._backoff = {
            action: Backoff(
                base_seconds=config.retry_base_seconds,
                factor=b.factor,
                cap_seconds=b.cap_seconds,
                max_attempts=b.max_attempts,
            )
            for action, b in BACKOFF.items()
        }

    # ------------------------------------------------------------------ loops

    async def run(self) -> None:
        listener: asyncpg.Connection | None = None
        if self._listen is not None:
            listener = await self._listen()
            await listener.add_listener(WAKE_CHANNEL, lambda *_: self._wake.set())
        try:
            loops = [self._loop() for _ in range(self.config.loops)]
            await asyncio.gather(self._watch_withdrawals(), *loops)
        finally:
            if listener is not None:
                await listener.close()

    async def _loop(self) -> None:
        while True:
            try:
                if not await self.step():
                    await self._idle()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # Claimed rows stay 'sending' and come back when their lease ends.
                log.warning("sender: database trouble (%r); retrying", exc)
                await asyncio.sleep(self.config.poll_seconds)
            except Exception:
                # A bug must not stop all sending; the rows come back after their lease too.
                log.exception("sender: a block failed; retrying")
                await asyncio.sleep(self.config.poll_seconds)

    async def _watch_withdrawals(self) -> None:
        """Claimed rows wait up to a second or two for their slot; a broadcast cancelled or a
        member unfollowing meanwhile must still stop them."""
        while True:
            try:
                # Older changes predate every claimed row: a lease is far shorter than an hour.
                since = self.clock.now() - timedelta(hours=1)
                self._withdrawn = await queue.withdrawn_since(self.pool, since)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("sender: cannot read withdrawals (%r)", exc)
            await asyncio.sleep(WITHDRAWALS_POLL_SECONDS)

    async def _idle(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)

    async def step(self) -> bool:
        """One block: claim, send, record. False when there was nothing to do."""
        pause = self.gate.paused_locally() or await self.gate.current_pause()
        if pause is not None:
            await asyncio.sleep(
                min((pause.until - self.clock.now()).total_seconds(), self.config.poll_seconds)
            )
            return True
        lease = uuid.uuid4()
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.config.lease_seconds)
        size = self._block_size()
        async with self.pool.acquire() as conn:
            claimed = await queue.claim_in_doubt(conn, now, size, lease, lease_until)
            if len(claimed) < size:
                claimed += await queue.claim_due(conn, now, size - len(claimed), lease, lease_until)
        if not claimed:
            return False
        block = _Progress()
        try:
            await self._settle(claimed, block)
        except asyncio.CancelledError:
            # Shutting down: record what is known and give back what was never sent, so the next
            # worker need not wait for the lease. Rows whose call was under way stay in doubt.
            unsent = [r.id for r in claimed if r.id not in block.done and r.id not in block.started]
            partial = [*block.done.values(), *(released(i, self.clock.now()) for i in unsent)]
            await asyncio.shield(self._record(lease, partial))
            raise
        await self._record(lease, list(block.done.values()))
        return True

    async def _record(self, lease: uuid.UUID, outcomes: list[Outcome]) -> None:
        async with self.units() as uow:
            recorded = await queue.record(uow.conn, lease, outcomes, self.clock.now())
            await self._consequences(uow, recorded, outcomes)
            await uow.commit()

    def _block_size(self) -> int:
        # About a second of sends for all loops together: enough to amortise the round trips,
        # short enough that slots (and rows) are not reserved long before they are used.
        return max(1, min(self.config.batch_size, round(self.gate.rate / self.config.loops)))

    # ------------------------------------------------------------------ one block

    async def _settle(self, claimed: list[Claimed], block: _Progress) -> None:
        to_send: list[Claimed] = []
        adopted: list[int] = []
        for row in claimed:
            early = before_sending(row, self._withdrawn)
            if early is None and row.in_doubt_since is not None:
                early = await self._reconcile(row, adopted)
            if early is None:
                to_send.append(row)
            else:
                block.done[row.id] = early
        if not to_send:
            return
        slots = await self.gate.take(len(to_send))
        if isinstance(slots, Pause):
            block.done.update((r.id, released(r.id, slots.until)) for r in to_send)
            return
        await asyncio.gather(
            *(self._send_at(row, slots, i, block) for i, row in enumerate(to_send))
        )

    async def _reconcile(self, row: Claimed, adopted: list[int]) -> Outcome | None:
        assert row.in_doubt_since is not None
        age = (self.clock.now() - row.in_doubt_since).total_seconds()
        if age < self.config.dedup_window_seconds or row.previous_openid is None:
            return None  # WeChat still knows the client_msg_id: resending is safe
        async with self.pool.acquire() as conn:
            found = await queue.orphan_report(
                conn, row.previous_openid, row.in_doubt_since, adopted
            )
        if found is not None:
            adopted.append(found[0])
            log.info("delivery %s reconciled with WeChat's report of msgid %s", row.id, found[0])
            return Outcome(
                row.id, "sent", errcode=0, errmsg="reconciled", msgid=found[0], attempts_delta=-1
            )
        log.warning(
            "delivery %s was in doubt for %.0fs, longer than WeChat deduplicates; not resent",
            row.id,
            age,
        )
        return Outcome(
            row.id,
            "unconfirmed",
            reason="in_doubt",
            errmsg="a worker stopped after sending; WeChat no longer deduplicates the message",
        )

    async def _send_at(self, row: Claimed, slots: Block, index: int, block: _Progress) -> None:
        wait = (slots.slot(index) - self.clock.now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        pause = self.gate.paused_locally()
        early = released(row.id, pause.until) if pause else before_sending(row, self._withdrawn)
        if early is not None:  # paused, or withdrawn while the row waited for its slot
            block.done[row.id] = early
            return
        assert row.binding_openid is not None
        message = TemplateMessage(
            touser=row.binding_openid,
            template_id=row.template_id,
            data=row.message["data"],
            client_msg_id=row.client_msg_id,
            url=row.message.get("url"),
        )
        async with self._in_flight:
            block.started.add(row.id)
            if row.trace_headers:
                # The WeChat call joins the trace of the request that caused the event.
                with _tracer.start_as_current_span(
                    f"wechat send {row.rule}",
                    context=context_from_headers(row.trace_headers),
                    kind=trace.SpanKind.INTERNAL,  # the HTTP call inside it is the CLIENT span
                ):
                    result = await self.client.send_template(message)
            else:
                result = await self.client.send_template(message)
        verdict = judge(row, result, self.clock.now(), self._backoff, self._config_pause)
        if verdict.pause is not None:
            await self.gate.pause(verdict.pause.until, verdict.pause.errcode, verdict.pause.reason)
        block.done[row.id] = verdict.outcome

    # ------------------------------------------------------------------ after recording

    async def _consequences(
        self, uow: NotificationsUnitOfWork, recorded: list[Recorded], outcomes: list[Outcome]
    ) -> None:
        by_id = {o.id: o for o in outcomes}
        delivered: list[EventData] = []
        for r in recorded:
            SENDS.labels(r.status).inc()
            outcome = by_id[r.id]
            if r.status in ("sent", "delivered") and r.broadcast_id is None:
                delivered.append(
                    MessageDelivered(
                        member_id=r.recipient,
                        cause_event_id=r.event_id,
                        rule=r.rule,
                        category=r.category,
                        template_id=r.template_id,
                        msgid=r.msgid,
                    )
                )
            elif outcome.newly_unreachable and r.openid is not None:
                assert outcome.errcode is not None
                closed = Binding(r.recipient, r.openid).unreachable(
                    outcome.errcode, outcome.errmsg or ""
                )
                await uow.bindings.close(closed, self.clock.now())
        uow.publish(*delivered)


@dataclass
class _Progress:
    """How far a claimed block got: outcomes so far, and rows whose WeChat call has started."""

    done: dict[int, Outcome] = field(default_factory=dict)
    started: set[int] = field(default_factory=set)
