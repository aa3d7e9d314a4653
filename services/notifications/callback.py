"""What WeChat pushes to the account's server URL: signed XML events, read here.

WeChat signs each push with the server configuration's Token (``signature`` = sha1 of the sorted
token, timestamp and nonce) so a forged delivery report or unsubscribe can be refused. Bodies are
small (the app refuses more than ``MAX_BODY`` bytes with 413 before reading); anything with a DTD
is refused before parsing, so no entity tricks reach the parser.
"""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from shared.inputs import INT64_MAX

MAX_BODY = 64 * 1024
# Openids are 28 characters; they are indexed, and Postgres caps an index entry's size.
MAX_OPENID = 128


class BadPush(ValueError):
    """Not an event push this service can read; ``code`` says which way (docs/errors)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


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
    # As bytes: compare_digest refuses str with non-ASCII characters, and anyone can send those.
    return hmac.compare_digest(signature(token, timestamp, nonce).encode(), sig.encode())


def parse_push(body: bytes) -> Push:
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise BadPush("dtd_refused", "DTDs are not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise BadPush("not_xml", f"not XML: {e}") from None

    def text(tag: str) -> str | None:
        node = root.find(tag)
        return None if node is None or node.text is None else node.text.strip()

    openid, event = text("FromUserName"), text("Event")
    if root.tag != "xml" or not openid or text("MsgType") != "event" or not event:
        raise BadPush("not_an_event_push", "not an event push")
    if len(openid) > MAX_OPENID:
        raise BadPush("invalid_openid", f"FromUserName is longer than {MAX_OPENID} characters")
    msgid = text("MsgID")
    try:
        push = Push(
            event=event,
            openid=openid,
            create_time=int(text("CreateTime") or 0),
            msgid=int(msgid) if msgid else None,
            status=text("Status"),
        )
    except ValueError:
        raise BadPush("invalid_number", "CreateTime and MsgID must be numbers") from None
    if push.msgid is not None and not 0 <= push.msgid <= INT64_MAX:  # stored as bigint
        raise BadPush("invalid_number", "MsgID must be a number within 64 bits")
    return push
