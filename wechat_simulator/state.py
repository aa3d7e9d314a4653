"""The simulated Official Account: tokens, users, templates, quotas, faults and delivered messages.

Pure state and rules: no I/O, no asyncio. Time comes from an injected clock, and the events WeChat
would push to the account's server (delivery reports, subscribe/unsubscribe) go to an injected sink,
so the same object serves the HTTP app and plain unit tests.

Every ``api_*`` method returns the JSON body WeChat would answer with (errors included: WeChat uses
HTTP 200 for them) and counts the outcome in the stats.
"""

from __future__ import annotations

import bisect
import secrets
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from . import errors as e
from .clock import SimClock
from .config import (
    QUOTA_GET_PATH,
    QUOTA_PATHS,
    STABLE_TOKEN_PATH,
    SUBSCRIBE_SEND_PATH,
    TEMPLATE_SEND_PATH,
    TOKEN_PATH,
    SimulatorConfig,
    TemplateSpec,
    UserSpec,
)
from .errors import WeChatError
from .templates import Template

TEMPLATE_SEND_JOB_FINISH = "TEMPLATESENDJOBFINISH"
STATUS_SUCCESS = "success"
STATUS_USER_BLOCK = "failed:user block"
STATUS_SYSTEM_FAILED = "failed: system failed"

FollowState = Literal["following", "unfollowed", "blocked"]

# WeChat's daily quotas roll over at midnight Beijing time (UTC+8, no daylight saving).
_BEIJING_OFFSET = 8 * 3600
_DAY = 86_400

Json = dict[str, Any]
EventSink = Callable[["CallbackEvent"], None]


