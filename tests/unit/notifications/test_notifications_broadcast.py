"""Segments, broadcast plans and progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notifications.broadcast import (
    Audience,
    BroadcastProgress,
    Segment,
    plan_broadcast,
)
from services.notifications.domain import Binding, Preferences, SkipReason
from services.notifications.rules import load_rules

ANNOUNCE = load_rules(
    """
version: 1
templates:
  notice: {template_id: TPL-NOTICE, keys: [first]}
rules:
  - name: notice
    event: gonghui.notifications.broadcast.requested
    category: announcements
    template: notice
    data: {first: "{title}"}
"""
).rule("notice")

# city u-1 > district u-2 > enterprise u-3; district u-4 beside u-2.
ALICE = Audience("m-a", "u-3", ("u-1", "u-2"), frozenset({"女职工"}))
BOB = Audience("m-b", "u-2", ("u-1",))
CAROL = Audience("m-c", "u-4", ("u-1",), frozenset({"女职工"}))
MEMBERS = [CAROL, ALICE, BOB]


def ids(segment: Segment) -> set[str]:
    return {m.member_id for m in MEMBERS if segment.includes(m)}


def test_a_union_segment_covers_its_whole_subtree() -> None:
    assert ids(Segment(union_id="u-2")) == {"m-a", "m-b"}
    assert ids(Segment(union_id="u-3")) == {"m-a"}
    assert ids(Segment(union_id="u-1")) == {"m-a", "m-b", "m-c"}


def test_a_category_segment_and_a_combined_one() -> None:
    assert ids(Segment(member_category="女职工")) == {"m-a", "m-c"}
    assert ids(Segment(union_id="u-2", member_category="女职工")) == {"m-a"}


def test_everyone_is_everyone() -> None:
    assert ids(Segment.everyone()) == {"m-a", "m-b", "m-c"}
    assert Segment.everyone().describe() == "everyone"
    assert Segment("u-2", "女职工").describe() == "union u-2 and below, category 女职工"


def test_a_plan_sends_to_the_reachable_and_counts_the_rest() -> None:
    bindings = {
        "m-a": Binding("m-a", "oA"),
        "m-b": Binding("m-b", "oB").unreachable(43004),
        "m-c": Binding("m-c", "oC"),
    }
    prefs = {"m-c": Preferences("m-c").opt_out("announcements")}
    plan = plan_broadcast(Segment.everyone(), MEMBERS, ANNOUNCE, prefs, bindings)
    assert plan.sends == (("m-a", "oA"),)
    assert plan.skipped == {SkipReason.NO_CHANNEL: 1, SkipReason.OPTED_OUT: 1}


def test_a_plan_is_in_a_stable_order() -> None:
    bindings = {m.member_id: Binding(m.member_id, "o" + m.member_id) for m in MEMBERS}
    plan = plan_broadcast(Segment.everyone(), MEMBERS, ANNOUNCE, {}, bindings)
    assert [member for member, _ in plan.sends] == ["m-a", "m-b", "m-c"]
    unbound = plan_broadcast(Segment(union_id="u-4"), MEMBERS, ANNOUNCE, {}, {})
    assert unbound.sends == ()
    assert unbound.skipped == {SkipReason.NO_BINDING: 1}


def test_progress_counts_down_and_estimates_the_finish() -> None:
    now = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
    progress = BroadcastProgress(queued=1000).record_sent(400).record_failed(100)
    assert (progress.sent, progress.failed, progress.remaining) == (400, 100, 500)
    assert not progress.finished
    assert progress.expected_finish(now, per_minute=250) == now + timedelta(minutes=2)
    assert progress.expected_finish(now, per_minute=0) is None
    done = progress.record_sent(500)
    assert done.finished
    assert done.expected_finish(now, per_minute=0) == now


def test_progress_cannot_count_more_than_was_queued() -> None:
    with pytest.raises(ValueError):
        BroadcastProgress(queued=1).record_sent(2)
