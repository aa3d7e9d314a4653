"""Pushes WeChat events (delivery reports, subscribe/unsubscribe) to the account's server URL.

WeChat posts each event as a plaintext XML body to the configured URL, signed with the account's
Token (``?signature=&timestamp=&nonce=&openid=``), and retries a few times when the server does not
answer. Here a send only appends to an in-memory queue; a background task drains it in batches
posted concurrently, so a slow or dead receiver never slows the API path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .events import TEMPLATE_SEND_JOB_FINISH, CallbackEvent
from .rawhttp import RawHttpError, RawHttpPoster


@dataclass(frozen=True, slots=True)
class CallbackTarget:
    url: str
    token: str
    original_id: str
    timeout: float
    retries: int


def _cdata(value: str) -> str:
    # "]]>" would end the CDATA section early; WeChat splits it the same way.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render_event_xml(event: CallbackEvent, to_user: str) -> bytes:
    parts = [
        "<xml>",
        f"<ToUserName>{_cdata(to_user)}</ToUserName>",
        f"<FromUserName>{_cdata(event.openid)}</FromUserName>",
        f"<CreateTime>{event.create_time}</CreateTime>",
        f"<MsgType>{_cdata('event')}</MsgType>",
        f"<Event>{_cdata(event.event)}</Event>",
    ]
    if event.event == TEMPLATE_SEND_JOB_FINISH:
        parts.append(f"<MsgID>{event.msgid}</MsgID>")
        parts.append(f"<Status>{_cdata(event.status or '')}</Status>")
    parts.append("</xml>")
    return "".join(parts).encode()


def sign(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's server signature: sha1 of the sorted, concatenated token, timestamp and nonce."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()


def signed_params(event: CallbackEvent, token: str) -> dict[str, str]:
    timestamp = str(event.create_time)
    nonce = str(secrets.randbelow(10**9))
    return {
        "signature": sign(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": event.openid,
    }


class CallbackPusher:
    def __init__(
        self,
        target: Callable[[], CallbackTarget | None],
        *,
        batch_size: Callable[[], int] = lambda: 64,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_delays: tuple[float, ...] = (0.2, 1.0, 3.0),
    ) -> None:
        self._target = target
        self._batch_size = batch_size
        self._transport = transport
        self._retry_delays = retry_delays
        self._queue: deque[tuple[CallbackEvent, CallbackTarget]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.queued = 0
        self.delivered = 0
        self.failed = 0
        self.retried = 0
        self.skipped = 0
        self.last_error: str | None = None

    def stats(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "delivered": self.delivered,
            "failed": self.failed,
            "retried": self.retried,
            "skipped_no_url": self.skipped,
            "pending": len(self._queue) + self._in_flight,
            "last_error": self.last_error,
        }

    def reset(self) -> None:
        self._queue.clear()
        self.queued = self.delivered = self.failed = self.retried = self.skipped = 0
        self.last_error = None

    def submit(self, event: CallbackEvent) -> None:
        """Called from the API path: O(1), never waits."""
        target = self._target()
        if target is None:
            self.skipped += 1
            return
        self._queue.append((event, target))
        self.queued += 1
        self._ensure_worker()
        assert self._wakeup is not None and self._idle is not None
        self._idle.clear()
        self._wakeup.set()

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task
        # Started lazily on the first event, so it also runs under an ASGI transport without
        # lifespan; restarted if a previous loop (another test's) has gone away.
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._in_flight = 0
        self._task = loop.create_task(self._run(), name="wechat-sim-callbacks")

    async def _run(self) -> None:
        assert self._wakeup is not None and self._idle is not None
        wakeup, idle = self._wakeup, self._idle
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        raw = RawHttpPoster() if self._transport is None else None
        async with httpx.AsyncClient(transport=self._transport, limits=limits) as client:
            try:
                while True:
                    if not self._queue:
                        idle.set()
                        wakeup.clear()
                        await wakeup.wait()
                        continue
                    idle.clear()
                    size = self._batch_size()
                    batch = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
                    self._in_flight = len(batch)
                    try:
                        await asyncio.gather(
                            *(self._deliver(client, raw, ev, tg) for ev, tg in batch)
                        )
                    finally:
                        self._in_flight = 0
            finally:
                if raw is not None:
                    raw.close()

    async def _deliver(
        self,
        client: httpx.AsyncClient,
        raw: RawHttpPoster | None,
        event: CallbackEvent,
        target: CallbackTarget,
    ) -> None:
        body = render_event_xml(event, target.original_id)
        params = signed_params(event, target.token)
        use_raw = raw is not None and target.url.startswith("http://")
        for attempt in range(target.retries):
            try:
                if use_raw:
                    assert raw is not None
                    status = await raw.post(
                        target.url,
                        body,
                        params=params,
                        content_type="text/xml",
                        time_limit=target.timeout,
                    )
                else:
                    response = await client.post(
                        target.url,
                        content=body,
                        params=params,
                        headers={"Content-Type": "text/xml"},
                        timeout=target.timeout,
                    )
                    status = response.status_code
                if status < 400:
                    self.delivered += 1
                    return
                self.last_error = f"HTTP {status} from {target.url}"
            except (httpx.HTTPError, RawHttpError, OSError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc} ({target.url})"
            if attempt + 1 < target.retries:
                self.retried += 1
                delay = self._retry_delays[min(attempt, len(self._retry_delays) - 1)]
                await asyncio.sleep(delay)
        self.failed += 1

    async def flush(self, max_wait: float = 10.0) -> bool:
        """Wait until every queued event has been delivered or given up on."""
        if self._task is None or self._idle is None or self._task.done():
            return not self._queue
        try:
            async with asyncio.timeout(max_wait):
                while self._queue or self._in_flight:
                    await self._idle.wait()
                    # Let the worker notice new items appended after idle was set.
                    await asyncio.sleep(0)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
