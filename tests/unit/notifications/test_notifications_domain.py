"""Whether to send, and rendering an event into a template message."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain import (
    VALUE_LIMIT,
    Binding,
    Preferences,
    RenderError,
    Send,
    Skip,
    SkipReason,
    client_msg_id,
    mask_openid,
    render,
    should_send,
)
from services.notifications.patterns import FILTERS
from services.notifications.rules import Rule, RuleSet, load_rules
from shared.events.membership import MemberJoined
from shared.events.notifications import RecipientUnreachable

RULES: RuleSet = load_rules(
    """
version: 1
templates:
  welcome:
    template_id: TPL-WELCOME
    keys: [first, keyword1, remark]
  claim:
    template_id: TPL-CLAIM
    keys: [first, keyword1, remark]
rules:
  - name: joined
    event: gonghui.membership.member.joined
    category: membership
    template: welcome
    data:
      first: "{name}，欢迎加入{union_name}"
      keyword1: "{card_number}"
      remark: "入会日期 {joined_on}"
  - name: rejected
    event: gonghui.test.claim.decided
    category: mutual_aid
    mandatory: true
    template: claim
    url: "https://m.example/claims/{claim_id}?by={member_name}"
    data:
      first: "申请未通过，金额{amount_fen|yuan}元"
      keyword1: "{claim_id}"
      remark: "原因：{reason_text}"
