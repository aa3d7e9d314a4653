"""The WeChat simulator over real HTTP: WeChat's paths, shapes and errcodes, the token and quota
rules against the simulated clock, client_msg_id dedup, event pushes to a receiver, fault
injection, the inspection API, and an independent SDK (wechatpy) working against it unchanged.

Needs no Kafka or Postgres: the simulator and a small push receiver run in-process on free ports.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
import pytest_asyncio
import uvicorn
import xmltodict

from tests.support.ports import free_port
from wechat_simulator import SimulatorConfig, create_app
from wechat_simulator.__main__ import build_parser, load_config
from wechat_simulator.config import DEFAULT_APPID, DEFAULT_SECRET
from wechat_simulator.rawhttp import RawHttpPoster

APPID = "wx1234567890abcdef"
SECRET = "fedcba0987654321fedcba0987654321"
CALLBACK_TOKEN = "sim-test-token"
ORIGINAL_ID = "gh_123456789abc"
REPO_ROOT = Path(__file__).resolve().parents[2]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

NOTICE = "TPL_NOTICE"  # template message: first?, keyword1, keyword2, remark?
REMINDER = "SUB_REMINDER"  # subscription message: thing1, number2, time3
TEMPLATE_SEND = "/cgi-bin/message/template/send"
BIZSEND = "/cgi-bin/message/subscribe/bizsend"


# --------------------------------------------------------------------------- servers


@dataclass
class Push:
    path: str
    query: dict[str, str]
    body: bytes

    @property
    def xml(self) -> dict[str, Any]:
        parsed: dict[str, Any] = xmltodict.parse(self.body)["xml"]
        return parsed


@dataclass
class Receiver:
    """The account's server: records every push, optionally failing the first few."""

    pushes: list[Push] = field(default_factory=list)
    fail_next: int = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        status, answer = 200, b"success"
        if self.fail_next > 0:
            self.fail_next -= 1
            status, answer = 500, b"boom"
        else:
            query = dict(parse_qsl(scope["query_string"].decode()))
            self.pushes.append(Push(scope["path"], query, b"".join(chunks)))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    def events(self, event: str) -> list[dict[str, Any]]:
        return [p.xml for p in self.pushes if p.xml["Event"] == event]


@dataclass
class Running:
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def serve(app: Any) -> Running:
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    return Running(server, task, port)