def day_index(now: float) -> int:
    return int((now + _BEIJING_OFFSET) // _DAY)


def minute_index(now: float) -> int:
    return int(now // 60)


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """An event WeChat pushes to the account's server URL as XML."""

    event: str  # TEMPLATESENDJOBFINISH | subscribe | unsubscribe
    openid: str
    create_time: int
    msgid: int | None = None
    status: str | None = None


@dataclass(slots=True)
class TokenRecord:
    token: str
    kind: Literal["access", "stable"]
    issued_at: float
    # Natural end of life: after it, 42001.
    expires_at: float
    # Earlier end when superseded (end of the 5-minute overlap) or force-refreshed: after it, 40001.
    invalid_after: float

    def to_json(self, now: float) -> Json:
        return {
            "access_token": self.token,
            "kind": self.kind,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "invalid_after": self.invalid_after,
            "valid": now < self.invalid_after and now < self.expires_at,
        }


@dataclass(slots=True)
class User:
    openid: str
    state: FollowState
    subscription: Literal["accepted", "refused"]

    def to_json(self) -> Json:
        return {"openid": self.openid, "state": self.state, "subscription": self.subscription}


@dataclass(slots=True)
class MessageRecord:
    msgid: int
    kind: Literal["template", "subscribe"]
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


@dataclass(slots=True)
class QuotaWindow:
    day: int = -1
    used: int = 0
    minute: int = -1
    minute_used: int = 0

    def roll(self, now: float) -> None:
        day = day_index(now)
        if day != self.day:
            self.day, self.used = day, 0
        minute = minute_index(now)
        if minute != self.minute:
            self.minute, self.minute_used = minute, 0


@dataclass(slots=True)
class ForcedError:
    errcode: int
    errmsg: str | None = None
    # None: every send to the openid fails; else this many more times.
    remaining: int | None = None

    def to_json(self) -> Json:
        return {"errcode": self.errcode, "errmsg": self.errmsg, "remaining": self.remaining}


DEFAULT_FAULT_PATHS = frozenset(QUOTA_PATHS)


@dataclass(slots=True)
class Faults:
    latency_ms: float = 0.0
    # The next N calls to ``system_error_paths`` answer -1 system error.
    system_errors: int = 0
    system_error_paths: frozenset[str] = DEFAULT_FAULT_PATHS
    # Every call that carries an access_token answers 40001: a client must not loop on it.
    persistent_40001: bool = False
    openid_errors: dict[str, ForcedError] = field(default_factory=dict)
    # The next N accepted template sends report "failed: system failed" instead of success.
    delivery_failures: int = 0
    # Template sends to these openids always report "failed: system failed".
    delivery_fail_openids: set[str] = field(default_factory=set)

    def to_json(self) -> Json:
        return {
            "latency_ms": self.latency_ms,
            "system_errors": self.system_errors,
            "system_error_paths": sorted(self.system_error_paths),
            "persistent_40001": self.persistent_40001,
            "openid_errors": {k: v.to_json() for k, v in self.openid_errors.items()},
            "delivery_failures": self.delivery_failures,
            "delivery_fail_openids": sorted(self.delivery_fail_openids),
        }


@dataclass(slots=True)
class Stats:
    token_fetches: int = 0
    stable_token_fetches: int = 0
    stable_token_force_refreshes: int = 0
    template_sends_accepted: int = 0
    subscribe_sends_accepted: int = 0
    duplicates_suppressed: int = 0
    rejected: Counter[int] = field(default_factory=Counter)
    rejected_by_path: dict[str, Counter[int]] = field(default_factory=dict)
    delivery_status: Counter[str] = field(default_factory=Counter)
    events_emitted: int = 0

    def reject(self, path: str, errcode: int) -> None:
        self.rejected[errcode] += 1
        by_path = self.rejected_by_path.get(path)
        if by_path is None:
            by_path = self.rejected_by_path[path] = Counter()
        by_path[errcode] += 1

    def to_json(self) -> Json:
        return {
            "sends_accepted": self.template_sends_accepted + self.subscribe_sends_accepted,
            "template_sends_accepted": self.template_sends_accepted,
            "subscribe_sends_accepted": self.subscribe_sends_accepted,
            "duplicates_suppressed": self.duplicates_suppressed,
            "rejected_total": sum(self.rejected.values()),
            "rejected": {str(k): v for k, v in sorted(self.rejected.items())},
            "rejected_by_path": {
                path: {str(k): v for k, v in sorted(codes.items())}
                for path, codes in sorted(self.rejected_by_path.items())
            },
            "token_fetches": self.token_fetches,
            "stable_token_fetches": self.stable_token_fetches,
            "stable_token_force_refreshes": self.stable_token_force_refreshes,
            "delivery_status": dict(self.delivery_status),
            "events_emitted": self.events_emitted,
        }


def _ignore_event(_event: CallbackEvent) -> None:
    return None


class SimulatorState:
    def __init__(
        self,
        config: SimulatorConfig | None = None,
        clock: SimClock | None = None,
        sink: EventSink | None = None,
    ) -> None:
        self.clock = clock or SimClock()
        self.sink: EventSink = sink or _ignore_event
        self._rid_seq = 0
        self._rid_salt = secrets.token_hex(4)
        self.reset(config or SimulatorConfig())

    # ------------------------------------------------------------------ lifecycle / admin

    def reset(self, config: SimulatorConfig) -> None:
        """Back to a fresh account with ``config``: no tokens, messages, quotas, faults or stats."""
        self.config = config
        self.faults = Faults()
        self.stats = Stats()
        self._tokens: dict[str, TokenRecord] = {}
        self._current_access: TokenRecord | None = None
        self._current_stable: TokenRecord | None = None
        self._token_day = -1
        self._token_day_count = 0
        self._force_day = -1
        self._force_day_count = 0
        self._last_force: float | None = None
        self._quota: dict[str, QuotaWindow] = {path: QuotaWindow() for path in QUOTA_PATHS}
        self._users: dict[str, User] = {}
        self._templates: dict[str, Template] = {}
        self._messages: list[MessageRecord] = []
        self._by_openid: dict[str, list[MessageRecord]] = {}
        self._next_msgid = 1_000_000_001
        self._dedup: dict[tuple[str, str], tuple[int, float]] = {}
        self._dedup_expiry: deque[tuple[float, tuple[str, str]]] = deque()
        for user in config.users:
            self.put_user(user, notify=False)
        for spec in config.templates:
            self.put_template(spec)

    def update_config(self, patch: dict[str, Any]) -> SimulatorConfig:
        """Apply a partial settings update; a new appid or secret revokes every token."""
        if "users" in patch or "templates" in patch:
            raise ValueError("users and templates have their own endpoints")
        merged = {**self.config.model_dump(), **patch}
        new = SimulatorConfig.model_validate(merged)
        if new.appid != self.config.appid or new.secret != self.config.secret:
            self._revoke_all_tokens()
        self.config = new
        return new

    def _revoke_all_tokens(self) -> None:
        self._tokens.clear()
        self._current_access = None
        self._current_stable = None

    def put_user(self, spec: UserSpec, *, notify: bool = True) -> tuple[User, str | None]:
        """Create or update a user; returns it and the follow event pushed, if any."""
        state: FollowState = "following" if spec.state == "refused" else spec.state
        subscription = spec.subscription or ("refused" if spec.state == "refused" else "accepted")
        existing = self._users.get(spec.openid)
        previous = existing.state if existing is not None else None
        user = User(spec.openid, state, subscription)
        self._users[spec.openid] = user
        event = None
        if notify and self.config.notify_follow_events:
            event = self._follow_event(previous, state)
            if event is not None:
                self._emit(CallbackEvent(event, spec.openid, int(self.clock.now())))
        return user, event

    def set_user_state(
        self,
        openid: str,
        state: Literal["following", "unfollowed", "blocked", "refused"] | None = None,
        subscription: Literal["accepted", "refused"] | None = None,
        *,
        notify: bool = True,
    ) -> tuple[User, str | None]:
        user = self._users.get(openid)
        if user is None:
            raise KeyError(openid)
        new_state = state or user.state
        if subscription is None:
            subscription = "refused" if new_state == "refused" else user.subscription
        return self.put_user(
            UserSpec(openid=openid, state=new_state, subscription=subscription), notify=notify
        )

    @staticmethod
    def _follow_event(previous: FollowState | None, new: FollowState) -> str | None:
        # Blocking ("refuse messages") is silent in WeChat; only follow/unfollow are pushed.
        if new == "unfollowed" and previous in ("following", "blocked"):
            return "unsubscribe"
        if new == "following" and previous in (None, "unfollowed"):
            return "subscribe"
        return None

    def get_user(self, openid: str) -> User | None:
        return self._users.get(openid)

    def users(self) -> Iterable[User]:
        return self._users.values()

    def user_counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter(user.state for user in self._users.values())
        counts["subscription_refused"] = sum(
            1 for user in self._users.values() if user.subscription == "refused"
        )
        return {"total": len(self._users), **counts}

    def put_template(self, spec: TemplateSpec) -> Template:
        template = Template.from_spec(spec, self.config.template_value_max_len)
        self._templates[spec.template_id] = template
        return template

    def delete_template(self, template_id: str) -> bool:
        return self._templates.pop(template_id, None) is not None

    def templates(self) -> Iterable[Template]:
        return self._templates.values()

    def tokens_json(self) -> list[Json]:
        now = self.clock.now()
        return [record.to_json(now) for record in self._tokens.values()]

    # ------------------------------------------------------------------ helpers

    def _emit(self, event: CallbackEvent) -> None:
        self.stats.events_emitted += 1
        self.sink(event)

    def error(self, path: str, exc: WeChatError) -> Json:
        self.stats.reject(path, exc.errcode)
        errmsg = exc.errmsg
        if self.config.errmsg_rid:
            self._rid_seq += 1
            errmsg = (
                f"{errmsg} rid: {int(self.clock.now()):08x}-{self._rid_seq:08x}-{self._rid_salt}"
            )
        return {"errcode": exc.errcode, "errmsg": errmsg}

    def _system_error_fault(self, path: str) -> None:
        faults = self.faults
        if faults.system_errors > 0 and (
            path in faults.system_error_paths or "*" in faults.system_error_paths
        ):
            faults.system_errors -= 1
            raise WeChatError(e.SYSTEM_ERROR)

    def _authenticate(self, access_token: str | None) -> None:
        if not access_token:
            raise WeChatError(e.ACCESS_TOKEN_MISSING)
        if self.faults.persistent_40001:
            raise WeChatError(e.INVALID_CREDENTIAL)
        record = self._tokens.get(access_token)
        if record is None:
            raise WeChatError(e.INVALID_ACCESS_TOKEN)
        now = self.clock.now()
        if now >= record.expires_at:
            raise WeChatError(e.ACCESS_TOKEN_EXPIRED)
        if now >= record.invalid_after:
            # Superseded (past the overlap) or force-refreshed away: "not latest".
            raise WeChatError(e.INVALID_CREDENTIAL)

    def _check_credentials(self, appid: Any, secret: Any, grant_type: Any) -> None:
        if grant_type != "client_credential":
            raise WeChatError(e.INVALID_GRANT_TYPE)
        if not appid:
            raise WeChatError(e.APPID_MISSING)
        if not secret:
            raise WeChatError(e.APPSECRET_MISSING)
        if appid != self.config.appid:
            raise WeChatError(e.INVALID_APPID)
        if secret != self.config.secret:
            code = self.config.wrong_secret_errcode
            raise WeChatError(code, e.errmsg_for(code))

    def _issue(self, kind: Literal["access", "stable"], now: float) -> TokenRecord:
        self._prune_tokens(now)
        # Real tokens are ~150 opaque characters; clients must store at least 512.
        token = f"{kind[0]}{secrets.token_urlsafe(96)}"
        expires_at = now + self.config.token_ttl_seconds
        record = TokenRecord(token, kind, now, expires_at, expires_at)
        self._tokens[token] = record
        return record

    def _prune_tokens(self, now: float) -> None:
        if len(self._tokens) < 256:
            return
        # Keep dead tokens for a day so a late caller still gets 42001/40001, not 40014.
        horizon = now - _DAY
        for token in [t for t, r in self._tokens.items() if r.invalid_after < horizon]:
            del self._tokens[token]

    @staticmethod
    def _parse_json(body: bytes) -> Json:
        if not body.strip():
            raise WeChatError(e.EMPTY_POST_DATA)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise WeChatError(e.DATA_FORMAT_ERROR) from None
        if not isinstance(payload, dict):
            raise WeChatError(e.DATA_FORMAT_ERROR)
        return payload

    def _check_quota(self, path: str, now: float) -> QuotaWindow:
        window = self._quota[path]
        window.roll(now)
        daily = self.config.daily_quota
        if daily and window.used >= daily:
            raise WeChatError(e.DAILY_QUOTA)
        minute = self.config.minute_quota
        if minute and window.minute_used >= minute:
            raise WeChatError(e.MINUTE_QUOTA)
        return window

    def _recipient(self, touser: Any) -> User:
        if not isinstance(touser, str) or not touser:
            raise WeChatError(e.INVALID_OPENID)
        user = self._users.get(touser)
        if user is None:
            if not self.config.auto_create_users:
                raise WeChatError(e.INVALID_OPENID)
            user = self._users[touser] = User(touser, "following", "accepted")
        forced = self.faults.openid_errors.get(touser)
        if forced is not None:
            if forced.remaining is not None:
                forced.remaining -= 1
                if forced.remaining <= 0:
                    del self.faults.openid_errors[touser]
            raise WeChatError(forced.errcode, forced.errmsg)
        return user

    def _template(self, template_id: Any, kind: str) -> Template:
        template = self._templates.get(template_id) if isinstance(template_id, str) else None
        if template is None or template.kind != kind:
            raise WeChatError(e.INVALID_TEMPLATE_ID)
        return template

    def _dedup_hit(self, key: tuple[str, str], now: float) -> int | None:
        expiry = self._dedup_expiry
        while expiry and expiry[0][0] <= now:
            _, old = expiry.popleft()
            entry = self._dedup.get(old)
            if entry is not None and entry[1] <= now:
                del self._dedup[old]
        entry = self._dedup.get(key)
        if entry is not None and entry[1] > now:
            return entry[0]
        return None

    def _store(self, record: MessageRecord) -> None:
        messages = self._messages
        messages.append(record)
        by_openid = self._by_openid.get(record.openid)
        if by_openid is None:
            self._by_openid[record.openid] = [record]
        else:
            by_openid.append(record)
        if len(messages) > self.config.max_messages:
            drop = max(1, len(messages) // 10)
            del messages[:drop]
            self._by_openid = {}
            for kept in messages:
                self._by_openid.setdefault(kept.openid, []).append(kept)

    # ------------------------------------------------------------------ WeChat API

    def api_token(self, grant_type: str | None, appid: str | None, secret: str | None) -> Json:
        try:
            self._system_error_fault(TOKEN_PATH)
            self._check_credentials(appid, secret, grant_type)
            now = self.clock.now()
            day = day_index(now)
            if day != self._token_day:
                self._token_day, self._token_day_count = day, 0
            limit = self.config.token_daily_limit
            if limit and self._token_day_count >= limit:
                raise WeChatError(e.DAILY_QUOTA)
            self._token_day_count += 1
            previous = self._current_access
            if previous is not None:
                # The old token keeps working only through the overlap: several processes that
                # each fetch their own keep invalidating one another.
                previous.invalid_after = min(
                    previous.invalid_after, now + self.config.token_overlap_seconds
                )
            record = self._current_access = self._issue("access", now)
            self.stats.token_fetches += 1
            return {"access_token": record.token, "expires_in": self.config.token_ttl_seconds}
        except WeChatError as exc:
            return self.error(TOKEN_PATH, exc)

    def api_stable_token(self, body: bytes) -> Json:
        try:
            self._system_error_fault(STABLE_TOKEN_PATH)
            payload = self._parse_json(body)
            self._check_credentials(
                payload.get("appid"), payload.get("secret"), payload.get("grant_type")
            )
            now = self.clock.now()
            current = self._current_stable
            force = payload.get("force_refresh") is True
            if force:
                day = day_index(now)
                if day != self._force_day:
                    self._force_day, self._force_day_count = day, 0
                if self._force_day_count >= self.config.stable_force_daily_limit:
                    raise WeChatError(e.DAILY_QUOTA)
                last = self._last_force
                if last is not None and now - last < self.config.stable_force_min_interval_seconds:
                    raise WeChatError(e.MINUTE_QUOTA)
                self._force_day_count += 1
                self._last_force = now
                if current is not None:
                    current.invalid_after = min(current.invalid_after, now)
                current = self._current_stable = self._issue("stable", now)
                self.stats.stable_token_force_refreshes += 1
            elif (
                current is None
                or now >= current.invalid_after
                or current.expires_at - now <= self.config.stable_renew_before_seconds
            ):
                # Renewed ahead of expiry; the old one stays valid until its own expiry.
                current = self._current_stable = self._issue("stable", now)
            self.stats.stable_token_fetches += 1
            # Whole seconds left, rounded: a call a few ms after the clock moved still says 7100.
            expires_in = round(current.expires_at - now)
            return {"access_token": current.token, "expires_in": expires_in}
        except WeChatError as exc:
            return self.error(STABLE_TOKEN_PATH, exc)

    def api_template_send(
        self, access_token: str | None, body: bytes, traceparent: str | None = None
    ) -> Json:
        path = TEMPLATE_SEND_PATH
        try:
            self._system_error_fault(path)
            self._authenticate(access_token)
            payload = self._parse_json(body)
            now = self.clock.now()
            window = self._check_quota(path, now)
            user = self._recipient(payload.get("touser"))
            template = self._template(payload.get("template_id"), "template")
            if user.state == "unfollowed":
                raise WeChatError(e.REQUIRE_SUBSCRIBE)
            template.validate(payload.get("data"))
            client_msg_id = payload.get("client_msg_id")
            key: tuple[str, str] | None = None
            if isinstance(client_msg_id, str) and client_msg_id:
                key = (user.openid, client_msg_id)
                msgid = self._dedup_hit(key, now)
                if msgid is not None:
                    # Same openid + client_msg_id: WeChat sends once and answers the first msgid.
                    self.stats.duplicates_suppressed += 1
                    return {"errcode": 0, "errmsg": "ok", "msgid": msgid}
            else:
                client_msg_id = None
            window.used += 1
            window.minute_used += 1
            msgid = self._next_msgid
            self._next_msgid += 1
            if key is not None:
                expires = now + self.config.client_msg_id_ttl_seconds
                self._dedup[key] = (msgid, expires)
                self._dedup_expiry.append((expires, key))
            status = self._delivery_status(user)
            self._store(
                MessageRecord(
                    msgid,
                    "template",
                    user.openid,
                    template.template_id,
                    body,
                    client_msg_id,
                    traceparent,
                    status,
                    now,
                )
            )
            self.stats.template_sends_accepted += 1
            self.stats.delivery_status[status] += 1
            self._emit(
                CallbackEvent(TEMPLATE_SEND_JOB_FINISH, user.openid, int(now), msgid, status)
            )
            return {"errcode": 0, "errmsg": "ok", "msgid": msgid}
        except WeChatError as exc:
            return self.error(path, exc)

    def _delivery_status(self, user: User) -> str:
        # WeChat accepts a send to a user who blocked the account and reports the failure later.
        if user.state == "blocked":
            return STATUS_USER_BLOCK
        faults = self.faults
        if faults.delivery_failures > 0:
            faults.delivery_failures -= 1
            return STATUS_SYSTEM_FAILED
        if user.openid in faults.delivery_fail_openids:
            return STATUS_SYSTEM_FAILED
        return STATUS_SUCCESS

    def api_subscribe_send(
        self, access_token: str | None, body: bytes, traceparent: str | None = None
    ) -> Json:
        path = SUBSCRIBE_SEND_PATH
        try:
            self._system_error_fault(path)
            self._authenticate(access_token)
            payload = self._parse_json(body)
            now = self.clock.now()
            window = self._check_quota(path, now)
            user = self._recipient(payload.get("touser"))
            template = self._template(payload.get("template_id"), "subscribe")
            # Subscription messages need the user's consent, not a follow; a user who blocked
            # the account has withdrawn it.
            if user.subscription == "refused" or user.state == "blocked":
                raise WeChatError(e.USER_REFUSED)
            template.validate(payload.get("data"))
            window.used += 1
            window.minute_used += 1
            msgid = self._next_msgid
            self._next_msgid += 1
            self._store(
                MessageRecord(
                    msgid,
                    "subscribe",
                    user.openid,
                    template.template_id,
                    body,
                    None,
                    traceparent,
                    STATUS_SUCCESS,
                    now,
                )
            )
            self.stats.subscribe_sends_accepted += 1
            return {"errcode": 0, "errmsg": "ok"}
        except WeChatError as exc:
            return self.error(path, exc)

    def api_quota_get(self, access_token: str | None, body: bytes) -> Json:
        path = QUOTA_GET_PATH
        try:
            self._system_error_fault(path)
            self._authenticate(access_token)
            payload = self._parse_json(body)
            cgi_path = payload.get("cgi_path")
            window = self._quota.get(cgi_path) if isinstance(cgi_path, str) else None
            if window is None:
                raise WeChatError(e.CGI_PATH_NOT_FOUND)
            window.roll(self.clock.now())
            daily = self.config.daily_quota
            result: Json = {
                "errcode": 0,
                "errmsg": "ok",
                "quota": {
                    "daily_limit": daily,
                    "used": window.used,
                    "remain": max(daily - window.used, 0) if daily else 0,
                },
            }
            if self.config.minute_quota:
                result["rate_limit"] = {
                    "call_count": self.config.minute_quota,
                    "refresh_second": 60,
                }
            return result
        except WeChatError as exc:
            return self.error(path, exc)

    # ------------------------------------------------------------------ inspection

    def message(self, msgid: int) -> MessageRecord | None:
        messages = self._messages
        index = bisect.bisect_left(messages, msgid, key=lambda m: m.msgid)
        if index < len(messages) and messages[index].msgid == msgid:
            return messages[index]
        return None

    def query_messages(
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

    def messages_stored(self) -> int:
        return len(self._messages)

    def quota_json(self) -> Json:
        now = self.clock.now()
        out: Json = {}
        for path, window in self._quota.items():
            window.roll(now)
            out[path] = {
                "daily_limit": self.config.daily_quota,
                "used": window.used,
                "minute_limit": self.config.minute_quota,
                "minute_used": window.minute_used,
            }
        return out
