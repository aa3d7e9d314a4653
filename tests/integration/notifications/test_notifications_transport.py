"""The sender's HTTP transport against a real socket server: the framings HTTP/1.1 allows,
keep-alive reuse, a server that closes, and timeouts surfacing as httpx errors (which the WeChat
client turns into retries)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from services.notifications.transport import LeanClient, PooledTransport

pytestmark = pytest.mark.integration


@dataclass
class Server:
    """Answers each request by its path: /length, /chunked, /close, /slow, /eof."""

    port: int = 0
    connections: int = 0
    requests: list[tuple[str, bytes]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *headers = head.decode().split("\r\n")
                length = next(
                    (
                        int(h.split(":")[1])
                        for h in headers
                        if h.lower().startswith("content-length")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                path = line.split(" ")[1]
                self.requests.append((path, body))
                if path.startswith("/length"):
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n" + b'{"errcode":0}'
                    )
                elif path.startswith("/chunked"):
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b'5\r\n{"err\r\n8;ext=1\r\ncode":0}\r\n0\r\nX-Trailer: t\r\n\r\n'
                    )
                elif path.startswith("/close"):
                    writer.write(b"HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nbusy")
                    await writer.drain()
                    writer.close()
                    return
                elif path.startswith("/slow"):
                    await asyncio.sleep(5)
                elif path.startswith("/eof"):
                    writer.close()
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listening = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield state
        listening.close()


@pytest.mark.parametrize("lean", [False, True], ids=["AsyncClient", "LeanClient"])
async def test_framings_keep_alive_and_failures(server: Server, lean: bool) -> None:
    base = f"http://127.0.0.1:{server.port}"
    transport = PooledTransport(max_connections_per_host=4)
    client = (
        LeanClient(transport, timeout=1.0)
        if lean
        else httpx.AsyncClient(transport=transport, timeout=1.0)
    )
    async with client:
        client.base_url = httpx.URL(base)
        for path in ("/length", "/chunked", "/length?access_token=x%2By"):
            answer = await client.post(path, content=b'{"a":"\xe4\xb8\xad"}')
            assert (answer.status_code, answer.json()) == (200, {"errcode": 0}), path
        assert server.connections == 1  # one kept-alive connection served all three
        assert server.requests[-1] == ("/length?access_token=x%2By", '{"a":"中"}'.encode())

        closed = await client.get("/close")
        assert (closed.status_code, closed.text) == (503, "busy")
        assert (await client.get("/length")).status_code == 200
        assert server.connections == 2  # the closed connection was not reused

        together = await asyncio.gather(*(client.get("/length") for _ in range(10)))
        assert all(a.status_code == 200 for a in together)
        assert server.connections <= 2 + 4  # never more than the pool allows

        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/eof")
        assert (await client.get("/length")).status_code == 200

    refused = PooledTransport()
    async with httpx.AsyncClient(transport=refused, timeout=1.0) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/")  # the discard port: nothing listens
