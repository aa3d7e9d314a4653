"""What to record for a claimed delivery, from WeChat's answer or from what is known before asking.

Pure apart from logging: the sender applies a verdict's pause to the shared gate and records its
outcome. Errcodes map to actions in ``errcodes.py``; this decides what each action means for
the delivery row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter

from services.notifications.errcodes import Action, Backoff, quota_resumes_at
from services.notifications.gate import Pause
from services.notifications.queue import Claimed, Outcome, Withdrawn
from services.notifications.wechat import SendResult

log = logging.getLogger(__name__)
CONFIGURATION_ERRORS = Counter(
    "notifications_configuration_errors_total",
    "Messages WeChat refused as invalid (template id or data): fix rules.yaml or the account",
)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    # Stop every worker until then (a quota is spent, or the account is misconfigured).
    pause: Pause | None = None


def released(
    delivery_id: int, until: datetime, errcode: int | None = None, errmsg: str | None = None
) -> Outcome:
    """Given back unsent, to be claimed again from ``until``; not counted as an attempt."""
    return Outcome(
        delivery_id,
        "pending",
        errcode=errcode,
        errmsg=errmsg,
        next_attempt_at=until,
        attempts_delta=-1,
    )


def before_sending(row: Claimed, withdrawn: Withdrawn) -> Outcome | None:
    """An outcome known without asking WeChat, or None: send it."""
    if row.broadcast_id is not None and row.broadcast_id in withdrawn.cancelled_broadcasts:
        return Outcome(row.id, "cancelled", attempts_delta=-1)
    if row.binding_openid is None:
        return Outcome(row.id, "undeliverable", reason="no_binding", attempts_delta=-1)
    # The binding as claimed, or as changed since (an unsubscribe push while the row waited).
    errcode = withdrawn.unreachable.get(row.recipient, row.unreachable_errcode)
    if errcode is not None:
        return Outcome(
            row.id, "undeliverable", reason="no_channel", errcode=errcode, attempts_delta=-1
        )
    return None


def judge(
    row: Claimed,
    result: SendResult,
    now: datetime,
    backoff: Mapping[Action, Backoff],
    config_pause: timedelta,
) -> Verdict:
    action, errcode, errmsg = result.action, result.errcode, result.errmsg
    if action is Action.OK:
        return Verdict(Outcome(row.id, "sent", errcode=0, errmsg=errmsg, msgid=result.msgid))
    if action is Action.PAUSE_QUOTA:
        assert errcode is not None
        until = quota_resumes_at(errcode, now)
        log.warning("WeChat quota reached (errcode %s): sending paused until %s", errcode, until)
        return Verdict(released(row.id, until, errcode, errmsg), Pause(until, errcode, "quota"))
    if action is Action.RECIPIENT_UNREACHABLE:
        outcome = Outcome(
            row.id,
            "undeliverable",
            reason="no_channel",
            errcode=errcode,
            errmsg=errmsg,
            newly_unreachable=True,
        )
        return Verdict(outcome)
    if action is Action.MESSAGE_INVALID:
        CONFIGURATION_ERRORS.inc()
        log.error(
            "configuration error: WeChat refused delivery %s of rule %s (template %s):"
            " errcode %s %s",
            row.id,
            row.rule,
            row.template_id,
            errcode,
            errmsg,
        )
        invalid = Outcome(row.id, "invalid", reason="configuration", errcode=errcode, errmsg=errmsg)
        return Verdict(invalid)
    if action in (Action.CONFIG_ERROR, Action.REFRESH_TOKEN):
        # REFRESH_TOKEN only arrives here if the client gave up on it: the same as misconfigured.
        until = now + config_pause
        log.error(
            "WeChat account misconfigured (errcode %s %s): sending paused until %s",
            errcode,
            errmsg,
            until,
        )
        pause = Pause(until, errcode, "configuration")
        return Verdict(released(row.id, until, errcode, errmsg), pause)
    delay = backoff[action if action in backoff else Action.UNKNOWN].delay(row.attempts)
    if delay is None:
        return Verdict(
            Outcome(row.id, "failed", reason="retries_exhausted", errcode=errcode, errmsg=errmsg)
        )
    retry = Outcome(
        row.id,
        "pending",
        reason="retrying",
        errcode=errcode,
        errmsg=errmsg,
        next_attempt_at=now + timedelta(seconds=delay),
    )
    return Verdict(retry)