@dataclass
class Env:
    base_url: str
    receiver: Receiver
    client: httpx.AsyncClient

    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.client.request(method, f"/_sim{path}", **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    async def token(self) -> str:
        body = await self.fetch_token()
        assert "access_token" in body, body
        token: str = body["access_token"]
        return token

    async def fetch_token(self, appid: str = APPID, secret: str = SECRET) -> dict[str, Any]:
        params = {"grant_type": "client_credential", "appid": appid, "secret": secret}
        response = await self.client.get("/cgi-bin/token", params=params)
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    async def stable(self, force: bool = False, secret: str = SECRET) -> dict[str, Any]:
        body = {
            "grant_type": "client_credential",
            "appid": APPID,
            "secret": secret,
            "force_refresh": force,
        }
        response = await self.client.post("/cgi-bin/stable_token", json=body)
        result: dict[str, Any] = response.json()
        return result

    async def call(
        self,
        path: str,
        token: str | None,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        params = {"access_token": token} if token is not None else {}
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        response = await self.client.post(path, params=params, content=content, headers=headers)
        assert response.status_code == 200  # WeChat reports errors with HTTP 200
        result: dict[str, Any] = response.json()
        return result

    async def send(self, token: str, touser: str = "o_alice", **extra: Any) -> dict[str, Any]:
        body = {"touser": touser, "template_id": NOTICE, "data": notice_data(), **extra}
        return await self.call(TEMPLATE_SEND, token, body)

    async def advance(self, seconds: float) -> float:
        now: float = (await self.admin("POST", "/clock/advance", json={"seconds": seconds}))["now"]
        return now

    async def now(self) -> float:
        now: float = (await self.admin("GET", "/clock"))["now"]
        return now

    async def to_next_beijing_day(self) -> None:
        """Move just past midnight Beijing time, so a test's calls all fall in one quota day."""
        now = await self.now()
        day = 86_400
        midnight = ((now + 8 * 3600) // day + 1) * day - 8 * 3600
        await self.advance(midnight - now + 1)

    async def to_next_minute(self) -> None:
        now = await self.now()
        await self.advance((now // 60 + 1) * 60 - now + 0.01)

    async def flush(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin(
            "POST", "/callbacks/flush", params={"timeout": 10}
        )
        assert result["flushed"], result
        return result

    async def messages(self, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin("GET", "/messages", params=params)
        return result

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin("GET", "/stats")
        return result


def notice_data(**overrides: str) -> dict[str, Any]:
    values = {"keyword1": "会员代表大会", "keyword2": "2024-05-01 09:00", "remark": "请准时参加"}
    values.update(overrides)
    return {key: {"value": value, "color": "#173177"} for key, value in values.items()}


def reminder_data(**overrides: str) -> dict[str, Any]:
    values = {"thing1": "互助金申请已受理", "number2": "3", "time3": "2024-05-01 09:00"}
    values.update(overrides)
    return {key: {"value": value} for key, value in values.items()}


SEED_USERS = [
    {"openid": "o_alice", "state": "following"},
    {"openid": "o_bob", "state": "following"},
    {"openid": "o_gone", "state": "unfollowed"},
    {"openid": "o_blocked", "state": "blocked"},
    {"openid": "o_refuser", "state": "refused"},
]
SEED_TEMPLATES = [
    {
        "template_id": NOTICE,
        "kind": "template",
        "keys": ["first", "keyword1", "keyword2", "remark"],
        "optional_keys": ["first", "remark"],
        "title": "会议通知",
    },
    {"template_id": REMINDER, "kind": "subscribe", "keys": ["thing1", "number2", "time3"]},
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def servers() -> AsyncIterator[tuple[Running, Receiver]]:
    receiver = Receiver()
    receiver_server = await serve(receiver)
    config = SimulatorConfig.model_validate(
        {
            "appid": APPID,
            "secret": SECRET,
            "original_id": ORIGINAL_ID,
            "callback_url": f"http://127.0.0.1:{receiver_server.port}/wechat/events",
            "callback_token": CALLBACK_TOKEN,
            "users": SEED_USERS,
            "templates": SEED_TEMPLATES,
        }
    )
    sim_server = await serve(create_app(config))
    yield sim_server, receiver
    await sim_server.stop()
    await receiver_server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def env(servers: tuple[Running, Receiver]) -> AsyncIterator[Env]:
    sim_server, receiver = servers
    base_url = f"http://127.0.0.1:{sim_server.port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as client:
        environment = Env(base_url, receiver, client)
        await environment.admin("POST", "/reset")
        receiver.pushes.clear()
        receiver.fail_next = 0
        yield environment


# --------------------------------------------------------------------------- tokens


async def test_token_success_shape(env: Env) -> None:
    body = await env.fetch_token()
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == 7200
    assert len(body["access_token"]) >= 100  # real tokens are long; clients must keep 512 chars
    assert (await env.stats())["token_fetches"] == 1


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"grant_type": "client_credential", "appid": "wx_wrong", "secret": SECRET}, 40013),
        ({"grant_type": "client_credential", "appid": APPID, "secret": "wrong"}, 40125),
        ({"grant_type": "client_credential", "secret": SECRET}, 41002),
        ({"grant_type": "client_credential", "appid": APPID}, 41004),
        ({"grant_type": "password", "appid": APPID, "secret": SECRET}, 40002),
    ],
)
async def test_token_errors(env: Env, params: dict[str, str], errcode: int) -> None:
    body = (await env.client.get("/cgi-bin/token", params=params)).json()
    assert body["errcode"] == errcode
    assert " rid: " in body["errmsg"]
    assert (await env.stats())["rejected"] == {str(errcode): 1}


async def test_wrong_secret_code_is_configurable(env: Env) -> None:
    await env.admin("POST", "/config", json={"wrong_secret_errcode": 40001})
    assert (await env.fetch_token(secret="wrong"))["errcode"] == 40001


async def test_token_daily_limit(env: Env) -> None:
    await env.to_next_beijing_day()
    await env.admin("POST", "/config", json={"token_daily_limit": 2})
    await env.token()
    await env.token()
    assert (await env.fetch_token())["errcode"] == 45009
    await env.to_next_beijing_day()
    await env.token()


async def test_new_token_invalidates_previous_after_five_minute_overlap(env: Env) -> None:
    first = await env.token()
    second = await env.token()
    assert first != second
    assert (await env.send(first))["errcode"] == 0  # still inside the overlap
    await env.advance(299)
    assert (await env.send(first))["errcode"] == 0
    await env.advance(2)
    stale = await env.send(first)
    assert stale["errcode"] == 40001
    assert stale["errmsg"].startswith("invalid credential")
    assert (await env.send(second))["errcode"] == 0


async def test_token_expires_after_7200_seconds(env: Env) -> None:
    token = await env.token()
    await env.advance(7199)
    assert (await env.send(token))["errcode"] == 0
    await env.advance(1)
    assert (await env.send(token))["errcode"] == 42001


async def test_send_token_errors(env: Env) -> None:
    assert (await env.send(""))["errcode"] == 41001
    assert (await env.call(TEMPLATE_SEND, None, {"touser": "o_alice"}))["errcode"] == 41001
    assert (await env.send("not-a-token"))["errcode"] == 40014


async def test_changing_the_secret_revokes_tokens(env: Env) -> None:
    token = await env.token()
    settings = await env.admin("POST", "/config", json={"secret": "new-secret"})
    assert settings["secret"] == "new-secret"
    assert (await env.send(token))["errcode"] == 40014
    assert (await env.fetch_token())["errcode"] == 40125
    assert "access_token" in await env.fetch_token(secret="new-secret")


async def test_config_rejects_unknown_settings(env: Env) -> None:
    response = await env.client.post("/_sim/config", json={"no_such_setting": 1})
    assert response.status_code == 422
    response = await env.client.post("/_sim/config", json={"daily_quota": -5})
    assert response.status_code == 422


# --------------------------------------------------------------------------- stable_token


async def test_stable_token_is_stable_and_isolated(env: Env) -> None:
    first = await env.stable()
    assert first["expires_in"] == 7200
    await env.advance(100)
    again = await env.stable()
    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] == 7100
    # /cgi-bin/token and stable_token do not affect each other.
    await env.token()
    await env.token()
    await env.advance(400)
    assert (await env.send(first["access_token"]))["errcode"] == 0


async def test_stable_token_renews_five_minutes_before_expiry(env: Env) -> None:
    first = (await env.stable())["access_token"]
    await env.advance(7200 - 301)
    assert (await env.stable())["access_token"] == first
    await env.advance(2)  # 299 s left: inside the renewal window
    renewed = await env.stable()
    assert renewed["access_token"] != first
    assert renewed["expires_in"] == 7200
    # The old one still works until its own expiry.
    assert (await env.send(first))["errcode"] == 0
    await env.advance(300)
    assert (await env.send(first))["errcode"] == 42001
    assert (await env.send(renewed["access_token"]))["errcode"] == 0


async def test_stable_token_force_refresh_limits(env: Env) -> None:
    await env.to_next_beijing_day()
    first = (await env.stable())["access_token"]
    forced = await env.stable(force=True)
    assert forced["access_token"] != first
    assert (await env.send(first))["errcode"] == 40001  # invalidated at once
    too_soon = await env.stable(force=True)
    assert too_soon["errcode"] == 45011
    await env.advance(30)
    for _ in range(19):
        assert "access_token" in await env.stable(force=True)
        await env.advance(31)
    assert (await env.stable(force=True))["errcode"] == 45009  # 20 a day
    assert "access_token" in await env.stable()  # normal mode is unaffected
    stats = await env.stats()
    assert stats["stable_token_force_refreshes"] == 20


async def test_stable_token_errors(env: Env) -> None:
    assert (await env.stable(secret="wrong"))["errcode"] == 40125
    response = await env.client.post("/cgi-bin/stable_token", content=b"{not json")
    assert response.json()["errcode"] == 47001
    response = await env.client.post("/cgi-bin/stable_token", json={"appid": APPID})
    assert response.json()["errcode"] == 40002


# --------------------------------------------------------------------------- template send


async def test_template_send_success_is_recorded_with_traceparent(env: Env) -> None:
    token = await env.token()
    body = {
        "touser": "o_alice",
        "template_id": NOTICE,
        "url": "https://gonghui.example/notice/1",
        "miniprogram": {"appid": "wxminiapp", "pagepath": "index?id=1"},
        "data": notice_data(),
    }
    result = await env.call(TEMPLATE_SEND, token, body, headers={"traceparent": TRACEPARENT})
    assert result["errcode"] == 0 and result["errmsg"] == "ok"
    assert isinstance(result["msgid"], int)
    listing = await env.messages(openid="o_alice")
    assert listing["total"] == 1
    (message,) = listing["items"]
    assert message["msgid"] == result["msgid"]
    assert message["template_id"] == NOTICE
    assert message["data"] == notice_data()
    assert message["url"] == "https://gonghui.example/notice/1"
    assert message["miniprogram"] == {"appid": "wxminiapp", "pagepath": "index?id=1"}
    assert message["traceparent"] == TRACEPARENT
    assert message["status"] == "success" and message["delivered"] is True
    one = await env.admin("GET", f"/messages/{result['msgid']}")
    assert one == message
    by_trace = await env.messages(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    assert by_trace["total"] == 1
    stats = await env.stats()
    assert stats["template_sends_accepted"] == 1 and stats["sends_accepted"] == 1


@pytest.mark.parametrize(
    ("body", "errcode", "errmsg_part"),
    [
        ({"touser": "o_nobody"}, 40003, "invalid openid"),
        ({"touser": ""}, 40003, "invalid openid"),
        ({"touser": "o_gone"}, 43004, "require subscribe"),
        ({"template_id": "NO_SUCH_TEMPLATE"}, 40037, "invalid template_id"),
        ({"template_id": REMINDER}, 40037, "invalid template_id"),
        ({"data": {"keyword1": {"value": "x"}}}, 47003, "data.keyword2"),
        ({"data": {**notice_data(), "keyword9": {"value": "x"}}}, 47003, "data.keyword9"),
        ({"data": notice_data(keyword1="长" * 201)}, 47003, "data.keyword1.value exceeds limit"),
        ({"data": {**notice_data(), "keyword2": "not an object"}}, 47003, "data.keyword2"),
        ({"data": notice_data(keyword1="")}, 47003, "data.keyword1.value is empty"),
    ],
)
async def test_template_send_errors(
    env: Env, body: dict[str, Any], errcode: int, errmsg_part: str
) -> None:
    token = await env.token()
    payload = {"touser": "o_alice", "template_id": NOTICE, "data": notice_data(), **body}
    result = await env.call(TEMPLATE_SEND, token, payload)
    assert result["errcode"] == errcode, result
    assert errmsg_part in result["errmsg"]
    assert "msgid" not in result
    assert (await env.messages())["total"] == 0
    assert (await env.stats())["rejected_by_path"] == {TEMPLATE_SEND: {str(errcode): 1}}


async def test_template_value_of_exactly_200_chars_is_accepted(env: Env) -> None:
    token = await env.token()
    data = notice_data(keyword1="长" * 200, remark="")  # optional keys may be empty
    assert (await env.send(token, data=data))["errcode"] == 0


async def test_malformed_bodies(env: Env) -> None:
    token = await env.token()
    assert (await env.call(TEMPLATE_SEND, token, b""))["errcode"] == 44002
    assert (await env.call(TEMPLATE_SEND, token, b"{oops"))["errcode"] == 47001
    assert (await env.call(TEMPLATE_SEND, token, b"[1, 2]"))["errcode"] == 47001


async def test_blocked_user_is_accepted_then_reported_failed(env: Env) -> None:
    token = await env.token()
    result = await env.send(token, touser="o_blocked")
    assert result["errcode"] == 0
    await env.flush()
    (report,) = env.receiver.events("TEMPLATESENDJOBFINISH")
    assert report["Status"] == "failed:user block"
    assert report["MsgID"] == str(result["msgid"])
    (message,) = (await env.messages(openid="o_blocked"))["items"]
    assert message["status"] == "failed:user block" and message["delivered"] is False


# --------------------------------------------------------------------------- client_msg_id


async def test_client_msg_id_dedup(env: Env) -> None:
    token = await env.token()
    first = await env.send(token, client_msg_id="notice-42")
    again = await env.send(token, client_msg_id="notice-42")
    assert first["errcode"] == again["errcode"] == 0
    assert again["msgid"] == first["msgid"]
    # Dedup is per openid + client_msg_id.
    other = await env.send(token, touser="o_bob", client_msg_id="notice-42")
    assert other["msgid"] != first["msgid"]
    assert (await env.messages())["total"] == 2
    await env.flush()
    assert len(env.receiver.events("TEMPLATESENDJOBFINISH")) == 2  # delivered once each
    stats = await env.stats()
    assert stats["duplicates_suppressed"] == 1
    assert stats["template_sends_accepted"] == 2
    assert stats["quota"][TEMPLATE_SEND]["used"] == 2  # a duplicate spends no quota


async def test_client_msg_id_window_expires(env: Env) -> None:
    await env.admin("POST", "/config", json={"client_msg_id_ttl_seconds": 86_400})
    token = (await env.stable())["access_token"]
    first = await env.send(token, client_msg_id="c-1")
    await env.advance(3600)
    token = (await env.stable())["access_token"]
    assert (await env.send(token, client_msg_id="c-1"))["msgid"] == first["msgid"]
    await env.advance(86_400 - 3600)
    token = (await env.stable())["access_token"]
    assert (await env.send(token, client_msg_id="c-1"))["msgid"] != first["msgid"]


async def test_client_msg_id_default_window_is_ten_minutes(env: Env) -> None:
    token = await env.token()
    first = await env.send(token, client_msg_id="c-2")
    await env.advance(599)
    assert (await env.send(token, client_msg_id="c-2"))["msgid"] == first["msgid"]
    await env.advance(1)
    assert (await env.send(token, client_msg_id="c-2"))["msgid"] != first["msgid"]


# --------------------------------------------------------------------------- subscription messages


async def test_bizsend(env: Env) -> None:
    token = await env.token()
    body = {"touser": "o_alice", "template_id": REMINDER, "page": "pages/aid", "data": {}}
    body["data"] = reminder_data()
    result = await env.call(BIZSEND, token, body, headers={"traceparent": TRACEPARENT})
    assert result == {"errcode": 0, "errmsg": "ok"}
    (message,) = (await env.messages(kind="subscribe"))["items"]
    assert message["page"] == "pages/aid" and message["traceparent"] == TRACEPARENT
    assert (await env.stats())["subscribe_sends_accepted"] == 1


@pytest.mark.parametrize(
    ("body", "errcode", "errmsg_part"),
    [
        ({"touser": "o_refuser"}, 43101, "refuse"),
        ({"touser": "o_blocked"}, 43101, "refuse"),
        ({"touser": "o_nobody"}, 40003, "invalid openid"),
        ({"template_id": NOTICE}, 40037, "invalid template_id"),
        ({"data": reminder_data(thing1="一" * 21)}, 47003, "data.thing1.value exceeds limit 20"),
        ({"data": reminder_data(number2="three")}, 47003, "data.number2.value invalid"),
        ({"data": reminder_data(thing1="")}, 47003, "data.thing1.value is empty"),
    ],
)
async def test_bizsend_errors(
    env: Env, body: dict[str, Any], errcode: int, errmsg_part: str
) -> None:
    token = await env.token()
    payload = {"touser": "o_alice", "template_id": REMINDER, "data": reminder_data(), **body}
    result = await env.call(BIZSEND, token, payload)
    assert result["errcode"] == errcode, result
    assert errmsg_part in result["errmsg"]


async def test_bizsend_accepts_thing_of_20_chars(env: Env) -> None:
    token = await env.token()
    payload = {
        "touser": "o_alice",
        "template_id": REMINDER,
        "data": reminder_data(thing1="一" * 20),
    }
    assert (await env.call(BIZSEND, token, payload))["errcode"] == 0


# --------------------------------------------------------------------------- quotas


async def test_daily_quota(env: Env) -> None:
    await env.to_next_beijing_day()
    await env.admin("POST", "/config", json={"daily_quota": 3})
    token = (await env.stable())["access_token"]
    for _ in range(3):
        assert (await env.send(token))["errcode"] == 0
    over = await env.send(token)
    assert over["errcode"] == 45009
    assert over["errmsg"].startswith("reach max api daily quota limit")
    quota = await env.call("/cgi-bin/openapi/quota/get", token, {"cgi_path": TEMPLATE_SEND})
    assert quota == {
        "errcode": 0,
        "errmsg": "ok",
        "quota": {"daily_limit": 3, "used": 3, "remain": 0},
    }
    # Each API has its own quota.
    payload = {"touser": "o_alice", "template_id": REMINDER, "data": reminder_data()}
    assert (await env.call(BIZSEND, token, payload))["errcode"] == 0
    # The day rolls over at midnight Beijing time.
    await env.to_next_beijing_day()
    token = (await env.stable())["access_token"]
    assert (await env.send(token))["errcode"] == 0
    quota = await env.call("/cgi-bin/openapi/quota/get", token, {"cgi_path": TEMPLATE_SEND})
    assert quota["quota"] == {"daily_limit": 3, "used": 1, "remain": 2}


async def test_minute_quota(env: Env) -> None:
    await env.admin("POST", "/config", json={"minute_quota": 2})
    token = await env.token()
    await env.to_next_minute()
    assert (await env.send(token))["errcode"] == 0
    assert (await env.send(token))["errcode"] == 0
    over = await env.send(token)
    assert over["errcode"] == 45011
    assert "minute-quota" in over["errmsg"]
    quota = await env.call("/cgi-bin/openapi/quota/get", token, {"cgi_path": TEMPLATE_SEND})
    assert quota["rate_limit"] == {"call_count": 2, "refresh_second": 60}
    await env.to_next_minute()
    assert (await env.send(token))["errcode"] == 0


async def test_quota_get_errors(env: Env) -> None:
    token = await env.token()
    unknown = await env.call("/cgi-bin/openapi/quota/get", token, {"cgi_path": "/cgi-bin/nope"})
    assert unknown["errcode"] == 76021
    no_token = await env.call("/cgi-bin/openapi/quota/get", None, {"cgi_path": TEMPLATE_SEND})
    assert no_token["errcode"] == 41001


# --------------------------------------------------------------------------- event pushes


def check_signature(push: Push) -> None:
    query = push.query
    expected = hashlib.sha1(
        "".join(sorted((CALLBACK_TOKEN, query["timestamp"], query["nonce"]))).encode()
    ).hexdigest()
    assert query["signature"] == expected


async def test_delivery_report_is_pushed(env: Env) -> None:
    token = await env.token()
    sent_at = int(await env.now())
    result = await env.send(token)
    await env.flush()
    (push,) = env.receiver.pushes
    assert push.path == "/wechat/events"
    check_signature(push)
    assert push.query["openid"] == "o_alice"
    report = push.xml
    assert report == {
        "ToUserName": ORIGINAL_ID,
        "FromUserName": "o_alice",
        "CreateTime": report["CreateTime"],
        "MsgType": "event",
        "Event": "TEMPLATESENDJOBFINISH",
        "MsgID": str(result["msgid"]),
        "Status": "success",
    }
    assert abs(int(report["CreateTime"]) - sent_at) <= 2
    assert (await env.stats())["callbacks"]["delivered"] == 1


async def test_delivery_failure_injection(env: Env) -> None:
    token = await env.token()
    await env.admin("POST", "/faults", json={"delivery_failures": 1})
    first = await env.send(token)
    second = await env.send(token)
    await env.admin("POST", "/faults", json={"delivery_fail_openids": ["o_bob"]})
    third = await env.send(token, touser="o_bob")
    await env.flush()
    statuses = {r["MsgID"]: r["Status"] for r in env.receiver.events("TEMPLATESENDJOBFINISH")}
    assert statuses == {
        str(first["msgid"]): "failed: system failed",
        str(second["msgid"]): "success",
        str(third["msgid"]): "failed: system failed",
    }
    failed = await env.messages(status="failed: system failed")
    assert failed["total"] == 2
    assert (await env.stats())["delivery_status"] == {"failed: system failed": 2, "success": 1}


async def test_push_is_retried_when_the_receiver_fails(env: Env) -> None:
    env.receiver.fail_next = 1
    token = await env.token()
    await env.send(token)
    callbacks = await env.flush()
    assert callbacks["delivered"] == 1 and callbacks["retried"] == 1
    assert len(env.receiver.pushes) == 1


async def test_push_failures_are_counted_not_raised(env: Env) -> None:
    await env.admin(
        "POST",
        "/config",
        json={"callback_url": "http://127.0.0.1:9/nowhere", "callback_retries": 1},
    )
    token = await env.token()
    assert (await env.send(token))["errcode"] == 0
    callbacks = await env.flush()
    assert callbacks["failed"] == 1 and callbacks["last_error"]


async def test_no_callback_url_means_no_push(env: Env) -> None:
    await env.admin("POST", "/config", json={"callback_url": None})
    token = await env.token()
    assert (await env.send(token))["errcode"] == 0
    callbacks = await env.flush()
    assert callbacks["skipped_no_url"] == 1 and env.receiver.pushes == []


async def test_follow_state_changes_push_subscribe_events(env: Env) -> None:
    token = await env.token()
    changed = await env.admin("POST", "/users/o_alice/unfollow")
    assert changed == {
        "openid": "o_alice",
        "state": "unfollowed",
        "subscription": "accepted",
        "event": "unsubscribe",
    }
    assert (await env.send(token))["errcode"] == 43004
    followed = await env.admin("POST", "/users/o_alice/follow")
    assert followed["event"] == "subscribe"
    assert (await env.send(token))["errcode"] == 0
    blocked = await env.admin("POST", "/users/o_alice/block")
    assert blocked["event"] is None  # blocking is silent in WeChat
    quiet = await env.admin("POST", "/users/o_bob/unfollow", params={"notify": "false"})
    assert quiet["event"] is None
    await env.flush()
    events = [(p.xml["Event"], p.xml["FromUserName"]) for p in env.receiver.pushes]
    assert ("unsubscribe", "o_alice") in events and ("subscribe", "o_alice") in events
    assert all(openid == "o_alice" for _, openid in events)
    for push in env.receiver.pushes:
        check_signature(push)
        if push.xml["Event"] != "TEMPLATESENDJOBFINISH":
            assert set(push.xml) == {
                "ToUserName",
                "FromUserName",
                "CreateTime",
                "MsgType",
                "Event",
            }


async def test_state_endpoint_and_subscription_refusal(env: Env) -> None:
    token = await env.token()
    changed = await env.admin("POST", "/users/o_alice/state", json={"subscription": "refused"})
    assert changed["state"] == "following" and changed["subscription"] == "refused"
    payload = {"touser": "o_alice", "template_id": REMINDER, "data": reminder_data()}
    assert (await env.call(BIZSEND, token, payload))["errcode"] == 43101
    assert (await env.send(token))["errcode"] == 0  # template messages only need the follow
    await env.admin("POST", "/users/o_alice/accept")
    assert (await env.call(BIZSEND, token, payload))["errcode"] == 0
    missing = await env.client.post("/_sim/users/o_nobody/follow")
    assert missing.status_code == 404


# --------------------------------------------------------------------------- admin: users/templates


async def test_users_admin(env: Env) -> None:
    created = await env.admin(
        "POST",
        "/users",
        json={"users": [{"openid": "o_new", "state": "blocked"}], "generate": 3, "prefix": "oGen"},
    )
    assert created["created"] == 4
    assert created["openids"] == ["o_new", "oGen00000000", "oGen00000001", "oGen00000002"]
    single = await env.admin("POST", "/users", json={"openid": "o_one", "notify": True})
    assert single["events_queued"] == 1  # a new follower, announced on request
    user = await env.admin("GET", "/users/o_new")
    assert user == {"openid": "o_new", "state": "blocked", "subscription": "accepted"}
    listing = await env.admin("GET", "/users", params={"state": "blocked"})
    assert {u["openid"] for u in listing["users"]} == {"o_new", "o_blocked"}
    assert listing["counts"]["total"] == len(SEED_USERS) + 5
    assert (await env.client.get("/_sim/users/o_nobody")).status_code == 404
    token = await env.token()
    assert (await env.send(token, touser="oGen00000002"))["errcode"] == 0
    await env.flush()
    assert env.receiver.events("subscribe")[0]["FromUserName"] == "o_one"


async def test_auto_create_users(env: Env) -> None:
    token = await env.token()
    assert (await env.send(token, touser="o_stranger"))["errcode"] == 40003
    await env.admin("POST", "/config", json={"auto_create_users": True})
    assert (await env.send(token, touser="o_stranger"))["errcode"] == 0


async def test_templates_admin(env: Env) -> None:
    registered = await env.admin(
        "POST",
        "/templates",
        json={
            "templates": [
                {"template_id": "T_LIMITS", "keys": {"keyword1": 5, "remark": None}},
                {"template_id": "S_PHRASE", "kind": "subscribe", "keys": ["phrase1"]},
            ]
        },
    )
    assert registered["templates"][0] == {
        "template_id": "T_LIMITS",
        "kind": "template",
        "keys": {"keyword1": 5, "remark": 200},
        "optional_keys": [],
        "title": "",
    }
    assert registered["templates"][1]["keys"] == {"phrase1": 5}
    single = await env.admin("POST", "/templates", json={"template_id": "T_ONE", "keys": ["k"]})
    assert single["templates"][0]["template_id"] == "T_ONE"
    ids = {t["template_id"] for t in (await env.admin("GET", "/templates"))["templates"]}
    assert ids == {NOTICE, REMINDER, "T_LIMITS", "S_PHRASE", "T_ONE"}
    token = await env.token()
    data = {"keyword1": {"value": "123456"}, "remark": {"value": "r"}}
    result = await env.call(
        TEMPLATE_SEND, token, {"touser": "o_alice", "template_id": "T_LIMITS", "data": data}
    )
    assert result["errcode"] == 47003 and "data.keyword1.value exceeds limit 5" in result["errmsg"]
    await env.admin("DELETE", "/templates/T_ONE")
    assert (await env.client.delete("/_sim/templates/T_ONE")).status_code == 404
    bad = await env.client.post("/_sim/templates", json={"template_id": "X", "kind": "weird"})
    assert bad.status_code == 422


# --------------------------------------------------------------------------- faults


async def test_latency_fault(env: Env) -> None:
    token = await env.token()
    await env.admin("POST", "/faults", json={"latency_ms": 200})
    started = time.perf_counter()
    assert (await env.send(token))["errcode"] == 0
    assert time.perf_counter() - started >= 0.2
    await env.admin("POST", "/faults", json={"latency_ms": 0})


async def test_system_error_burst(env: Env) -> None:
    token = await env.token()
    faults = await env.admin("POST", "/faults", json={"system_errors": 2})
    assert faults["system_errors"] == 2
    busy = await env.send(token)
    assert busy["errcode"] == -1 and busy["errmsg"].startswith("system error")
    assert (await env.send(token))["errcode"] == -1
    assert (await env.send(token))["errcode"] == 0
    # Scoped to chosen paths (default: the two send APIs); "*" covers every WeChat endpoint.
    paths = {"system_errors": 1, "system_error_paths": ["/cgi-bin/token"]}
    await env.admin("POST", "/faults", json=paths)
    assert (await env.fetch_token())["errcode"] == -1
    assert (await env.send(token))["errcode"] == 0
    await env.admin("POST", "/faults", json={"system_errors": 1, "system_error_paths": ["*"]})
    quota = await env.call("/cgi-bin/openapi/quota/get", token, {"cgi_path": TEMPLATE_SEND})
    assert quota["errcode"] == -1
    assert (await env.send(token))["errcode"] == 0
    assert (await env.stats())["rejected"]["-1"] == 4


async def test_persistent_40001(env: Env) -> None:
    await env.admin("POST", "/faults", json={"persistent_40001": True})
    for _ in range(3):
        token = await env.token()  # fetching works; using never does
        assert (await env.send(token))["errcode"] == 40001
    quota = await env.call("/cgi-bin/openapi/quota/get", token, {"cgi_path": TEMPLATE_SEND})
    assert quota["errcode"] == 40001
    cleared = await env.admin("DELETE", "/faults")
    assert cleared["persistent_40001"] is False
    assert (await env.send(token))["errcode"] == 0


async def test_openid_forced_errors(env: Env) -> None:
    token = await env.token()
    await env.admin(
        "POST",
        "/faults",
        json={
            "openid_errors": [
                {"openid": "o_alice", "errcode": 43004},
                {"openid": "o_bob", "errcode": -1, "count": 1},
            ]
        },
    )
    assert (await env.send(token))["errcode"] == 43004
    assert (await env.send(token))["errcode"] == 43004
    assert (await env.send(token, touser="o_bob"))["errcode"] == -1
    assert (await env.send(token, touser="o_bob"))["errcode"] == 0
    faults = await env.admin("GET", "/faults")
    assert set(faults["openid_errors"]) == {"o_alice"}
    await env.admin(
        "POST", "/faults", json={"openid_errors": [{"openid": "o_alice", "errcode": 0}]}
    )
    assert (await env.send(token))["errcode"] == 0


# --------------------------------------------------------------------------- inspection


async def test_messages_listing_and_pagination(env: Env) -> None:
    token = await env.token()
    msgids = []
    for index in range(5):
        touser = "o_alice" if index % 2 == 0 else "o_bob"
        msgids.append((await env.send(token, touser=touser))["msgid"])
    payload = {"touser": "o_alice", "template_id": REMINDER, "data": reminder_data()}
    await env.call(BIZSEND, token, payload)
    assert msgids == sorted(msgids)
    page = await env.messages(template_id=NOTICE, limit=2)
    assert page["total"] == 5 and page["count"] == 2 and page["has_more"] is True
    assert [m["msgid"] for m in page["items"]] == msgids[:2]
    page = await env.messages(template_id=NOTICE, limit=2, since_id=page["next_since_id"])
    assert [m["msgid"] for m in page["items"]] == msgids[2:4]
    page = await env.messages(template_id=NOTICE, limit=2, since_id=page["next_since_id"])
    assert [m["msgid"] for m in page["items"]] == msgids[4:] and page["has_more"] is False
    alice = await env.messages(openid="o_alice")
    assert alice["total"] == 4  # three template messages and one subscription message
    alice_template = await env.messages(openid="o_alice", kind="template", since_id=msgids[0])
    assert [m["msgid"] for m in alice_template["items"]] == [msgids[2], msgids[4]]
    assert (await env.messages(openid="o_nobody"))["total"] == 0
    assert (await env.client.get("/_sim/messages/1")).status_code == 404


async def test_stats_and_reset(env: Env) -> None:
    token = await env.token()
    await env.send(token)
    await env.send(token, touser="o_nobody")
    await env.send(token, touser="o_gone")
    stats = await env.stats()
    assert stats["sends_accepted"] == 1
    assert stats["rejected"] == {"40003": 1, "43004": 1}
    assert stats["rejected_total"] == 2
    assert stats["token_fetches"] == 1
    assert stats["messages_stored"] == 1
    assert stats["users"]["total"] == len(SEED_USERS)
    await env.advance(50)
    reset = await env.admin("POST", "/reset")
    assert reset["status"] == "reset"
    assert (await env.admin("GET", "/clock"))["offset"] == 0
    stats = await env.stats()
    assert stats["sends_accepted"] == 0 and stats["messages_stored"] == 0
    assert (await env.send(token))["errcode"] == 40014  # tokens are gone too
    health = await env.admin("GET", "/health")
    assert health["status"] == "ok" and health["appid"] == APPID
    tokens = await env.admin("GET", "/tokens")
    assert tokens == {"tokens": []}


# --------------------------------------------------------------------------- in-process app


async def test_in_process_with_asgi_transport() -> None:
    """Tests can skip the network: the app runs under httpx.ASGITransport, and pushes can go to
    an in-process receiver through ``callback_transport``."""
    receiver = Receiver()
    config = SimulatorConfig.model_validate(
        {
            "callback_url": "http://receiver/events",
            "users": [{"openid": "o_x"}],
            "templates": [{"template_id": "T", "keys": ["keyword1"]}],
        }
    )
    app = create_app(config, callback_transport=httpx.ASGITransport(app=receiver))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        token = (
            await client.get(
                "/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": DEFAULT_APPID,
                    "secret": DEFAULT_SECRET,
                },
            )
        ).json()["access_token"]
        body = {"touser": "o_x", "template_id": "T", "data": {"keyword1": {"value": "v"}}}
        sent = (await client.post(TEMPLATE_SEND, params={"access_token": token}, json=body)).json()
        assert sent["errcode"] == 0
        flushed = (await client.post("/_sim/callbacks/flush")).json()
        assert flushed["delivered"] == 1
        assert receiver.pushes[0].xml["MsgID"] == str(sent["msgid"])
        # The simulator object is reachable for direct manipulation.
        app.state.simulator.clock.advance(7200)
        expired = await client.post(TEMPLATE_SEND, params={"access_token": token}, json=body)
        assert expired.json()["errcode"] == 42001
        docs = await client.get("/_sim/openapi.json")
        assert TEMPLATE_SEND in docs.json()["paths"]
    await app.state.simulator.pusher.aclose()


# --------------------------------------------------------------------------- wechatpy


def _wechatpy() -> Any:
    try:
        import wechatpy

        return wechatpy
    except Exception as exc:  # wechatpy raises a bare Exception without a crypto backend
        pytest.skip(f"wechatpy unavailable: {exc}")


def make_wechatpy_client(base_url: str, secret: str = SECRET, auto_retry: bool = True) -> Any:
    """A stock WeChatClient whose HTTP session sends api.weixin.qq.com traffic to the simulator:
    the SDK's own code (URLs, token handling, error mapping) runs unchanged."""
    import requests
    from requests.adapters import HTTPAdapter

    wechatpy = _wechatpy()

    class ToSimulator(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace("https://api.weixin.qq.com", base_url, 1)
            return super().send(request, *args, **kwargs)

    client = wechatpy.WeChatClient(APPID, secret, auto_retry=auto_retry)
    session: requests.Session = client._http
    session.trust_env = False  # no proxy for the local simulator
    session.mount("https://api.weixin.qq.com/", ToSimulator())
    return client


async def test_wechatpy_sends_through_the_simulator(env: Env) -> None:
    client = make_wechatpy_client(env.base_url)
    result = await asyncio.to_thread(
        client.message.send_template,
        "o_alice",
        NOTICE,
        notice_data(),
        url="https://gonghui.example/n/1",
    )
    assert result["errcode"] == 0 and isinstance(result["msgid"], int)
    (message,) = (await env.messages(openid="o_alice"))["items"]
    assert message["msgid"] == result["msgid"] and message["data"] == notice_data()
    assert (await env.stats())["token_fetches"] == 1
    subscribe = await asyncio.to_thread(
        client.message.send_subscribe_message, "o_alice", REMINDER, reminder_data()
    )
    assert subscribe["errcode"] == 0


async def test_wechatpy_surfaces_errcodes(env: Env) -> None:
    from wechatpy.exceptions import APILimitedException, WeChatClientException

    client = make_wechatpy_client(env.base_url)
    with pytest.raises(WeChatClientException) as unknown:
        await asyncio.to_thread(client.message.send_template, "o_nobody", NOTICE, notice_data())
    assert unknown.value.errcode == 40003
    with pytest.raises(WeChatClientException) as invalid:
        await asyncio.to_thread(
            client.message.send_template, "o_alice", NOTICE, {"keyword1": {"value": "x"}}
        )
    assert invalid.value.errcode == 47003 and "data.keyword2" in invalid.value.errmsg
    await env.admin("POST", "/config", json={"daily_quota": 1})
    await asyncio.to_thread(client.message.send_template, "o_alice", NOTICE, notice_data())
    with pytest.raises(APILimitedException) as limited:
        await asyncio.to_thread(client.message.send_template, "o_alice", NOTICE, notice_data())
    assert limited.value.errcode == 45009
    bad_secret = make_wechatpy_client(env.base_url, secret="wrong")
    with pytest.raises(WeChatClientException) as credentials:
        await asyncio.to_thread(bad_secret.fetch_access_token)
    assert credentials.value.errcode == 40125


async def test_wechatpy_token_refresh_on_stale_token(env: Env) -> None:
    """wechatpy refetches on 40001/40014/42001 and replays: the simulator's superseded-token
    rule drives that path. (With persistent 40001 and auto_retry it would recurse forever, so
    that mode is checked with auto_retry off.)"""
    from wechatpy.exceptions import WeChatClientException

    client = make_wechatpy_client(env.base_url)
    await asyncio.to_thread(client.message.send_template, "o_alice", NOTICE, notice_data())
    await env.token()  # another process fetches: the SDK's token is superseded
    await env.advance(301)
    result = await asyncio.to_thread(client.message.send_template, "o_alice", NOTICE, notice_data())
    assert result["errcode"] == 0
    stats = await env.stats()
    assert stats["rejected"] == {"40001": 1} and stats["token_fetches"] == 3
    await env.admin("POST", "/faults", json={"persistent_40001": True})
    strict = make_wechatpy_client(env.base_url, auto_retry=False)
    with pytest.raises(WeChatClientException) as stale:
        await asyncio.to_thread(strict.message.send_template, "o_alice", NOTICE, notice_data())
    assert stale.value.errcode == 40001


# --------------------------------------------------------------------------- CLI


def test_cli_config_from_flags_and_file(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    path.write_text(
        orjson.dumps(
            {"appid": "wxfromfile", "daily_quota": 7, "templates": SEED_TEMPLATES}
        ).decode()
    )
    args = build_parser().parse_args(
        ["--config", str(path), "--secret", "s3", "--callback-url", "http://x/cb", "--port", "1"]
    )
    config = load_config(args)
    assert config.appid == "wxfromfile" and config.secret == "s3"
    assert config.daily_quota == 7 and config.callback_url == "http://x/cb"
    assert len(config.templates) == 2
    defaults = load_config(build_parser().parse_args([]))
    assert defaults.appid == DEFAULT_APPID and defaults.auto_create_users is False


async def test_cli_runs_the_server() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wechat_simulator",
        "--port",
        str(port),
        "--appid",
        APPID,
        "--secret",
        SECRET,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            health = None
            for _ in range(200):
                try:
                    health = await client.get("/_sim/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert health is not None, "the simulator did not start"
            assert health.json()["appid"] == APPID
            params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
            assert "access_token" in (await client.get("/cgi-bin/token", params=params)).json()
    finally:
        process.terminate()
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    assert b"/cgi-bin/token" not in stdout + stderr  # no per-request logging by default


# --------------------------------------------------------------------------- push client


@pytest.mark.parametrize(
    "style", ["content-length", "chunked", "read-to-close", "silently-closes-idle"]
)
async def test_raw_push_client_response_framing(style: str) -> None:
    """The hand-written push client copes with each way a receiver may frame its answer, and
    with a receiver that drops idle keep-alive connections without saying so."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            received.append(await reader.readexactly(length))
            if style == "chunked":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"7\r\nsuccess\r\n0\r\n\r\n"
                )
            elif style == "read-to-close":
                writer.write(b"HTTP/1.0 200 OK\r\n\r\nsuccess")
                await writer.drain()
                writer.close()
                return
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsuccess")
            await writer.drain()
            if style == "silently-closes-idle":
                writer.close()
                return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    poster = RawHttpPoster()
    try:
        for index in range(3):
            status = await poster.post(
                f"http://127.0.0.1:{port}/cb?x=1",
                f"<xml>{index}</xml>".encode(),
                params={"signature": "s"},
                content_type="text/xml",
                time_limit=5,
            )
            assert status == 200
    finally:
        poster.close()
        server.close()
    assert received == [b"<xml>0</xml>", b"<xml>1</xml>", b"<xml>2</xml>"]
