"""Reference client for department systems: sign every request to a Gonghui service.

With httpx::

    async with httpx.AsyncClient(base_url=url, auth=SignedAuth(app_id, secret)) as client:
        await client.post("/rosters", json={...})

or the small :class:`GonghuiClient`, or from a shell::

    python -m shared.auth.client --base-url http://127.0.0.1:8002 --app-id ID --secret S \\
        POST /claims --json '{"member_id": "..."}'

``--secret`` may be left out and read from ``GONGHUI_SECRET`` instead (keeps it out of the
shell history). The response's status and body are printed; the exit status is 0 for 2xx.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from httpx._multipart import FileField, MultipartStream

from shared.auth import signing


class SignedAuth(httpx.Auth):
    """Signs each request (a fresh timestamp and nonce every time, retries included). The body's
    hash is signed: a file upload is hashed as it streams, so a 40 MB roster is never held whole;
    any other body is read first, as httpx does for an auth that needs it."""

    def __init__(self, app_id: str, secret: str) -> None:
        self.app_id = app_id
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield self._signed(request)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if not _rewindable(request):
            request.read()
        yield self._signed(request)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not _rewindable(request):
            await request.aread()
        yield self._signed(request)

    def _signed(self, request: httpx.Request) -> httpx.Request:
        # Sign the very bytes of the request target that go on the wire.
        path, _, query = request.url.raw_path.partition(b"?")
        if _rewindable(request):
            digest = hashlib.sha256()
            for chunk in request.stream:  # type: ignore[union-attr]  # a MultipartStream
                digest.update(chunk)
            body_sha256 = digest.hexdigest()
        else:
            body_sha256 = signing.body_digest(request.content)
        request.headers.update(
            signing.sign(
                self.app_id,
                self._secret,
                method=request.method,
                path=path,
                query=query,
                body_sha256=body_sha256,
            )
        )
        return request

    def __repr__(self) -> str:  # never show the secret in logs or tracebacks
        return f"SignedAuth(app_id={self.app_id!r}, secret=***)"


def _rewindable(request: httpx.Request) -> bool:
    """A multipart upload whose files can be read again from the start: httpx seeks each file
    back before sending it, so hashing it first costs a read, not its size in memory."""
    stream = request.stream
    if not isinstance(stream, MultipartStream):
        return False
    files = [field.file for field in stream.fields if isinstance(field, FileField)]
    return all(
        isinstance(f, bytes | str) or (hasattr(f, "seekable") and f.seekable()) for f in files
    )


class GonghuiClient:
    """A signed JSON client for one service: ``await client.post("/path", json={...})``."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        secret: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            auth=SignedAuth(app_id, secret),
            timeout=timeout,
            transport=transport,
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> GonghuiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m shared.auth.client", description="Send one signed request."
    )
    p.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8002")
    p.add_argument("--app-id", required=True)
    p.add_argument("--secret", default=os.environ.get("GONGHUI_SECRET"), help="or GONGHUI_SECRET")
    p.add_argument("--json", dest="json_body", help="a JSON request body")
    p.add_argument("--data-file", help="send this file's bytes as the body")
    p.add_argument("--content-type", help="content type for --data-file")
    p.add_argument("method", help="GET, POST, PUT, DELETE...")
    p.add_argument("path", help="path with optional query, e.g. /claims?status=open")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.secret:
        print("give --secret or set GONGHUI_SECRET", file=sys.stderr)
        return 2
    kwargs: dict[str, Any] = {}
    if args.json_body is not None:
        kwargs["json"] = json.loads(args.json_body)
    elif args.data_file:
        kwargs["content"] = Path(args.data_file).read_bytes()
        if args.content_type:
            kwargs["headers"] = {"Content-Type": args.content_type}
    response = asyncio.run(
        _send(args.base_url, args.app_id, args.secret, args.method, args.path, kwargs)
    )
    print(response.status_code, response.reason_phrase)
    try:
        print(json.dumps(response.json(), ensure_ascii=False, indent=2))
    except ValueError:
        print(response.text)
    return 0 if response.is_success else 1


async def _send(
    base_url: str, app_id: str, secret: str, method: str, path: str, kwargs: dict[str, Any]
) -> httpx.Response:
    async with GonghuiClient(base_url, app_id, secret) as client:
        return await client.request(method.upper(), path, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
