"""Configuration of a simulated Official Account: credentials, limits, callback, seed data.

Everything here can be given at start-up (``--config file.json`` or CLI flags), and every scalar can
be changed at run time through ``POST /_sim/config``; ``POST /_sim/reset`` goes back to the start-up
configuration.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_APPID = "wxd0c0ffee5ea1ed01"
DEFAULT_SECRET = "0123456789abcdef0123456789abcdef"
DEFAULT_ORIGINAL_ID = "gh_5a1b2c3d4e5f"

TEMPLATE_SEND_PATH = "/cgi-bin/message/template/send"
SUBSCRIBE_SEND_PATH = "/cgi-bin/message/subscribe/bizsend"
TOKEN_PATH = "/cgi-bin/token"
STABLE_TOKEN_PATH = "/cgi-bin/stable_token"
QUOTA_GET_PATH = "/cgi-bin/openapi/quota/get"

# The send endpoints carry the daily/per-minute quotas that ``/cgi-bin/openapi/quota/get`` reports.
QUOTA_PATHS = (TEMPLATE_SEND_PATH, SUBSCRIBE_SEND_PATH)

# "refused" is shorthand for a follower who refused subscription messages (43101 on bizsend).
UserStateName = Literal["following", "unfollowed", "blocked", "refused"]
SubscriptionName = Literal["accepted", "refused"]
TemplateKind = Literal["template", "subscribe"]


class UserSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    openid: str = Field(min_length=1, max_length=128)
    state: UserStateName = "following"
    # None: "refused" if state is "refused", else "accepted".
    subscription: SubscriptionName | None = None


class TemplateSpec(BaseModel):
    """A template in the account's library.

    ``keys`` lists the data keys the template has; as a mapping it also sets each key's maximum
    value length (``null`` = the default for the kind). For ``template`` kind the default limit is
    ``template_value_max_len`` (200); for ``subscribe`` kind it comes from the key's type prefix
    (``thing`` 20, ``number`` 32, ``phrase`` 5, ...), as WeChat's subscription messages do.
    """

    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(min_length=1, max_length=128)
    kind: TemplateKind = "template"
    keys: list[str] | dict[str, int | None]
    # Keys that may be left out (e.g. the legacy ``first`` / ``remark``); all others are required.
    optional_keys: list[str] = Field(default_factory=list)
    title: str = ""


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    appid: str = DEFAULT_APPID
    secret: str = DEFAULT_SECRET
    # The account's original id (gh_...): the ToUserName of every pushed event.
    original_id: str = DEFAULT_ORIGINAL_ID

    # Where event pushes go (TEMPLATESENDJOBFINISH, subscribe, unsubscribe); None: not pushed.
    callback_url: str | None = None
    # The "Token" of the account's server configuration: signs pushes (signature/timestamp/nonce).
    callback_token: str = "gonghui-sim-token"
    callback_timeout_seconds: float = Field(default=5.0, gt=0)
    callback_retries: int = Field(default=3, ge=1)
    callback_batch_size: int = Field(default=64, ge=1)
    # Push subscribe/unsubscribe events when a user's follow state changes through the admin API.
    notify_follow_events: bool = True

    token_ttl_seconds: int = Field(default=7200, gt=0)
    # A superseded /cgi-bin/token token keeps working this long after the next one is issued.
    token_overlap_seconds: int = Field(default=300, ge=0)
    # Daily limit of /cgi-bin/token calls (WeChat: 2000); 0 = unlimited.
    token_daily_limit: int = Field(default=2000, ge=0)
    # WeChat answers a wrong secret with 40125 nowadays (older accounts/docs: 40001).
    wrong_secret_errcode: int = 40125
    stable_renew_before_seconds: int = Field(default=300, ge=0)
    stable_force_daily_limit: int = Field(default=20, ge=0)
    stable_force_min_interval_seconds: float = Field(default=30.0, ge=0)

    # Per cgi_path (template send, bizsend, each its own); 0 = unlimited.
    daily_quota: int = Field(default=100_000, ge=0)
    minute_quota: int = Field(default=0, ge=0)

    # WeChat documents client_msg_id dedup as "same openid + client_msg_id: one message, valid
    # 10 minutes, beyond that not guaranteed"; configurable for clients that want a longer window.
    client_msg_id_ttl_seconds: float = Field(default=600.0, ge=0)
    template_value_max_len: int = Field(default=200, gt=0)
    # Treat unknown openids as followers instead of answering 40003 (load tests).
    auto_create_users: bool = False
    # Append " rid: ..." to errmsg like WeChat does.
    errmsg_rid: bool = True
    # Oldest messages are dropped past this many (counters, the first and last send's time and
    # the client_msg_id window stay exact). A kept message holds its request body, about 0.7 KB
    # in all: 10,000 of them are 7 MB, where a 300,000-member broadcast kept whole was 300 MB.
    max_messages: int = Field(default=10_000, gt=0)

    users: list[UserSpec] = Field(default_factory=list)
    templates: list[TemplateSpec] = Field(default_factory=list)

    def settings(self) -> dict[str, object]:
        """The scalar settings (what ``GET /_sim/config`` shows), without the seed data."""
        return self.model_dump(exclude={"users", "templates"})
