"""A TCP forwarder on a port of its own: a server that is "down" until the forwarder opens, and
"back" once it does, without touching the real server other tests share."""

from __future__ import annotations

import asyncio
import contextlib

from tests.support.ports import free_port


class Forwarder:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
