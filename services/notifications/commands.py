"""What the official account's web app and federation staff ask the notifications service to do.

Each command is also the body of its HTTP request, so the API validates it once (shared
``Command``: unknown fields, NUL characters and integers beyond 64 bits are refused), with the
field names the error answers use.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from services.notifications.rules import Category
from shared.inputs import Command, FromRoute

UNSUBSCRIBED = 43004  # what WeChat answers a send to a member who unfollowed
REFUSED = 43101  # what WeChat answers a send to a member who refuses the account's messages
TemplateKey = Annotated[str, Field(min_length=1, max_length=64)]
TemplateText = Annotated[str, Field(max_length=1000)]


class BindWeChat(Command):
    """The member's openid on the federation's official account, from its OAuth login."""

    member_id: FromRoute = ""

    openid: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The member's openid on the official account (OAuth snsapi_base).",
        examples=["oK3Ws5Ns2dGxN0u3Xw5P9bHq2c1E"],
    )


class ChoosePreferences(Command):
    """The categories the member does not want to hear about; the rest are on."""

    member_id: FromRoute = ""

    opted_out: list[Category] = Field(
        default_factory=list,
        max_length=len(Category),
        description="Categories the member opts out of. Mandatory messages come regardless; an"
        " empty list turns every category back on.",
        examples=[["announcements"], []],
    )


class BroadcastSegment(Command):
    """Who a broadcast is for: both filters must hold; neither set means every active member."""

    union_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="A union: its members and those of every union below it.",
        examples=["union-bozhou-pharma"],
    )
    member_category: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="A member category as membership records it (e.g. women workers).",
        examples=["女职工"],
    )


class StartBroadcast(Command):
    """An announcement from a rules.yaml template to a segment of members."""

    template: str = Field(
        default="announcement",
        min_length=1,
        max_length=64,
        description="The name of a template in rules.yaml (see GET /rules).",
        examples=["announcement"],
    )
    data: dict[TemplateKey, TemplateText] = Field(
        max_length=20,
        description="Text for each of the template's keys, every key and no other. Text may say"
        " {member_name} and {union_name}, filled in for each member.",
        examples=[
            {
                "first": "{member_name}，您好：",
                "keyword1": "{union_name}2026年职工疗休养报名通知",
                "keyword2": "2026-07-01",
                "remark": "请于7月15日前在工会服务号报名。",
            }
        ],
    )
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Where the message leads when tapped; may say {member_name} or {union_name}.",
        examples=["https://gonghui.example.cn/notices/2026-07"],
    )
    segment: BroadcastSegment = Field(default_factory=BroadcastSegment)
    mandatory: bool = Field(
        default=False,
        description="Send even to members who opted out of announcements: only for what every"
        " member must know.",
    )


class Unbind(Command):
    """The member no longer wants WeChat messages (or bound the wrong openid)."""

    member_id: FromRoute = ""


class CancelBroadcast(Command):
    """Stop a broadcast: what has not gone yet never will."""

    broadcast_id: FromRoute = ""


# What WeChat's pushes ask of the service: commands it gives itself, never request bodies.


class ReopenChannel(Command):
    """WeChat's subscribe event: a member who unfollowed follows the account again."""

    openid: str


class CloseChannel(Command):
    """WeChat says the member cannot be reached: an unsubscribe event, or a delivery report that
    they block the account's messages. ``errcode`` is what a send would have answered."""

    openid: str
    errcode: int = UNSUBSCRIBED
    errmsg: str = "unsubscribed"


# The fan-out worker's steps.


class FanOutBatch(Command):
    """Turn the next members of the oldest broadcast still planning into deliveries."""

    batch_size: int = Field(default=2000, ge=1)


class CloseFinishedBroadcasts(Command):
    """Mark completed the broadcasts whose every delivery is settled, and say so once."""
