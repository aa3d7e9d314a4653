"""The API's contract without servers: what the edge refuses before any handler runs, what the
OpenAPI document promises (WeChat's callback included), the request bodies, the error codes of
broadcasts and pushes, and openids masked in every answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.notifications.broadcast import broadcast_rule
from services.notifications.callback import BadPush, parse_push, signature, signed
from services.notifications.commands import BindWeChat, ChoosePreferences, StartBroadcast
from services.notifications.domain import Binding, Preferences
from services.notifications.main import Settings, build
from services.notifications.rules import Category, Template, load_rules
from services.notifications.views import BindingView, DeliveryView, preferences_view
from shared.errors import DomainError
from shared.inputs import INT64_MAX

APP = build(Settings())
SCHEMA = APP.openapi()
NOTICE = Template("announcement", "gh-tpl-announcement", ("first", "remark"))
OPENID = "oK3Ws5Ns2dGxN0u3Xw5P9bHq2c1E"
DELIVERY_COLUMNS = ("broadcast_id", "reason", "errcode", "errmsg", "msgid", "report_status")
DELIVERY_COLUMNS += ("attempted_at", "sent_at", "reported_at", "next_attempt_at")


def parameter(path: str, method: str, name: str) -> dict[str, Any]:
    [found] = [p for p in SCHEMA["paths"][path][method]["parameters"] if p["name"] == name]
    return found


async def test_nul_in_a_query_is_refused_at_the_edge_naming_the_parameter() -> None:
    # No lifespan, no database: the edge answers before anything would need them.
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        answer = await client.get("/deliveries?member_id=a%00b")
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert (error["field"], error["code"]) == ("member_id", "control_character")


@pytest.mark.parametrize(
    ("path", "method", "name", "minimum"),
    [
        ("/deliveries/{delivery_id}", "get", "delivery_id", 1),
        ("/deliveries", "get", "after_id", 0),
        ("/bindings", "get", "offset", 0),
        ("/broadcasts", "get", "offset", 0),
    ],
)
def test_integers_in_paths_and_queries_fit_in_64_bits(
    path: str, method: str, name: str, minimum: int
) -> None:
    schema = parameter(path, method, name)["schema"]
    assert (schema["minimum"], schema["maximum"]) == (minimum, INT64_MAX)


def test_the_callback_documents_every_answer_with_its_content_type_and_no_gonghui_signature() -> (
    None
):
    callback = SCHEMA["paths"]["/wechat/callback"]
    for method in ("get", "post"):
        operation = callback[method]
        assert "security" not in operation
        responses = operation["responses"]
        assert list(responses["200"]["content"]) == ["text/plain"]
        for status in ("400", "403", "422"):
            assert list(responses[status]["content"]) == ["application/problem+json"], status
        assert "bad_wechat_signature" in responses["403"]["description"]
    post = callback["post"]
    assert list(post["requestBody"]["content"]) == ["text/xml"]
    assert list(post["responses"]["413"]["content"]) == ["application/problem+json"]
    for code in ("dtd_refused", "not_xml", "not_an_event_push", "invalid_number"):
        assert code in post["responses"]["422"]["description"]


@pytest.mark.parametrize(
    "path", ["/members/{member_id}/binding", "/members/{member_id}/preferences"]
)
def test_binding_and_preferences_say_an_unknown_member_is_refused_and_when_to_retry(
    path: str,
) -> None:
    description = SCHEMA["paths"][path]["put"]["description"]
    assert "unknown_member" in description and "retry" in description


def test_every_collection_can_be_searched_and_paged() -> None:
    searches = {
        "/deliveries": {"member_id", "status", "event_type", "template_id", "created_since"},
        "/bindings": {"member_id", "openid", "reachable", "bound_since", "offset", "limit"},
        "/broadcasts": {"status", "template", "created_since", "offset", "limit"},
    }
    for path, wanted in searches.items():
        names = {p["name"] for p in SCHEMA["paths"][path]["get"]["parameters"]}
        assert wanted <= names, path


def test_a_signature_with_characters_hmac_cannot_compare_is_refused_not_an_error() -> None:
    assert signed("token", "签名", "1767225600", "4711") is False
    assert signed("token", signature("token", "1767225600", "4711"), "1767225600", "4711")


def push(extra: str = "", openid: str = OPENID) -> bytes:
    return (
        f"<xml><FromUserName>{openid}</FromUserName><CreateTime>1767225600</CreateTime>"
        f"<MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event>{extra}</xml>"
    ).encode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<!DOCTYPE x><xml/>", "dtd_refused"),
        (b"<xml>", "not_xml"),
        (b"<xml><MsgType>text</MsgType></xml>", "not_an_event_push"),
        (push(openid="o" * 129), "invalid_openid"),
        (push("<MsgID>twelve</MsgID>"), "invalid_number"),
        (push(f"<MsgID>{INT64_MAX + 1}</MsgID>"), "invalid_number"),
    ],
)
def test_a_push_this_service_cannot_read_is_refused_with_a_code(body: bytes, code: str) -> None:
    with pytest.raises(BadPush) as refused:
        parse_push(body)
    assert refused.value.code == code


def test_a_delivery_report_push_is_read() -> None:
    read = parse_push(push(f"<MsgID>{INT64_MAX}</MsgID><Status>success</Status>"))
    assert (read.openid, read.msgid, read.status) == (OPENID, INT64_MAX, "success")


@pytest.mark.parametrize(
    "body",
    [
        {"openid": "o\u0000x"},
        {"openid": "o-x", "member_id": "m-1"},
        {"openid": "o x"},
        {"openid": "o" * 129},
    ],
)
def test_a_binding_takes_one_plain_openid(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BindWeChat.model_validate(body)


def test_preferences_take_known_categories_only() -> None:
    assert ChoosePreferences.model_validate({"opted_out": ["announcements"]}).opted_out == [
        "announcements"
    ]
    with pytest.raises(ValidationError) as refused:
        ChoosePreferences.model_validate({"opted_out": ["x"]})
    assert refused.value.errors()[0]["type"] == "enum"


def test_a_broadcast_refuses_nul_in_its_texts_and_unknown_fields() -> None:
    good = {"data": {"first": "通知", "remark": "无"}}
    assert StartBroadcast.model_validate(good).template == "announcement"
    for bad in (
        {"data": {"first": "a\u0000"}},
        good | {"segment": {"union_id": "u\u0000"}},
        good | {"priority": 1},
    ):
        with pytest.raises(ValidationError):
            StartBroadcast.model_validate(bad)


@pytest.mark.parametrize(
    ("data", "url", "field", "code"),
    [
        ({"first": "x"}, None, "data", "missing_template_keys"),
        ({"first": "x", "remark": "y", "more": "z"}, None, "data", "unknown_template_keys"),
        ({"first": "{member_name", "remark": "y"}, None, "data.first", "invalid_pattern"),
        ({"first": "{card_number}", "remark": "y"}, None, "data.first", "unknown_placeholder"),
        ({"first": "x", "remark": "y"}, "https://x.cn/{openid}", "url", "unknown_placeholder"),
    ],
)
def test_a_broadcast_the_template_cannot_render_is_refused_naming_the_text(
    data: dict[str, str], url: str | None, field: str, code: str
) -> None:
    with pytest.raises(DomainError) as refused:
        broadcast_rule(NOTICE, data, url, mandatory=False)
    assert (refused.value.field, refused.value.code) == (field, code)


def test_answers_mask_the_openid() -> None:
    bound = datetime(2026, 3, 1, tzinfo=UTC)
    view = BindingView.model_validate(Binding("m-1", OPENID, None, bound))
    assert (view.openid, view.reachable, view.bound_at) == ("oK3W…2c1E", True, bound)
    row: dict[str, Any] = dict.fromkeys(DELIVERY_COLUMNS) | {
        "id": 7,
        "event_id": "e-1",
        "event_type": "gonghui.membership.member.joined",
        "rule": "member_joined_welcome",
        "category": "membership",
        "recipient": "m-1",
        "template_id": "gh-tpl-member-welcome",
        "client_msg_id": "gh-1",
        "status": "sent",
        "attempts": 1,
        "openid": OPENID,
        "created_at": bound,
    }
    assert DeliveryView.model_validate(row).openid == "oK3W…2c1E"


def test_preferences_name_the_mandatory_rules_still_sent() -> None:
    rules = load_rules(
        """
version: 1
templates:
  notice: {template_id: TPL, keys: [first]}
rules:
  - name: decided
    event: gonghui.mutual_aid.claim.approved
    category: mutual_aid
    mandatory: true
    template: notice
    data: {first: "{claim_id}"}
"""
    )
    view = preferences_view(Preferences("m-1", frozenset({"mutual_aid"})), rules)
    assert view.opted_out == ["mutual_aid"]
    assert view.receives == {
        Category.MEMBERSHIP: True,
        Category.MUTUAL_AID: False,
        Category.TRAINING: True,
        Category.ANNOUNCEMENTS: True,
    }
    assert view.always_sent == ["decided"]
