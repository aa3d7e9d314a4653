"""A minimal keep-alive HTTP/1.1 POST client for event pushes to plain-``http://`` receivers.

httpx costs about a millisecond of CPU per request and slows down further with many requests in
flight; pushes share the event loop with the API path, so at benchmark rates (a delivery report
per send) httpx alone would halve the simulator's throughput. Pushes need only one shape of
request, so this client writes it by hand and reads back just the status and the body framing
(Content-Length, chunked, or read-to-close). ``https://`` URLs go through httpx instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit


class RawHttpError(Exception):
    pass


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class RawHttpPoster:
    def __init__(self, max_idle_per_host: int = 64) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._max_idle = max_idle_per_host

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        params: Mapping[str, str],
        content_type: str,
        time_limit: float,
    ) -> int:
        """POST and return the HTTP status; raises RawHttpError/OSError/TimeoutError on failure."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise RawHttpError(f"not a plain http URL: {url}")
        host, port = parts.hostname, parts.port or 80
        target = parts.path or "/"
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        if query:
            target = f"{target}?{query}"
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nUser-Agent: Mozilla/4.0\r\n\r\n"
        ).encode("latin-1")
        async with asyncio.timeout(time_limit):
            pool = self._idle.setdefault((host, port), [])
            reused = bool(pool)
            conn = pool.pop() if pool else await asyncio.open_connection(host, port)
            try:
                status, keep_alive = await self._exchange(conn, head + body)
            except (OSError, RawHttpError, asyncio.IncompleteReadError) as exc:
                conn[1].close()
                if not reused:
                    raise RawHttpError(str(exc) or type(exc).__name__) from exc
                # The server may have closed an idle keep-alive connection: retry once fresh.
                conn = await asyncio.open_connection(host, port)
                try:
                    status, keep_alive = await self._exchange(conn, head + body)
                except BaseException:
                    conn[1].close()
                    raise
            except BaseException:
                conn[1].close()
                raise
        if keep_alive and len(pool) < self._max_idle:
            pool.append(conn)
        else:
            conn[1].close()
        return status

    @staticmethod
    async def _exchange(conn: _Conn, request: bytes) -> tuple[int, bool]:
        reader, writer = conn
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.split(None, 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/1."):
            raise RawHttpError(f"bad status line {status_line!r}")
        status = int(fields[1])
        keep_alive = fields[0] == b"HTTP/1.1"
        length: int | None = None
        chunked = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise RawHttpError("connection closed in headers")
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection":
                keep_alive = value == b"keep-alive" or (keep_alive and value != b"close")
        if chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length is not None:
            await reader.readexactly(length)
        elif status not in (204, 304):
            await reader.read()
            keep_alive = False
        return status, keep_alive

    def close(self) -> None:
        for pool in self._idle.values():
            for _, writer in pool:
                writer.close()
        self._idle.clear()
