"""Client for the WeChat Official Account API: access token, template messages, quota.

Every answer is turned into an ``Action`` (see ``errcodes.py``) for the caller to act on; the client
itself only does the one thing that must happen inline: on a stale-token errcode it refreshes the
token once and retries once. It never loops: wechatpy's unbounded replay on 40001 is the cautionary
tale, since a wrong secret answers 40001 forever.

The token is held by a ``TokenStore`` shared by all workers. WeChat wants one central holder: each
fetch from /cgi-bin/token invalidates the previous token after five minutes, so workers fetching
their own would keep invalidating each other. The store refreshes compare-and-swap: a burst of
40001s across workers, all naming the same stale token, causes a single fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
import orjson
from opentelemetry import propagate

from services.notifications.domain import TemplateMessage
from services.notifications.errcodes import Action, action_for
from shared.clock import Clock, SystemClock
from shared.metrics import wechat_answered

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
TEMPLATE_SEND = "/cgi-bin/message/template/send"
QUOTA_GET = "/cgi-bin/openapi/quota/get"

# Refresh when less than this remains: the same five minutes stable_token renews ahead of expiry, so
# a token about to lapse is never handed to a request that may take a while.
REFRESH_MARGIN = timedelta(seconds=300)


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: datetime

    def expiring(self, now: datetime, margin: timedelta = REFRESH_MARGIN) -> bool:
        return self.expires_at - now < margin


class TokenStore(Protocol):
    """Where every worker gets the one access token (Postgres with a row lock in the service)."""

    async def get(self) -> Token | None: ...

    async def refresh(self, fetch: Callable[[], Awaitable[Token]], stale: str | None) -> Token:
        """Fetch and store a new token, but only if the stored one is still ``stale`` (the value
        the caller found wanting, None if it found none); otherwise someone else already
        refreshed, and the stored token is returned without fetching."""
        ...


class MemoryTokenStore:
    """A TokenStore for tests and single-process use."""

    def __init__(self, token: Token | None = None) -> None:
        self._token = token
        self._lock = asyncio.Lock()

    async def get(self) -> Token | None:
        return self._token

    async def refresh(self, fetch: Callable[[], Awaitable[Token]], stale: str | None) -> Token:
        async with self._lock:
            current = self._token
            if current is not None and current.value != stale:
                return current
            self._token = await fetch()
            return self._token


class TokenFetchError(Exception):
    """WeChat would not issue a token (or could not be reached)."""

    def __init__(self, errcode: int | None, errmsg: str, action: Action) -> None:
        super().__init__(f"token fetch failed: errcode={errcode} {errmsg} -> {action}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.action = action


@dataclass(frozen=True)
class SendResult:
    # None when WeChat gave no answer (network failure, 5xx, garbage): see ``errmsg``.
    errcode: int | None
    errmsg: str
    msgid: int | None
    action: Action
    token_refreshed: bool = False

    @property
    def ok(self) -> bool:
        return self.action is Action.OK


@dataclass(frozen=True)
class Quota:
    errcode: int | None
    errmsg: str
    action: Action
    daily_limit: int | None = None
    used: int | None = None
    remain: int | None = None


@dataclass(frozen=True)
class _Answer:
    errcode: int | None
    errmsg: str
    action: Action
    body: dict[str, Any]
    token_refreshed: bool = False


class WeChatClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        appid: str,
        secret: str,
        token_store: TokenStore,
        base_url: str = DEFAULT_BASE_URL,
        *,
        token_endpoint: Literal["token", "stable_token"] = "token",
        clock: Clock | None = None,
    ) -> None:
        self._http = http
        self._appid = appid
        self._secret = secret
        self._store = token_store
        self._base_url = base_url.rstrip("/")
        self._token_endpoint = token_endpoint
        self._clock: Clock = clock or SystemClock()
        self._urls: dict[tuple[str, str], httpx.URL] = {}

    async def send_template(self, msg: TemplateMessage) -> SendResult:
        answer = await self._call(TEMPLATE_SEND, msg.payload())
        msgid = answer.body.get("msgid")
        return SendResult(
            errcode=answer.errcode,
            errmsg=answer.errmsg,
            msgid=msgid if isinstance(msgid, int) else None,
            action=answer.action,
            token_refreshed=answer.token_refreshed,
        )

    async def get_quota(self, cgi_path: str = TEMPLATE_SEND) -> Quota:
        answer = await self._call(QUOTA_GET, {"cgi_path": cgi_path})
        quota = answer.body.get("quota")
        quota = quota if isinstance(quota, dict) else {}
        return Quota(
            errcode=answer.errcode,
            errmsg=answer.errmsg,
            action=answer.action,
            daily_limit=quota.get("daily_limit"),
            used=quota.get("used"),
            remain=quota.get("remain"),
        )

    async def fetch_token(self, force: bool = False) -> Token:
        """Ask WeChat for a token. Callers go through the store, which decides whether to."""
        now = self._clock.now()
        try:
            if self._token_endpoint == "stable_token":
                # force_refresh only after a stale-token errcode: forced refreshes are rationed
                # (20 a day, 30 s apart), and the plain call already renews near expiry.
                resp = await self._http.post(
                    f"{self._base_url}/cgi-bin/stable_token",
                    content=_json(
                        {
                            "grant_type": "client_credential",
                            "appid": self._appid,
                            "secret": self._secret,
                            "force_refresh": force,
                        }
                    ),
                    headers=_headers(),
                )
            else:
                resp = await self._http.get(
                    f"{self._base_url}/cgi-bin/token",
                    params={
                        "grant_type": "client_credential",
                        "appid": self._appid,
                        "secret": self._secret,
                    },
                    headers=_headers(),
                )
        except httpx.HTTPError as e:
            raise TokenFetchError(None, _transport_error(e), Action.RETRY_BACKOFF) from None
        answer = _read(resp)
        wechat_answered(f"/cgi-bin/{self._token_endpoint}", answer.errcode)
        if answer.action is not Action.OK:
            # 40001 from the token endpoint means a wrong secret, not a stale token.
            action = Action.CONFIG_ERROR if answer.action is Action.REFRESH_TOKEN else answer.action
            raise TokenFetchError(answer.errcode, answer.errmsg, action)
        value, expires_in = answer.body.get("access_token"), answer.body.get("expires_in")
        if not isinstance(value, str) or not value or not isinstance(expires_in, int):
            raise TokenFetchError(None, "token answer without access_token", Action.RETRY_BACKOFF)
        return Token(value, now + timedelta(seconds=expires_in))

    async def _call(self, path: str, body: dict[str, Any]) -> _Answer:
        try:
            token = await self._current_token()
        except TokenFetchError as e:
            return _Answer(e.errcode, e.errmsg, e.action, {})
        answer = await self._post(path, token, body)
        if answer.action is not Action.REFRESH_TOKEN:
            return answer
        try:
            token = await self._store.refresh(
                partial(self.fetch_token, force=True), stale=token.value
            )
        except TokenFetchError as e:
            return _Answer(e.errcode, e.errmsg, e.action, {}, token_refreshed=True)
        answer = replace(await self._post(path, token, body), token_refreshed=True)
        if answer.action is Action.REFRESH_TOKEN:
            # A token fetched just now is refused too: the account or secret is wrong. Refreshing
            # again would only repeat this, so stop and let a person look.
            answer = replace(answer, action=Action.CONFIG_ERROR)
        return answer

    async def _current_token(self) -> Token:
        token = await self._store.get()
        if token is None or token.expiring(self._clock.now()):
            stale = token.value if token is not None else None
            token = await self._store.refresh(partial(self.fetch_token, force=False), stale)
        return token

    def _url(self, path: str, token: Token) -> httpx.URL:
        """The call's URL, parsed once per token: httpx checks a URL character by character, and
        ``params`` would make it do so twice, on every send."""
        key = (path, token.value)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) > 16:  # old tokens' URLs
                self._urls.clear()
            url = self._urls[key] = httpx.URL(
                f"{self._base_url}{path}?access_token={quote(token.value, safe='')}"
            )
        return url

    async def _post(self, path: str, token: Token, body: dict[str, Any]) -> _Answer:
        try:
            resp = await self._http.post(
                self._url(path, token), content=_json(body), headers=_headers()
            )
        except httpx.HTTPError as e:
            return _Answer(None, _transport_error(e), Action.RETRY_BACKOFF, {})
        answer = _read(resp)
        wechat_answered(path, answer.errcode)
        return answer


def _json(body: dict[str, Any]) -> bytes:
    # Chinese text is sent as UTF-8, not \u escapes: some WeChat endpoints show escapes verbatim.
    # (orjson writes compact UTF-8, as json.dumps(ensure_ascii=False) would, several times faster.)
    return orjson.dumps(body)


def _headers() -> dict[str, str]:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    # Adds traceparent (and baggage) when a span is current, so WeChat calls join the trace.
    propagate.inject(headers)
    return headers


def _read(resp: httpx.Response) -> _Answer:
    if resp.status_code >= 500 or resp.status_code == 429:
        return _Answer(None, f"HTTP {resp.status_code}", Action.RETRY_BACKOFF, {})
    if resp.status_code != 200:
        # WeChat answers its own errors with 200; anything else is a wrong base URL or a proxy.
        return _Answer(None, f"HTTP {resp.status_code}", Action.CONFIG_ERROR, {})
    try:
        body = resp.json()
    except ValueError:
        return _Answer(None, "answer is not JSON", Action.RETRY_BACKOFF, {})
    if not isinstance(body, dict):
        return _Answer(None, "answer is not a JSON object", Action.RETRY_BACKOFF, {})
    raw = body.get("errcode", 0)
    errcode = raw if isinstance(raw, int) else -1
    return _Answer(errcode, str(body.get("errmsg", "")), action_for(errcode), body)


def _transport_error(e: httpx.HTTPError) -> str:
    # The request URL carries the access token or secret: name the failure, not the URL.
    return f"transport: {type(e).__name__}"
