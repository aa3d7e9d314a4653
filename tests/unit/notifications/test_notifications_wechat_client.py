"""The WeChat client against an in-process fake of the API (httpx.MockTransport, no servers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.notifications.domain import TemplateMessage
from services.notifications.errcodes import Action
from services.notifications.wechat import (
    MemoryTokenStore,
    Token,
    WeChatClient,
)
from tests.support.clock import ManualClock

APPID, SECRET = "wx-app", "s3cret-value"
START = datetime(2025, 1, 15, 8, 0, tzinfo=UTC)

MESSAGE = TemplateMessage(
    touser="oMEMBER1",
    template_id="TPL-WELCOME",
    data={"first": {"value": "李娜，欢迎加入工会"}},
    client_msg_id="gh-abc",
    url="https://m.example/card",
)


@dataclass
class FakeWeChat:
    """Just enough of WeChat: issues tokens, checks them, answers sends from a script."""

    valid: set[str] = field(default_factory=set)
    issued: int = 0
    token_requests: list[httpx.Request] = field(default_factory=list)
    sends: list[httpx.Request] = field(default_factory=list)
    # errcodes to answer sends with, in turn, before answering normally.
    send_script: list[int] = field(default_factory=list)
    # Answer every send with this errcode (e.g. persistent 40001).
    always: int | None = None
    token_errcode: int | None = None
    delay: float = 0.0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        path = request.url.path
        if path in ("/cgi-bin/token", "/cgi-bin/stable_token"):
            self.token_requests.append(request)
            if self.token_errcode is not None:
                return httpx.Response(200, json={"errcode": self.token_errcode, "errmsg": "no"})
            self.issued += 1
            value = f"tok-{self.issued}"
            self.valid.add(value)
            return httpx.Response(200, json={"access_token": value, "expires_in": 7200})
        token = request.url.params.get("access_token")
        if path == "/cgi-bin/message/template/send":
            self.sends.append(request)
            if self.always is not None:
                return errcode(self.always)
            if self.send_script:
                return errcode(self.send_script.pop(0))
            if token not in self.valid:
                return errcode(40001)
            return httpx.Response(
                200, json={"errcode": 0, "errmsg": "ok", "msgid": 1000 + len(self.sends)}
            )
        if path == "/cgi-bin/openapi/quota/get":
            body = json.loads(request.content)
            assert body == {"cgi_path": "/cgi-bin/message/template/send"}
            return httpx.Response(
                200,
                json={
                    "errcode": 0,
                    "errmsg": "ok",
                    "quota": {"daily_limit": 100000, "used": 7, "remain": 99993},
                },
            )
        return httpx.Response(404)


def errcode(code: int) -> httpx.Response:
    return httpx.Response(200, json={"errcode": code, "errmsg": f"errcode {code}"})


@pytest.fixture
def wechat() -> FakeWeChat:
    return FakeWeChat()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def http(wechat: FakeWeChat) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(wechat)) as client:
        yield client


def make_client(
    http: httpx.AsyncClient,
    clock: ManualClock,
    store: MemoryTokenStore | None = None,
    **kwargs: object,
) -> WeChatClient:
    return WeChatClient(
        http,
        APPID,
        SECRET,
        store or MemoryTokenStore(),
        "https://wechat.test/",
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_a_token_is_fetched_once_and_reused(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock
) -> None:
    client = make_client(http, clock)
    first = await client.send_template(MESSAGE)
    second = await client.send_template(MESSAGE)
    assert first.ok and second.ok
    assert (first.errcode, first.msgid, first.token_refreshed) == (0, 1001, False)
    assert len(wechat.token_requests) == 1
    params = wechat.token_requests[0].url.params
    assert dict(params) == {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}


async def test_the_send_request_is_the_documented_one(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock
) -> None:
    await make_client(http, clock).send_template(MESSAGE)
    (request,) = wechat.sends
    assert request.method == "POST"
    assert (
        str(request.url) == "https://wechat.test/cgi-bin/message/template/send?access_token=tok-1"
    )
    # Chinese travels as UTF-8, not \\u escapes.
    assert "欢迎".encode() in request.content
    assert json.loads(request.content) == MESSAGE.payload()


async def test_the_token_is_refreshed_when_less_than_five_minutes_remain(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock
) -> None:
    store = MemoryTokenStore()
    client = make_client(http, clock, store)
    await client.send_template(MESSAGE)
    clock.set(START + timedelta(seconds=7200 - 301))
    await client.send_template(MESSAGE)
    assert len(wechat.token_requests) == 1
    clock.set(START + timedelta(seconds=7200 - 299))
    result = await client.send_template(MESSAGE)
    assert result.ok and not result.token_refreshed
    assert len(wechat.token_requests) == 2
    token = await store.get()
    assert token is not None and token.value == "tok-2"
    assert token.expires_at == clock.now() + timedelta(seconds=7200)


@pytest.mark.parametrize("stale_code", [40001, 40014, 42001])
async def test_a_stale_token_answer_causes_one_refresh_and_one_retry(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock, stale_code: int
) -> None:
    wechat.send_script = [stale_code]
    result = await make_client(http, clock).send_template(MESSAGE)
    assert result.ok
    assert result.token_refreshed
    assert len(wechat.token_requests) == 2
    assert [r.url.params["access_token"] for r in wechat.sends] == ["tok-1", "tok-2"]


async def test_persistent_40001_is_bounded_and_reported_as_configuration(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock
) -> None:
    wechat.always = 40001
    result = await asyncio.wait_for(make_client(http, clock).send_template(MESSAGE), timeout=5)
    assert result.errcode == 40001
    assert result.action is Action.CONFIG_ERROR
    assert result.token_refreshed
    assert len(wechat.sends) == 2
    assert len(wechat.token_requests) == 2


async def test_concurrent_sends_with_a_stale_token_refresh_it_once(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock
) -> None:
    # The store holds a token WeChat no longer accepts, with plenty of time left by its own clock.
    store = MemoryTokenStore(Token("tok-revoked", START + timedelta(hours=1)))
    wechat.delay = 0.001  # let the sends interleave
    clients = [make_client(http, clock, store) for _ in range(4)]  # several workers, one store
    results = await asyncio.gather(*(clients[i % 4].send_template(MESSAGE) for i in range(20)))
    assert all(r.ok for r in results)
    assert len(wechat.token_requests) == 1
    assert len(wechat.sends) == 40


async def test_the_memory_store_refreshes_only_a_token_still_stale() -> None:
    store = MemoryTokenStore(Token("new", START))
    fetched: list[str] = []

    async def fetch() -> Token:
        fetched.append("x")
        return Token("newer", START)

    assert (await store.refresh(fetch, stale="old")).value == "new"
    assert fetched == []
    assert (await store.refresh(fetch, stale="new")).value == "newer"
    assert fetched == ["x"]


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (-1, Action.RETRY_BACKOFF),
        (45009, Action.PAUSE_QUOTA),
        (45011, Action.PAUSE_QUOTA),
        (43004, Action.RECIPIENT_UNREACHABLE),
        (43101, Action.RECIPIENT_UNREACHABLE),
        (40003, Action.RECIPIENT_UNREACHABLE),
        (48002, Action.RECIPIENT_UNREACHABLE),
        (47003, Action.MESSAGE_INVALID),
        (40037, Action.MESSAGE_INVALID),
        (40013, Action.CONFIG_ERROR),
        (40164, Action.CONFIG_ERROR),
        (48001, Action.CONFIG_ERROR),
        (41001, Action.CONFIG_ERROR),
        (61234, Action.UNKNOWN),
    ],
)
async def test_each_errcode_answer_becomes_its_action_without_retrying(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock, code: int, action: Action
) -> None:
    wechat.always = code
    result = await make_client(http, clock).send_template(MESSAGE)
    assert (result.errcode, result.action, result.msgid) == (code, action, None)
    assert result.errmsg == f"errcode {code}"
    assert len(wechat.sends) == 1


@pytest.mark.parametrize(
    ("response", "action"),
    [
        (httpx.Response(502), Action.RETRY_BACKOFF),
        (httpx.Response(503, text="busy"), Action.RETRY_BACKOFF),
        (httpx.Response(429), Action.RETRY_BACKOFF),
        (httpx.Response(200, text="<html>proxy</html>"), Action.RETRY_BACKOFF),
        (httpx.Response(404), Action.CONFIG_ERROR),
    ],
)
async def test_answers_that_are_not_wechats_become_actions(
    clock: ManualClock, response: httpx.Response, action: Action
) -> None:
    store = MemoryTokenStore(Token("tok", START + timedelta(hours=1)))
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: response)) as http:
        result = await make_client(http, clock, store).send_template(MESSAGE)
    assert result.errcode is None
    assert result.action is action


async def test_a_network_failure_is_retried_later_and_leaks_no_secret(clock: ManualClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        result = await make_client(http, clock).send_template(MESSAGE)
    assert result.action is Action.RETRY_BACKOFF
    assert result.errcode is None
    assert SECRET not in result.errmsg


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (40013, Action.CONFIG_ERROR),
        (40125, Action.CONFIG_ERROR),
        (40001, Action.CONFIG_ERROR),
        (40164, Action.CONFIG_ERROR),
        (-1, Action.RETRY_BACKOFF),
    ],
)
async def test_a_refused_token_fetch_is_the_send_result(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock, code: int, action: Action
) -> None:
    wechat.token_errcode = code
    result = await make_client(http, clock).send_template(MESSAGE)
    assert (result.errcode, result.action) == (code, action)
    assert wechat.sends == []


async def test_stable_token_is_forced_only_after_a_stale_token_answer(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock
) -> None:
    wechat.send_script = [40001]
    result = await make_client(http, clock, token_endpoint="stable_token").send_template(MESSAGE)
    assert result.ok
    bodies = [json.loads(r.content) for r in wechat.token_requests]
    assert [r.method for r in wechat.token_requests] == ["POST", "POST"]
    assert [b["force_refresh"] for b in bodies] == [False, True]
    assert bodies[0] == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": False,
    }


async def test_quota_is_read_for_a_cgi_path(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock
) -> None:
    quota = await make_client(http, clock).get_quota("/cgi-bin/message/template/send")
    assert quota.action is Action.OK
    assert (quota.daily_limit, quota.used, quota.remain) == (100000, 7, 99993)


async def test_the_trace_context_travels_with_the_request(
    http: httpx.AsyncClient, wechat: FakeWeChat, clock: ManualClock
) -> None:
    client = make_client(http, clock)
    await client.send_template(MESSAGE)
    assert "traceparent" not in wechat.sends[0].headers

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("notify") as span:
        await client.send_template(MESSAGE)
    trace_id = format(span.get_span_context().trace_id, "032x")
    traceparent = wechat.sends[1].headers["traceparent"]
    assert traceparent.split("-")[1] == trace_id
