"""Messages the account sent: the log ``/_sim/messages`` inspects, their msgids and delivery
statuses, and WeChat's ``client_msg_id`` dedup of template sends. Pure, no I/O."""

from __future__ import annotations

import bisect
import hashlib
from array import array
from dataclasses import dataclass
from typing import Any, Literal

import orjson

STATUS_SUCCESS = "success"
STATUS_USER_BLOCK = "failed:user block"
STATUS_SYSTEM_FAILED = "failed: system failed"
FIRST_MSGID = 1_000_000_001

MessageKind = Literal["template", "subscribe"]
Json = dict[str, Any]


@dataclass(slots=True)
class MessageRecord:
    msgid: int
    kind: MessageKind
    openid: str
    template_id: str
    # The request body as received, decoded only for inspection: parsed dicts for 300,000
    # messages would cost several times the memory of the raw JSON.
    body: bytes
    client_msg_id: str | None
    traceparent: str | None
    status: str
    created_at: float

    def to_json(self) -> Json:
        payload: Json = orjson.loads(self.body)
        return {
            "msgid": self.msgid,
            "kind": self.kind,
            "openid": self.openid,
            "template_id": self.template_id,
            "data": payload.get("data"),
            "url": payload.get("url"),
            "miniprogram": payload.get("miniprogram"),
            "page": payload.get("page"),
            "client_msg_id": self.client_msg_id,
            "traceparent": self.traceparent,
            "status": self.status,
            "delivered": self.status == STATUS_SUCCESS,
            "created_at": self.created_at,
        }


class ClientMsgIds:
    """Same openid + client_msg_id within the window: WeChat sends once and answers the first
    msgid again. Entries past the window are dropped as new sends come in.

    A broadcast to 300,000 members keeps 300,000 entries for the whole window, so each is held
    in about 100 bytes: a 16-byte digest of the pair in a set, and the same digest, its msgid and
    its expiry in flat lists alongside, in the order sent (a tuple per entry and a dict of them
    cost 350). A repeated pair, which is rare, finds its msgid by a scan of the digests.
    """

    def __init__(self) -> None:
        self._live: set[bytes] = set()
        # In msgid order from ``_head`` on (what is before it is past its window); a digest is
        # None where the pair was sent again after its entry's own window.
        self._keys: list[bytes | None] = []
        self._msgids = array("q")
        self._expiry = array("d")
        self._head = 0

    def __len__(self) -> int:
        return len(self._live)

    def sent(self, openid: str, client_msg_id: str, now: float) -> int | None:
        """The msgid of the send this pair already made within the window, if any."""
        self._prune(now)
        key = _dedup_key(openid, client_msg_id)
        if key not in self._live:
            return None
        at = self._keys.index(key, self._head)
        if self._expiry[at] > now:
            return self._msgids[at]
        # Its own window is over though an earlier entry's is not (the window was shortened
        # meanwhile): the pair counts as new, and this entry no longer stands for it.
        self._keys[at] = None
        self._live.discard(key)
        return None

    def remember(self, openid: str, client_msg_id: str, msgid: int, expires: float) -> None:
        key = _dedup_key(openid, client_msg_id)
        self._live.add(key)
        self._keys.append(key)
        self._msgids.append(msgid)
        self._expiry.append(expires)

    def _prune(self, now: float) -> None:
        head, keys, expiry = self._head, self._keys, self._expiry
        while head < len(keys) and expiry[head] <= now:
            key = keys[head]
            if key is not None:
                self._live.discard(key)
            head += 1
        if head > 1024 and head * 2 > len(keys):  # compact now and then, not on every send
            del keys[:head], self._msgids[:head], expiry[:head]
            head = 0
        self._head = head


def _dedup_key(openid: str, client_msg_id: str) -> bytes:
    pair = f"{openid}\x1f{client_msg_id}".encode()
    return hashlib.blake2b(pair, digest_size=16).digest()


class MessageLog:
    """The most recent sent messages, whole, in msgid order; past ``max_messages`` the oldest
    tenth is dropped (the stats keep exact counts, and the first and last send's time)."""

    def __init__(self) -> None:
        self._messages: list[MessageRecord] = []
        self._next_msgid = FIRST_MSGID

    def next_msgid(self) -> int:
        msgid = self._next_msgid
        self._next_msgid += 1
        return msgid

    def add(self, record: MessageRecord, max_messages: int) -> None:
        messages = self._messages
        messages.append(record)
        if len(messages) > max_messages:
            del messages[: max(1, len(messages) // 10)]

    def __len__(self) -> int:
        return len(self._messages)

    def get(self, msgid: int) -> MessageRecord | None:
        messages = self._messages
        index = bisect.bisect_left(messages, msgid, key=lambda m: m.msgid)
        if index < len(messages) and messages[index].msgid == msgid:
            return messages[index]
        return None

    def query(
        self,
        *,
        openid: str | None = None,
        template_id: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        trace_id: str | None = None,
        since_id: int | None = None,
        limit: int = 100,
    ) -> Json:
        """Messages in msgid order, filtered; ``total`` counts all that match the filters
        (ignoring since_id), ``next_since_id`` continues the listing."""
        source = self._messages
        if openid is not None:  # a scan: the log is bounded, and an index per openid cost more
            source = [m for m in source if m.openid == openid]

        def matches(m: MessageRecord) -> bool:
            return (
                (template_id is None or m.template_id == template_id)
                and (kind is None or m.kind == kind)
                and (status is None or m.status == status)
                and (
                    trace_id is None
                    or (m.traceparent is not None and m.traceparent[3:35] == trace_id)
                )
            )

        filtered = template_id is not None or kind or status or trace_id
        total = sum(1 for m in source if matches(m)) if filtered else len(source)
        start = 0
        if since_id is not None:
            start = bisect.bisect_right(source, since_id, key=lambda m: m.msgid)
        items: list[MessageRecord] = []
        has_more = False
        for m in source[start:] if start else source:
            if not filtered or matches(m):
                if len(items) >= limit:
                    has_more = True
                    break
                items.append(m)
        return {
            "total": total,
            "count": len(items),
            "items": [m.to_json() for m in items],
            "has_more": has_more,
            "next_since_id": items[-1].msgid if items else since_id,
        }
