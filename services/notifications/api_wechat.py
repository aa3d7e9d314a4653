"""The official account's server URL: WeChat's callback protocol, not a department's API.

WeChat calls it, never a department, so it takes no Gonghui signature: WeChat signs each call
with the Token of the account's server configuration (``signature`` = sha1 of the sorted token,
``timestamp`` and ``nonce``, in the query). A GET carrying ``echostr`` is WeChat checking the URL
when it is configured; a POST carries an XML event push (subscribe, unsubscribe, a template
message's delivery report). Plaintext mode only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import PlainTextResponse

from services.notifications import handlers
from services.notifications.api import Uow, Wired, Wiring
from services.notifications.callback import MAX_BODY, MAX_OPENID, BadPush, parse_push, signed
from services.notifications.commands import REFUSED, CloseChannel, ReopenChannel
from services.notifications.delivery_reports import Report
from shared.errors import DomainError, Forbidden
from shared.http import PROBLEM
from shared.http import router as new_router
from shared.inputs import INT64_MAX

router = new_router()

# The delivery report of a message the member blocked: later sends to them would fail too.
USER_BLOCK = "failed:user block"
# What WeChat expects from a push's answer; anything else makes it push again.
RECEIVED = "success"

Signature = Annotated[
    str | None,
    Query(
        max_length=64,
        description="sha1 (hex) of the sorted Token, timestamp and nonce.",
        examples=["2b0a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"],
    ),
]
Timestamp = Annotated[
    str | None, Query(max_length=32, description="Unix seconds.", examples=["1767225600"])
]
Nonce = Annotated[str | None, Query(max_length=64, examples=["1429874523"])]


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _text(description: str, example: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"text/plain": {"schema": {"type": "string"}, "example": example}},
    }


NOT_SIGNED = _problem(
    "`bad_wechat_signature`: signature, timestamp or nonce is missing, or the signature was not"
    " made with the account's Token."
)
# WeChat's event push as it documents it: elements of an <xml> root, text in CDATA.
PUSH_SCHEMA = {
    "type": "object",
    "xml": {"name": "xml"},
    "required": ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event"],
    "properties": {
        "ToUserName": {"type": "string", "description": "The account's original id (gh_...)."},
        "FromUserName": {"type": "string", "maxLength": MAX_OPENID, "description": "The openid."},
        "CreateTime": {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
        "MsgType": {"type": "string", "enum": ["event"]},
        "Event": {
            "type": "string",
            "description": "subscribe, unsubscribe and TEMPLATESENDJOBFINISH are acted on; other"
            " events are acknowledged and ignored.",
            "examples": ["TEMPLATESENDJOBFINISH"],
        },
        "MsgID": {
            "type": "integer",
            "minimum": 0,
            "maximum": INT64_MAX,
            "description": "TEMPLATESENDJOBFINISH: the msgid of the template message reported.",
        },
        "Status": {
            "type": "string",
            "description": "TEMPLATESENDJOBFINISH: success, failed:user block or"
            " failed:system failed.",
        },
    },
}
XML_PUSH = """<xml>
  <ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>
  <FromUserName><![CDATA[oK3Ws5Ns2dGxN0u3Xw5P9bHq2c1E]]></FromUserName>
  <CreateTime>1767225600</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>
  <MsgID>200163836</MsgID>
  <Status><![CDATA[success]]></Status>
</xml>"""


def _check_signature(w: Wiring, sig: str | None, timestamp: str | None, nonce: str | None) -> None:
    if not signed(w.callback_token, sig, timestamp, nonce):
        raise Forbidden(
            "signature", "bad_wechat_signature", "the call is not signed with the account's Token"
        )


@router.get(
    "/wechat/callback",
    tags=["wechat"],
    response_class=PlainTextResponse,
    summary="WeChat's check of the server URL",
    responses={
        200: _text("The echostr, echoed: WeChat accepts the URL.", "7069592287"),
        403: NOT_SIGNED,
    },
)
async def verify_callback(
    w: Wired,
    signature: Signature = None,
    timestamp: Timestamp = None,
    nonce: Nonce = None,
    echostr: Annotated[
        str, Query(max_length=128, description="Echoed when the signature holds.")
    ] = "",
) -> str:
    """Called by WeChat when the account's server configuration is saved: the answer is
    `echostr` as plain text when the signature holds, else 403 problem+json
    `bad_wechat_signature`."""
    _check_signature(w, signature, timestamp, nonce)
    return echostr


@router.post(
    "/wechat/callback",
    tags=["wechat"],
    response_class=PlainTextResponse,
    summary="WeChat's event pushes",
    responses={
        200: _text("Received: WeChat does not push it again.", RECEIVED),
        403: NOT_SIGNED,
        413: _problem(f"`body_too_large`: more than {MAX_BODY} bytes."),
        422: _problem(
            "Not an event push this service reads: `dtd_refused`, `not_xml`,"
            " `not_an_event_push`, `invalid_openid`, `invalid_number`."
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/xml": {"schema": PUSH_SCHEMA, "example": XML_PUSH}},
        }
    },
)
async def callback(
    request: Request,
    w: Wired,
    uow: Uow,
    signature: Signature = None,
    timestamp: Timestamp = None,
    nonce: Nonce = None,
) -> str:
    """Called by WeChat with an XML event, answered `success` (text/plain) once it is recorded:
    `subscribe` opens a member's channel again, `unsubscribe` closes it (other services hear
    RecipientUnreachable once), `TEMPLATESENDJOBFINISH` records a message's delivery report (a
    `failed:user block` report closes the channel too). Other events are acknowledged and
    ignored. Idempotent: WeChat pushes again when unsure, and a repeated push changes nothing
    more. Refusals: 403 `bad_wechat_signature`; 413 above 64 KiB; 422 for a body that is not an
    event push (`body` names it, with the code)."""
    _check_signature(w, signature, timestamp, nonce)
    try:
        push = parse_push(await request.body())
    except BadPush as e:
        raise DomainError("body", e.code, str(e)) from None
    if push.event == "subscribe":
        await handlers.reopen_channel(ReopenChannel(openid=push.openid), uow)
    elif push.event == "unsubscribe":
        await handlers.close_channel(CloseChannel(openid=push.openid), uow)
    elif push.event == "TEMPLATESENDJOBFINISH" and push.msgid is not None:
        await w.reports.write(Report(push.msgid, push.openid, push.status or "unknown"))
        if push.status == USER_BLOCK:
            refused = CloseChannel(openid=push.openid, errcode=REFUSED, errmsg="user block")
            await handlers.close_channel(refused, uow)
    return RECEIVED
