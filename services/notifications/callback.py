"""What WeChat pushes to the account's server URL: signed XML events, read here.

WeChat signs each push with the server configuration's Token (``signature`` = sha1 of the sorted
token, timestamp and nonce) so a forged delivery report or unsubscribe can be refused. Bodies are
small; anything with a DTD is refused before parsing, so no entity tricks reach the parser.
"""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET
from dataclasses import dataclass

MAX_BODY = 64 * 1024


class BadPush(ValueError):
    """Not an event push this service can read."""


@dataclass(frozen=True)
class Push:
    event: str  # subscribe | unsubscribe | TEMPLATESENDJOBFINISH | others, ignored
    openid: str
    create_time: int
    msgid: int | None = None
    status: str | None = None


def signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()


def signed(token: str, sig: str | None, timestamp: str | None, nonce: str | None) -> bool:
    if not (sig and timestamp and nonce):
        return False
    return hmac.compare_digest(signature(token, timestamp, nonce), sig)


def parse_push(body: bytes) -> Push:
    if len(body) > MAX_BODY:
        raise BadPush("body too large")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise BadPush("DTDs are not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise BadPush(f"not XML: {e}") from None

    def text(tag: str) -> str | None:
        node = root.find(tag)
        return None if node is None or node.text is None else node.text.strip()

    openid, event = text("FromUserName"), text("Event")
    if root.tag != "xml" or not openid or text("MsgType") != "event" or not event:
        raise BadPush("not an event push")
    msgid = text("MsgID")
    try:
        return Push(
            event=event,
            openid=openid,
            create_time=int(text("CreateTime") or 0),
            msgid=int(msgid) if msgid else None,
            status=text("Status"),
        )
    except ValueError:
        raise BadPush("CreateTime and MsgID must be numbers") from None