"""
)
JOINED = RULES.rule("joined")
REJECTED = RULES.rule("rejected")
BOUND = Binding("m-1", "oOPENID-0001-abcdef")


def joined_event(**changes: object) -> dict[str, object]:
    event = MemberJoined(
        member_id="m-1",
        name="李娜",
        union_id="u-7",
        union_path=["u-1", "u-3"],
        channel="wechat",
        categories=["女职工"],
        joined_on=date(2025, 3, 1),
        card_number="GH-0000123",
        sex="F",
        birth_date=date(1990, 5, 4),
    )
    return {**event.model_dump(mode="json"), **changes}


def rejected_event(**changes: object) -> dict[str, object]:
    return {
        "member_id": "m-1",
        "claim_id": "C-2025/17&x",
        "amount_fen": 123456,
        "reason_text": "材料不全",
        **changes,
    }


CONTEXT = {"member_name": "李娜", "union_name": "市一建工会"}


# --- should_send ---------------------------------------------------------------------------------


def test_a_bound_member_with_default_preferences_is_sent_to() -> None:
    assert should_send(JOINED, None, BOUND) == Send(BOUND.openid)
    assert should_send(JOINED, Preferences("m-1"), BOUND) == Send(BOUND.openid)


def test_no_binding_is_skipped_as_undeliverable() -> None:
    decision = should_send(JOINED, Preferences("m-1"), None)
    assert decision == Skip(SkipReason.NO_BINDING)
    assert isinstance(decision, Skip) and decision.reason == "no_binding"


def test_an_opted_out_member_is_skipped() -> None:
    prefs = Preferences("m-1").opt_out("membership")
    assert should_send(JOINED, prefs, BOUND) == Skip(SkipReason.OPTED_OUT)
    assert should_send(JOINED, prefs.opt_in("membership"), BOUND) == Send(BOUND.openid)


def test_opting_out_of_another_category_changes_nothing() -> None:
    prefs = Preferences("m-1").opt_out("training")
    assert should_send(JOINED, prefs, BOUND) == Send(BOUND.openid)


def test_mandatory_messages_ignore_opt_out() -> None:
    prefs = Preferences("m-1").opt_out("mutual_aid")
    assert should_send(REJECTED, prefs, BOUND) == Send(BOUND.openid)


def test_mandatory_messages_still_need_a_channel() -> None:
    assert should_send(REJECTED, None, None) == Skip(SkipReason.NO_BINDING)
    unreachable = BOUND.unreachable(43004)
    assert should_send(REJECTED, None, unreachable) == Skip(SkipReason.NO_CHANNEL)


def test_preferences_only_know_the_four_categories() -> None:
    with pytest.raises(ValueError, match="gossip"):
        Preferences("m-1").opt_out("gossip")


# --- render --------------------------------------------------------------------------------------


def test_render_fills_the_template_from_event_and_context() -> None:
    msg = render(JOINED, joined_event(), CONTEXT, event_id="evt-1", openid=BOUND.openid)
    assert msg.touser == BOUND.openid
    assert msg.template_id == "TPL-WELCOME"
    assert msg.url is None
    assert msg.data == {
        "first": {"value": "李娜，欢迎加入市一建工会"},
        "keyword1": {"value": "GH-0000123"},
        "remark": {"value": "入会日期 2025-03-01"},
    }
    assert msg.truncated == ()
    assert msg.client_msg_id == client_msg_id("evt-1", "m-1", "TPL-WELCOME")


def test_the_wechat_payload_has_the_documented_shape() -> None:
    msg = render(REJECTED, rejected_event(), CONTEXT, event_id="evt-2", openid="oX")
    assert msg.payload() == {
        "touser": "oX",
        "template_id": "TPL-CLAIM",
        "client_msg_id": msg.client_msg_id,
        "url": "https://m.example/claims/C-2025%2F17%26x?by=%E6%9D%8E%E5%A8%9C",
        "data": {
            "first": {"value": "申请未通过，金额1234.56元"},
            "keyword1": {"value": "C-2025/17&x"},
            "remark": {"value": "原因：材料不全"},
        },
    }


def test_over_long_values_are_truncated_with_an_ellipsis_and_noted() -> None:
    msg = render(
        REJECTED, rejected_event(reason_text="理" * 500), CONTEXT, event_id="e", openid="oX"
    )
    remark = msg.data["remark"]["value"]
    assert len(remark) == VALUE_LIMIT
    assert remark.endswith("…")
    assert remark.startswith("原因：理理")
    assert msg.truncated == ("remark",)


def test_a_value_at_the_limit_is_left_alone() -> None:
    reason = "理" * (VALUE_LIMIT - len("原因："))
    msg = render(REJECTED, rejected_event(reason_text=reason), CONTEXT, event_id="e", openid="o")
    assert msg.data["remark"]["value"] == "原因：" + reason
    assert msg.truncated == ()


def test_a_field_missing_from_an_uncatalogued_event_fails_at_render_time() -> None:
    data = rejected_event()
    del data["reason_text"]
    with pytest.raises(RenderError, match="reason_text"):
        render(REJECTED, data, CONTEXT, event_id="e", openid="o")


def test_a_missing_context_field_fails_at_render_time() -> None:
    with pytest.raises(RenderError, match="union_name"):
        render(JOINED, joined_event(), {}, event_id="e", openid="o")


def test_the_event_wins_over_context_for_the_same_name() -> None:
    msg = render(JOINED, joined_event(union_name="事件里的工会"), CONTEXT, event_id="e", openid="o")
    assert msg.data["first"]["value"] == "李娜，欢迎加入事件里的工会"


def test_an_event_without_the_recipient_cannot_be_rendered() -> None:
    with pytest.raises(RenderError, match="recipient"):
        render(JOINED, joined_event(member_id=None), CONTEXT, event_id="e", openid="o")


def test_a_filter_that_cannot_format_its_value_fails_clearly() -> None:
    with pytest.raises(RenderError, match="yuan"):
        render(REJECTED, rejected_event(amount_fen="lots"), CONTEXT, event_id="e", openid="o")


@pytest.mark.parametrize(
    ("fen", "yuan"), [(123456, "1234.56"), (5, "0.05"), (100, "1.00"), (0, "0.00"), (-250, "-2.50")]
)
def test_yuan_formats_fen_exactly(fen: int, yuan: str) -> None:
    assert FILTERS["yuan"](fen) == yuan


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2025-03-01T02:30:00+00:00", "2025-03-01 10:30"),
        ("2025-03-01T10:30:00", "2025-03-01 10:30"),
        ("2025-03-01", "2025-03-01"),
    ],
)
def test_time_shows_beijing_wall_clock(value: str, shown: str) -> None:
    assert FILTERS["time"](value) == shown


# --- client_msg_id -------------------------------------------------------------------------------


def test_client_msg_id_is_deterministic_and_distinguishes_its_inputs() -> None:
    one = client_msg_id("evt-1", "m-1", "TPL")
    assert one == client_msg_id("evt-1", "m-1", "TPL")
    assert (
        len({one, client_msg_id("evt-2", "m-1", "TPL"), client_msg_id("evt-1", "m-2", "TPL")}) == 3
    )
    assert client_msg_id("evt-1", "m-1", "TPL2") != one
    # No ambiguity from where one input ends and the next begins.
    assert client_msg_id("a", "bc", "d") != client_msg_id("ab", "c", "d")


@given(st.text(), st.text(), st.text())
def test_client_msg_id_always_fits_wechats_limit(event_id: str, member: str, tpl: str) -> None:
    msg_id = client_msg_id(event_id, member, tpl)
    assert len(msg_id) <= 64
    assert msg_id.isascii()


def test_redelivered_events_render_identical_messages() -> None:
    first = render(JOINED, joined_event(), CONTEXT, event_id="evt-9", openid="o")
    again = render(JOINED, joined_event(), CONTEXT, event_id="evt-9", openid="o")
    assert first == again


def test_mask_openid_keeps_only_the_ends() -> None:
    assert mask_openid("oABCDEFGHIJKLMN") == "oABC…KLMN"
    assert mask_openid("short") == "*****"


def test_rules_are_plain_values() -> None:
    assert isinstance(JOINED, Rule)


def test_an_unreachable_recipient_loses_the_channel_and_is_announced() -> None:
    binding = BOUND.unreachable(43004, "require subscribe")
    (event,) = binding.events
    assert isinstance(event, RecipientUnreachable)
    assert not binding.reachable
    assert BOUND.reachable and BOUND.events == []
    assert should_send(JOINED, None, binding) == Skip(SkipReason.NO_CHANNEL)
    assert event.member_id == "m-1"
    assert event.errcode == 43004
    assert event.reason == "the member does not follow the account"
    assert BOUND.openid not in event.model_dump_json()
    (odd,) = BOUND.unreachable(49999, "odd").events
    assert isinstance(odd, RecipientUnreachable) and odd.reason == "odd"
