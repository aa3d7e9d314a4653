"""Messages the account sent: the log ``/_sim/messages`` inspects, their msgids and delivery
statuses, and WeChat's ``client_msg_id`` dedup of template sends. Pure, no I/O."""

from __future__ import annotations

import bisect
from collections import deque
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


DedupKey = tuple[str, str]  # (openid, client_msg_id)


class ClientMsgIds:
    """Same openid + client_msg_id within the window: WeChat sends once and answers the first
    msgid again. Entries past the window are dropped as new sends come in."""

    def __init__(self) -> None:
        self._msgids: dict[DedupKey, tuple[int, float]] = {}
        self._expiry: deque[tuple[float, DedupKey]] = deque()

    def __len__(self) -> int:
        return len(self._msgids)

    def sent(self, key: DedupKey, now: float) -> int | None:
        """The msgid of the send ``key`` already made within the window, if any."""
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, old = expiry.popleft()
            entry = self._msgids.get(old)
            if entry is not None and entry[1] <= now:
                del self._msgids[old]
        entry = self._msgids.get(key)
        if entry is not None and entry[1] > now:
            return entry[0]
        return None

    def remember(self, key: DedupKey, msgid: int, expires: float) -> None:
        self._msgids[key] = (msgid, expires)
        self._expiry.append((expires, key))


class MessageLog:
    """Sent messages in msgid order, also by openid; past ``max_messages`` the oldest tenth is
    dropped (the stats keep exact counts)."""

    def __init__(self) -> None:
        self._messages: list[MessageRecord] = []
        self._by_openid: dict[str, list[MessageRecord]] = {}
        self._next_msgid = FIRST_MSGID

    def next_msgid(self) -> int:
        msgid = self._next_msgid
        self._next_msgid += 1
        return msgid

    def add(self, record: MessageRecord, max_messages: int) -> None:
        messages = self._messages
        messages.append(record)
        by_openid = self._by_openid.get(record.openid)
        if by_openid is None:
            self._by_openid[record.openid] = [record]
        else:
            by_openid.append(record)
        if len(messages) > max_messages:
            drop = max(1, len(messages) // 10)
            del messages[:drop]
            self._by_openid = {}
            for kept in messages:
                self._by_openid.setdefault(kept.openid, []).append(kept)

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
        source = self._by_openid.get(openid, []) if openid is not None else self._messages

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
