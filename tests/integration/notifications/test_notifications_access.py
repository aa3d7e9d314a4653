"""Who may call: the federation's systems with signed calls and the scope each route names;
WeChat, on the account's callback URL, with pushes signed with the account's token (bodies that
are not WeChat's are refused before they reach the parser)."""

from __future__ import annotations

import pytest

from services.notifications.callback import signature
from tests.integration.notifications.harness import CALLBACK_TOKEN, Ids, WeChat, notifications
from tests.support.auth import issue_credential, signed_client
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


def signed(timestamp: str = "1767225600", nonce: str = "4711") -> dict[str, str]:
    return {
        "signature": signature(CALLBACK_TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
    }


def unsubscribe(openid: str) -> bytes:
    return (
        "<xml><ToUserName><![CDATA[gh_x]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>1767225600</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event></xml>"
    ).encode()


async def test_only_pushes_signed_with_the_accounts_token_are_accepted(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        check = await svc.raw.get("/wechat/callback", params=signed() | {"echostr": "e-123"})
        assert (check.status_code, check.text) == (200, "e-123")

        forged = signed() | {"signature": "0" * 40}
        for params in (forged, {}):
            answer = await svc.raw.post(
                "/wechat/callback", params=params, content=unsubscribe(openid)
            )
            assert answer.status_code == 403, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["errors"][0]["code"] == "bad_wechat_signature"
        # A signature anyone could send, with characters hmac cannot compare as text.
        odd = await svc.raw.get("/wechat/callback", params=signed() | {"signature": "签名"})
        assert odd.status_code == 403, odd.text
        assert (await svc.api.get(f"/members/{member}/binding")).json()["reachable"] is True

        bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>'
        huge_msgid = unsubscribe(openid).replace(b"</xml>", b"<MsgID>%d</MsgID></xml>" % 2**64)
        cases = {
            b"not xml": "not_xml",
            bomb: "dtd_refused",
            b"<xml><MsgType>text</MsgType></xml>": "not_an_event_push",
            unsubscribe("o" * 129): "invalid_openid",
            huge_msgid: "invalid_number",
        }
        for body, code in cases.items():
            answer = await svc.raw.post("/wechat/callback", params=signed(), content=body)
            assert answer.status_code == 422, answer.text
            [error] = answer.json()["errors"]
            assert (error["field"], error["code"]) == ("body", code)
        too_large = await svc.raw.post(
            "/wechat/callback", params=signed(), content=b"<xml>" + b" " * 65536 + b"</xml>"
        )
        assert too_large.status_code == 413, too_large.text

        answer = await svc.raw.post(
            "/wechat/callback", params=signed(), content=unsubscribe(openid)
        )
        assert (answer.status_code, answer.text) == (200, "success")
        assert (await svc.api.get(f"/members/{member}/binding")).json()["reachable"] is False


async def test_the_api_takes_signed_calls_with_the_scope_each_route_names(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member = ids.next("m")
    async with notifications(db, servers, namespace, wechat) as svc:
        unsigned = await svc.raw.put(f"/members/{member}/binding", json={"openid": "o-x"})
        assert unsigned.status_code == 401
        app_id, secret = await issue_credential(
            db.dsn("notifications"), "notifications", scopes=["notifications:read"]
        )
        async with await signed_client(svc.app, app_id, secret) as reader:
            assert (await reader.get("/deliveries")).status_code == 200
            refused = await reader.put(f"/members/{member}/binding", json={"openid": "o-x"})
            assert refused.status_code == 403
            assert refused.json()["errors"][0]["field"] == "scope"
            broadcast = await reader.post("/broadcasts", json={"data": {}})
            assert broadcast.status_code == 403
        assert (await svc.api.get(f"/members/{member}/binding")).status_code == 404
        spec = (await svc.raw.get("/openapi.json")).json()
        put = spec["paths"]["/members/{member_id}/binding"]["put"]
        assert put["security"] == [{"GonghuiSignature": ["bindings:write"]}]
        assert "security" not in spec["paths"]["/wechat/callback"]["post"]
