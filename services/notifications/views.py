"""How the notifications API answers: typed models built from domain objects and rows.

Openids are personal data: every answer carries them masked (``mask_openid``), whatever the
caller's scope; there is no scope that shows them whole. Member ids are membership's opaque ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from pydantic import AfterValidator, BaseModel, Field, model_validator

from services.notifications.broadcast import FAILED, OPEN, SENT, BroadcastProgress, BroadcastStatus
from services.notifications.broadcast_repository import segment_of
from services.notifications.domain import DeliveryStatus, Preferences, mask_openid
from services.notifications.live_rules import LiveRules
from services.notifications.rules import Category, RuleSet
from shared.views import View

MASKED_OPENID = Field(
    description="The member's openid, masked: enough to match logs, not to address the member.",
    examples=["oK3W…2c1E"],
)
# Masked as it is read into an answer, so no answer can carry it whole (masking is idempotent).
Masked = Annotated[str, AfterValidator(mask_openid)]


class BindingView(View):
    member_id: str = Field(examples=["m-5f0c2a9e8b7d4c3aa1e2f3b4c5d6e7f8"])
    openid: Masked = MASKED_OPENID
    reachable: bool = Field(
        description="False once WeChat said the member cannot be reached (unfollowed, blocked the"
        " account's messages): nothing is sent until they follow again or bind again."
    )
    unreachable_errcode: int | None = Field(
        description="WeChat's errcode that closed the channel (43004 unfollowed, 43101 refused)."
    )
    bound_at: datetime | None = Field(description="When the member last bound this openid.")


class BindingPage(BaseModel):
    items: list[BindingView]
    next_offset: int | None = Field(description="The offset of the next page; null on the last.")


class PreferencesView(BaseModel):
    member_id: str = Field(examples=["m-5f0c2a9e8b7d4c3aa1e2f3b4c5d6e7f8"])
    opted_out: list[Category] = Field(description="Categories the member opted out of.")
    receives: dict[Category, bool] = Field(
        description="Every category, and whether the member receives its messages."
    )
    always_sent: list[str] = Field(
        description="Rules sent anyway although their category is opted out (mandatory messages,"
        " e.g. claim decisions).",
        examples=[["claim_decided"]],
    )


def preferences_view(p: Preferences, rules: RuleSet) -> PreferencesView:
    mandatory = {r.name for r in rules.rules if r.mandatory and r.category in p.opted_out}
    return PreferencesView(
        member_id=p.member_id,
        opted_out=sorted(Category(c) for c in p.opted_out),
        receives={c: p.allows(c) for c in Category},
        always_sent=sorted(mandatory),
    )


class DeliveryView(View):
    """One message to one member, from the event (or broadcast) that caused it to its report."""

    id: int = Field(description="The delivery's id, increasing in the order deliveries are made.")
    event_id: str = Field(description="The CloudEvents id of the cause; broadcast:<id> for one.")
    event_type: str = Field(examples=["gonghui.membership.member.joined"])
    rule: str = Field(description="The rules.yaml rule that sent it (broadcast for broadcasts).")
    category: Category
    member_id: str = Field(description="The recipient; empty when the rule found none.")
    template_id: str = Field(description="The WeChat template id.")
    client_msg_id: str = Field(description="WeChat's deduplication id: one per event and member.")
    broadcast_id: UUID | None
    status: DeliveryStatus
    reason: str | None = Field(
        description="Why it stands so: no_binding, no_channel, opted_out, render_error,"
        " configuration, retrying, retries_exhausted, in_doubt.",
    )
    configuration_error: bool = Field(
        description="WeChat refused the message itself (template id, data): fix rules.yaml."
    )
    errcode: int | None = Field(description="WeChat's last errcode for it.")
    errmsg: str | None = Field(description="WeChat's last errmsg, or the rendering problem.")
    attempts: int
    openid: Masked | None = MASKED_OPENID
    msgid: int | None = Field(description="WeChat's msgid once sent.")
    report_status: str | None = Field(
        description="WeChat's delivery report (success, failed:user block, failed:system failed)."
    )
    created_at: datetime
    attempted_at: datetime | None
    sent_at: datetime | None
    reported_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When it is due, while pending.")

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, row: Any) -> Any:
        """A deliveries row: the recipient is the member; what is derived from the status."""
        if not isinstance(row, asyncpg.Record | Mapping):
            return row
        r = dict(row)
        return r | {
            "member_id": r["recipient"],
            "configuration_error": r["status"] == DeliveryStatus.INVALID,
            "next_attempt_at": r["next_attempt_at"]
            if r["status"] == DeliveryStatus.PENDING
            else None,
        }


class DeliveryPage(BaseModel):
    items: list[DeliveryView]
    next_after_id: int | None = Field(
        description="Pass as after_id for the next page; null on the last."
    )


class Skipped(BaseModel):
    """Members of the segment who get no message, by why."""

    no_binding: int = Field(description="Never bound WeChat.")
    no_channel: int = Field(description="WeChat said they cannot be reached.")
    opted_out: int = Field(description="Opted out of announcements (not for mandatory ones).")
    total: int


class BroadcastView(BaseModel):
    id: UUID
    status: BroadcastStatus
    segment: str = Field(examples=["union union-bozhou-pharma and below, category 女职工"])
    template: str = Field(examples=["announcement"])
    mandatory: bool
    audience: int = Field(description="Active members in the segment when it was requested.")
    queued: int = Field(description="Messages to send, including members not yet fanned out.")
    sent: int
    failed: int
    cancelled: int
    remaining: int
    skipped: Skipped
    created_at: datetime
    finished_at: datetime | None
    expected_finish: datetime | None = Field(
        description="When the rest will have gone at the shared pace; null once finished."
    )
    paused_until: datetime | None = Field(
        description="Sending is paused (a quota or configuration errcode) until then."
    )


@dataclass(frozen=True)
class Pace:
    """What an expected finish is reckoned from: now, the shared rate, and any pause."""

    now: datetime
    rate_per_second: float
    resumes_at: datetime | None


def broadcast_view(b: asyncpg.Record, counts: Mapping[str, int], pace: Pace) -> BroadcastView:
    queued = sum(counts.values())
    # Members the fan-out has yet to reach count as queued: they are the bulk of what remains.
    unplanned = max(b["audience"] - b["examined"], 0) if b["status"] == "planning" else 0
    sent = sum(counts.get(s, 0) for s in SENT)
    failed = sum(counts.get(s, 0) for s in FAILED)
    cancelled = counts.get("cancelled", 0)
    state = BroadcastProgress(queued + unplanned, sent, failed + cancelled)
    finish = None
    if b["status"] in OPEN:
        start = max(pace.now, pace.resumes_at) if pace.resumes_at else pace.now
        finish = state.expected_finish(start, pace.rate_per_second * 60)
    return BroadcastView(
        id=b["id"],
        status=b["status"],
        segment=segment_of(b).describe(),
        template=b["template_name"],
        mandatory=b["mandatory"],
        audience=b["audience"],
        queued=queued + unplanned,
        sent=sent,
        failed=failed,
        cancelled=cancelled,
        remaining=state.remaining,
        skipped=Skipped(
            no_binding=b["skipped_no_binding"],
            no_channel=b["skipped_no_channel"],
            opted_out=b["skipped_opted_out"],
            total=b["skipped_no_binding"] + b["skipped_no_channel"] + b["skipped_opted_out"],
        ),
        created_at=b["created_at"],
        finished_at=b["finished_at"],
        expected_finish=finish,
        paused_until=pace.resumes_at,
    )


class BroadcastPage(BaseModel):
    items: list[BroadcastView]
    next_offset: int | None = Field(description="The offset of the next page; null on the last.")


class TemplateView(BaseModel):
    template_id: str = Field(examples=["gh-tpl-announcement"])
    keys: list[str] = Field(examples=[["first", "keyword1", "keyword2", "remark"]])


class RuleView(BaseModel):
    name: str = Field(examples=["member_welcome"])
    event: str = Field(examples=["gonghui.membership.member.joined"])
    recipient: str = Field(description="Where in the event the member id is.")
    category: Category
    mandatory: bool
    template: str
    url: str | None
    data: dict[str, str] = Field(description="Template key -> text with {placeholders}.")


class RejectedChange(BaseModel):
    problems: list[str] = Field(description="Why the last edit of rules.yaml was refused.")


class RulesView(BaseModel):
    version: str
    loaded_at: datetime
    rejected_change: RejectedChange | None = Field(
        description="The last edit of rules.yaml that was refused; the rules shown stay in force."
    )
    templates: dict[str, TemplateView]
    rules: list[RuleView]


def rules_view(live: LiveRules) -> RulesView:
    rules, rejected = live.current(), live.rejected
    return RulesView(
        version=rules.version,
        loaded_at=datetime.fromtimestamp(live.loaded_at, UTC),
        rejected_change=RejectedChange(problems=list(rejected.problems)) if rejected else None,
        templates={
            t.name: TemplateView(template_id=t.template_id, keys=list(t.keys))
            for t in rules.templates.values()
        },
        rules=[
            RuleView(
                name=r.name,
                event=r.event_type,
                recipient=r.recipient,
                category=Category(r.category),
                mandatory=r.mandatory,
                template=r.template.name,
                url=r.url.source if r.url else None,
                data={k: p.source for k, p in r.data.items()},
            )
            for r in rules.rules
        ],
    )


class SendingView(BaseModel):
    """The pace all sender workers share, its pause, and what is waiting."""

    rate_per_second: float
    paused_until: datetime | None
    pause_errcode: int | None = Field(description="The WeChat errcode that paused sending.")
    pause_reason: str | None
    pending: int
    sending: int
