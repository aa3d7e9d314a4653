"""WeChat's own calls as the simulated account answers them: the two token calls, template and
subscription sends, and the quota query.

Every method returns the JSON body WeChat would answer with (errors included: WeChat uses HTTP
200 for them) and counts the outcome in the stats. The checks run in WeChat's order, so a call
with several faults gets the errcode WeChat would give first.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from . import errors as e
from .config import (
    QUOTA_GET_PATH,
    STABLE_TOKEN_PATH,
    SUBSCRIBE_SEND_PATH,
    TEMPLATE_SEND_PATH,
    TOKEN_PATH,
)
from .errors import WeChatError
from .events import TEMPLATE_SEND_JOB_FINISH, CallbackEvent
from .followers import User
from .messages import (
    STATUS_SUCCESS,
    STATUS_SYSTEM_FAILED,
    STATUS_USER_BLOCK,
    MessageKind,
    MessageRecord,
)
from .quotas import QuotaWindow
from .state import SimulatorState
from .templates import Template
from .tokens import check_credentials

Json = dict[str, Any]
OK: Json = {"errcode": 0, "errmsg": "ok"}


def json_body(body: bytes) -> Json:
    """The POSTed JSON object; 44002 when empty, 47001 when not a JSON object."""
    if not body.strip():
        raise WeChatError(e.EMPTY_POST_DATA)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WeChatError(e.DATA_FORMAT_ERROR) from None
    if not isinstance(payload, dict):
        raise WeChatError(e.DATA_FORMAT_ERROR)
    return payload


def _template_consent(user: User) -> None:
    if user.state == "unfollowed":
        raise WeChatError(e.REQUIRE_SUBSCRIBE)


def _subscription_consent(user: User) -> None:
    # Subscription messages need the user's consent, not a follow; a user who blocked the
    # account has withdrawn it.
    if user.subscription == "refused" or user.state == "blocked":
        raise WeChatError(e.USER_REFUSED)


@dataclass(frozen=True, slots=True)
class _Send:
    """A send that passed every check, before it is counted."""

    now: float
    payload: Json
    window: QuotaWindow
    user: User
    template: Template


class WeChatCalls:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self._rid_seq = 0
        self._rid_salt = secrets.token_hex(4)

    def token(self, grant_type: str | None, appid: str | None, secret: str | None) -> Json:
        state = self.state
        try:
            state.faults.system_error(TOKEN_PATH)
            check_credentials(appid, secret, grant_type, state.config)
            record = state.tokens.fetch_access(state.clock.now(), state.config)
            state.stats.token_fetches += 1
            return {"access_token": record.token, "expires_in": state.config.token_ttl_seconds}
        except WeChatError as exc:
            return self.error(TOKEN_PATH, exc)

    def stable_token(self, body: bytes) -> Json:
        state = self.state
        try:
            state.faults.system_error(STABLE_TOKEN_PATH)
            payload = json_body(body)
            config = state.config
            check_credentials(
                payload.get("appid"), payload.get("secret"), payload.get("grant_type"), config
            )
            now = state.clock.now()
            force = payload.get("force_refresh") is True
            record = state.tokens.fetch_stable(now, config, force=force)
            if force:
                state.stats.stable_token_force_refreshes += 1
            state.stats.stable_token_fetches += 1
            # Whole seconds left, rounded: a call a few ms after the clock moved still says 7100.
            return {"access_token": record.token, "expires_in": round(record.expires_at - now)}
        except WeChatError as exc:
            return self.error(STABLE_TOKEN_PATH, exc)

    def template_send(
        self, access_token: str | None, body: bytes, traceparent: str | None = None
    ) -> Json:
        state = self.state
        try:
            send = self._checked(
                TEMPLATE_SEND_PATH, "template", access_token, body, _template_consent
            )
            client_msg_id = send.payload.get("client_msg_id")
            openid = send.user.openid
            if isinstance(client_msg_id, str) and client_msg_id:
                first = state.client_msg_ids.sent(openid, client_msg_id, send.now)
                if first is not None:
                    # Same openid + client_msg_id: WeChat sends once and answers the first msgid.
                    state.stats.duplicates_suppressed += 1
                    return {**OK, "msgid": first}
            else:
                client_msg_id = None
            status = self._delivery_status(send.user)
            msgid = self._accept(send, "template", body, client_msg_id, traceparent, status)
            if client_msg_id is not None:
                expires = send.now + state.config.client_msg_id_ttl_seconds
                state.client_msg_ids.remember(openid, client_msg_id, msgid, expires)
            state.stats.template_sends_accepted += 1
            state.stats.delivery_status[status] += 1
            event = CallbackEvent(TEMPLATE_SEND_JOB_FINISH, openid, int(send.now), msgid, status)
            state.emit(event)
            return {**OK, "msgid": msgid}
        except WeChatError as exc:
            return self.error(TEMPLATE_SEND_PATH, exc)

    def subscribe_send(
        self, access_token: str | None, body: bytes, traceparent: str | None = None
    ) -> Json:
        try:
            send = self._checked(
                SUBSCRIBE_SEND_PATH, "subscribe", access_token, body, _subscription_consent
            )
            self._accept(send, "subscribe", body, None, traceparent, STATUS_SUCCESS)
            self.state.stats.subscribe_sends_accepted += 1
            return dict(OK)
        except WeChatError as exc:
            return self.error(SUBSCRIBE_SEND_PATH, exc)

    def quota_get(self, access_token: str | None, body: bytes) -> Json:
        state = self.state
        try:
            state.faults.system_error(QUOTA_GET_PATH)
            self._authenticate(access_token)
            cgi_path = json_body(body).get("cgi_path")
            return state.quotas.quota_get(cgi_path, state.clock.now(), state.config)
        except WeChatError as exc:
            return self.error(QUOTA_GET_PATH, exc)

    def error(self, path: str, exc: WeChatError) -> Json:
        state = self.state
        state.stats.reject(path, exc.errcode)
        errmsg = exc.errmsg
        if state.config.errmsg_rid:
            self._rid_seq += 1
            now = int(state.clock.now())
            errmsg = f"{errmsg} rid: {now:08x}-{self._rid_seq:08x}-{self._rid_salt}"
        return {"errcode": exc.errcode, "errmsg": errmsg}

    def _authenticate(self, access_token: str | None) -> None:
        if not access_token:
            raise WeChatError(e.ACCESS_TOKEN_MISSING)
        if self.state.faults.persistent_40001:
            raise WeChatError(e.INVALID_CREDENTIAL)
        self.state.tokens.check(access_token, self.state.clock.now())

    def _checked(
        self,
        path: str,
        kind: MessageKind,
        access_token: str | None,
        body: bytes,
        consent: Callable[[User], None],
    ) -> _Send:
        state = self.state
        state.faults.system_error(path)
        self._authenticate(access_token)
        payload = json_body(body)
        now = state.clock.now()
        window = state.quotas.check(path, now, state.config)
        user = state.followers.recipient(
            payload.get("touser"), auto_create=state.config.auto_create_users
        )
        state.faults.forced_error(user.openid)
        template = state.templates.get(payload.get("template_id"), kind)
        consent(user)
        template.validate(payload.get("data"))
        return _Send(now, payload, window, user, template)

    def _accept(
        self,
        send: _Send,
        kind: MessageKind,
        body: bytes,
        client_msg_id: str | None,
        traceparent: str | None,
        status: str,
    ) -> int:
        """Count the send against its quota and log it; its msgid."""
        state = self.state
        send.window.take()
        state.stats.sent_at(send.now)
        msgid = state.messages.next_msgid()
        record = MessageRecord(
            msgid,
            kind,
            send.user.openid,
            send.template.template_id,
            body,
            client_msg_id,
            traceparent,
            status,
            send.now,
        )
        state.messages.add(record, state.config.max_messages)
        return msgid

    def _delivery_status(self, user: User) -> str:
        # WeChat accepts a send to a user who blocked the account and reports the failure later.
        if user.state == "blocked":
            return STATUS_USER_BLOCK
        if self.state.faults.fails_delivery(user.openid):
            return STATUS_SYSTEM_FAILED
        return STATUS_SUCCESS
