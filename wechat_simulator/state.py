"""The simulated Official Account: its settings and, one module each, its tokens, followers,
templates, quotas, faults, sent messages and stats.

Pure state and rules: no I/O, no asyncio. Time comes from an injected clock, and the events WeChat
would push to the account's server (delivery reports, subscribe/unsubscribe) go to an injected sink,
so the same object serves the HTTP app and plain unit tests. WeChat's own calls are answered by
:class:`wechat_simulator.calls.WeChatCalls` over this state; ``/_sim`` changes and reads it.
"""

from __future__ import annotations

from typing import Any

from .clock import SimClock
from .config import SimulatorConfig, SubscriptionName, TemplateSpec, UserSpec, UserStateName
from .events import CallbackEvent, EventSink
from .faults import Faults
from .followers import Followers, User
from .messages import ClientMsgIds, MessageLog
from .quotas import Quotas
from .stats import Stats
from .templates import Template, TemplateLibrary
from .tokens import Tokens


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
        self.reset(config or SimulatorConfig())

    def reset(self, config: SimulatorConfig) -> None:
        """Back to a fresh account with ``config``: no tokens, messages, quotas, faults or stats."""
        self.config = config
        self.faults = Faults()
        self.stats = Stats()
        self.tokens = Tokens()
        self.quotas = Quotas()
        self.followers = Followers()
        self.templates = TemplateLibrary()
        self.messages = MessageLog()
        self.client_msg_ids = ClientMsgIds()
        for user in config.users:
            self.put_user(user, notify=False)
        for spec in config.templates:
            self.put_template(spec)

    def update_config(self, patch: dict[str, Any]) -> SimulatorConfig:
        """Apply a partial settings update; a new appid or secret revokes every token."""
        if "users" in patch or "templates" in patch:
            raise ValueError("users and templates have their own endpoints")
        new = SimulatorConfig.model_validate({**self.config.model_dump(), **patch})
        if new.appid != self.config.appid or new.secret != self.config.secret:
            self.tokens.revoke_all()
        self.config = new
        return new

    def emit(self, event: CallbackEvent) -> None:
        self.stats.events_emitted += 1
        self.sink(event)

    def put_user(self, spec: UserSpec, *, notify: bool = True) -> tuple[User, str | None]:
        """Create or update a user; returns it and the follow event pushed, if any."""
        user, change = self.followers.put(spec)
        if not (notify and self.config.notify_follow_events) or change is None:
            return user, None
        self.emit(CallbackEvent(change, spec.openid, int(self.clock.now())))
        return user, change

    def set_user_state(
        self,
        openid: str,
        state: UserStateName | None = None,
        subscription: SubscriptionName | None = None,
        *,
        notify: bool = True,
    ) -> tuple[User, str | None]:
        """Change an existing user (KeyError for an unknown openid)."""
        return self.put_user(self.followers.changed(openid, state, subscription), notify=notify)

    def put_template(self, spec: TemplateSpec) -> Template:
        return self.templates.put(spec, self.config.template_value_max_len)
