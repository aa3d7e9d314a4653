"""A lean HTTP/1.1 keep-alive transport for httpx, for the sender's many small WeChat calls.

httpx's default transport (httpcore over anyio) spends several times more CPU per request than the
request itself costs: measured against the simulator it tops out near 600 sends a second on one
core, below the send rates a broadcast needs. This transport keeps a small pool of persistent
connections per host on plain asyncio streams and speaks just the HTTP/1.1 WeChat's API uses:
one request per connection at a time, ``Content-Length`` or ``chunked`` bodies, keep-alive unless
the server says ``close``. TLS goes through asyncio's SSL support with the default trust store.

Nothing is retried here: a request that may have reached the server is reported as an httpx
error and the caller decides (the sender resends with the same ``client_msg_id``). Idle pooled
connections the server has closed, or that are older than ``keepalive_expiry``, are dropped
before use rather than written to.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

from shared.telemetry import traced_request

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float, expiry: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and (now - self.idle_since < expiry)
        )

    def close(self) -> None:
        self.writer.close()


class _Pool:
    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None, size: int) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(size)

    async def open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(
            self.host,
            self.port,
            ssl=self.tls,
            server_hostname=self.host if self.tls else None,
            limit=MAX_HEADER_BYTES,
        )
        return _Connection(reader, writer)


class PooledTransport(httpx.AsyncBaseTransport):
    def __init__(self, max_connections_per_host: int = 64, keepalive_expiry: float = 5.0) -> None:
        self._size = max_connections_per_host
        self._expiry = keepalive_expiry
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._tls: ssl.SSLContext | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._pool(request.url)
        timeouts = request.extensions.get("timeout", {})
        await request.aread()
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await pool.slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection", request=request) from None
        try:
            conn = await self._connection(pool, request, timeouts.get("connect"))
            try:
                response = await self._exchange(conn, request, timeouts)
            except BaseException:
                conn.close()  # half a response may be in flight: the connection is unusable
                raise
            if response.headers.get("connection", "").lower() == "close":
                conn.close()
            else:
                conn.idle_since = time.monotonic()
                pool.idle.append(conn)
            return response
        finally:
            pool.slots.release()

    def _pool(self, url: httpx.URL) -> _Pool:
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        port = url.port or (443 if scheme == "https" else 80)
        key = (scheme, url.host, port)
        pool = self._pools.get(key)
        if pool is None:
            if scheme == "https" and self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls if scheme == "https" else None
            pool = self._pools[key] = _Pool(url.host, port, tls, self._size)
        return pool

    async def _connection(
        self, pool: _Pool, request: httpx.Request, connect_seconds: float | None
    ) -> _Connection:
        now = time.monotonic()
        while pool.idle:
            conn = pool.idle.pop()  # most recently used first: the likeliest to be alive
            if conn.usable(now, self._expiry):
                return conn
            conn.close()
        try:
            async with asyncio.timeout(connect_seconds):
                return await pool.open()
        except TimeoutError:
            raise httpx.ConnectTimeout("connect timed out", request=request) from None
        except OSError as e:
            raise httpx.ConnectError(f"connect failed: {e}", request=request) from None

    async def _exchange(
        self, conn: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        conn.writer.write(_head(request) + request.content)
        try:
            async with asyncio.timeout(timeouts.get("write")):
                await conn.writer.drain()
        except TimeoutError:
            raise httpx.WriteTimeout("write timed out", request=request) from None
        except OSError as e:
            raise httpx.WriteError(str(e), request=request) from None
        try:
            async with asyncio.timeout(timeouts.get("read")):
                status, headers = await _read_head(conn.reader)
                body = await _read_body(conn.reader, headers, request.method)
        except TimeoutError:
            raise httpx.ReadTimeout("read timed out", request=request) from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            raise httpx.RemoteProtocolError(f"bad response: {e}", request=request) from None
        except OSError as e:
            raise httpx.ReadError(str(e), request=request) from None
        return httpx.Response(status, headers=headers, content=body, request=request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            while pool.idle:
                pool.idle.pop().close()
        self._pools.clear()


def _head(request: httpx.Request) -> bytes:
    url = request.url
    lines = [f"{request.method} {url.raw_path.decode('ascii')} HTTP/1.1".encode()]
    headers = request.headers
    if "host" not in headers:
        lines.append(b"Host: " + url.netloc)
    for name, value in headers.raw:
        # Compressed answers would need decoding here; WeChat's are small JSON anyway.
        if name.lower() != b"accept-encoding":
            lines.append(name + b": " + value)
    if "content-length" not in headers and request.method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: " + str(len(request.content)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = raw[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError(f"malformed header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers


async def _read_body(
    reader: asyncio.StreamReader, headers: list[tuple[bytes, bytes]], method: str
) -> bytes:
    found = {name.lower(): value for name, value in headers}
    if method == "HEAD":
        return b""
    if found.get(b"transfer-encoding", b"").lower() == b"chunked":
        return await _read_chunked(reader)
    length = found.get(b"content-length")
    if length is not None:
        size = int(length)
        if size > MAX_BODY_BYTES:
            raise ValueError(f"body of {size} bytes is too large")
        return await reader.readexactly(size)
    return await reader.read(MAX_BODY_BYTES)  # until the server closes


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers: ignored
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise ValueError("chunked body is too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


class LeanClient(httpx.AsyncClient):
    """An AsyncClient that hands each request straight to its PooledTransport: no cookie jar, no
    auth flow, no redirects, no event hooks. WeChat's API uses none of them, and together they
    cost more CPU per call than the call itself (the cookie jar alone wraps every response in
    urllib objects to look for Set-Cookie). Requests are still built by httpx, with the client's
    timeouts."""

    def __init__(self, transport: PooledTransport, timeout: float) -> None:
        super().__init__(transport=transport, timeout=timeout)
        self._pooled = transport

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        # In a trace (a message caused by a request), the call is an HTTP client span of it.
        response = await traced_request(request, self._pooled.handle_async_request)
        if not stream:
            await response.aread()
        return response
