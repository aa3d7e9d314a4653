"""The WeChat simulator's rules as pure state: a standing clock, events collected in a list."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
import xmltodict

from wechat_simulator import (
    CallbackEvent,
    ManualClock,
    SimulatorConfig,
    SimulatorState,
    WeChatCalls,
)
from wechat_simulator.callbacks import render_event_xml, sign
from wechat_simulator.config import TemplateSpec, UserSpec
from wechat_simulator.quotas import day_index
from wechat_simulator.templates import Template, subscribe_key_rule

APPID, SECRET = "wxunit", "unit-secret"


def make_state(**settings: Any) -> tuple[SimulatorState, ManualClock, list[CallbackEvent]]:
    config = SimulatorConfig.model_validate(
        {
            "appid": APPID,
            "secret": SECRET,
            "users": [{"openid": "o_a"}, {"openid": "o_b", "state": "blocked"}],
            "templates": [{"template_id": "T", "keys": ["keyword1"]}],
            **settings,
        }
    )
    clock = ManualClock()
    events: list[CallbackEvent] = []
    return SimulatorState(config, clock, events.append), clock, events


def token(state: SimulatorState) -> str:
    result = WeChatCalls(state).token("client_credential", APPID, SECRET)
    value: str = result["access_token"]
    return value


def send(state: SimulatorState, access_token: str, touser: str = "o_a", **extra: Any) -> Any:
    body = {"touser": touser, "template_id": "T", "data": {"keyword1": {"value": "v"}}, **extra}
    return WeChatCalls(state).template_send(access_token, orjson.dumps(body))


def test_day_index_rolls_over_at_beijing_midnight() -> None:
    midnight_beijing = 1_700_000_000 - (1_700_000_000 + 8 * 3600) % 86_400
    assert day_index(midnight_beijing - 0.001) == day_index(midnight_beijing) - 1
    assert day_index(midnight_beijing + 86_399.9) == day_index(midnight_beijing)


def test_overlap_only_caps_the_token_it_supersedes() -> None:
    state, clock, _ = make_state()
    first = token(state)
    clock.advance(100)
    second = token(state)
    clock.advance(250)
    third = token(state)  # first still capped at its own overlap end (second fetch + 300)
    clock.advance(51)
    assert send(state, first)["errcode"] == 40001
    assert send(state, second)["errcode"] == 0
    assert send(state, third)["errcode"] == 0


def test_dedup_entries_are_pruned_after_the_window() -> None:
    state, clock, events = make_state()
    access = (
        WeChatCalls(state).stable_token(
            orjson.dumps({"grant_type": "client_credential", "appid": APPID, "secret": SECRET})
        )
    )["access_token"]
    first = send(state, access, client_msg_id="x")
    assert send(state, access, client_msg_id="x")["msgid"] == first["msgid"]
    clock.advance(601)
    second = send(state, access, client_msg_id="y")
    assert len(state.client_msg_ids) == 1  # "x" expired and was dropped on the way
    assert second["msgid"] == first["msgid"] + 1
    assert [e.msgid for e in events] == [first["msgid"], second["msgid"]]


def test_events_carry_the_delivery_status() -> None:
    state, _, events = make_state()
    access = token(state)
    send(state, access)
    send(state, access, touser="o_b")
    assert [(e.event, e.openid, e.status) for e in events] == [
        ("TEMPLATESENDJOBFINISH", "o_a", "success"),
        ("TEMPLATESENDJOBFINISH", "o_b", "failed:user block"),
    ]


def test_follow_events() -> None:
    state, _, events = make_state()
    state.set_user_state("o_a", "unfollowed")
    state.set_user_state("o_a", "following")
    state.set_user_state("o_b", "following")  # unblock: silent
    state.put_user(UserSpec(openid="o_new"))
    state.set_user_state("o_a", "unfollowed", notify=False)
    assert [(e.event, e.openid) for e in events] == [
        ("unsubscribe", "o_a"),
        ("subscribe", "o_a"),
        ("subscribe", "o_new"),
    ]
    state.update_config({"notify_follow_events": False})
    state.set_user_state("o_a", "following")
    assert len(events) == 3


def test_message_store_is_capped_but_counts_stay_exact() -> None:
    state, _, _ = make_state(max_messages=10)
    access = token(state)
    for _ in range(25):
        assert send(state, access)["errcode"] == 0
    assert len(state.messages) <= 10
    assert state.stats.template_sends_accepted == 25
    listing = state.messages.query(openid="o_a", limit=100)
    assert listing["total"] == len(state.messages)
    assert listing["items"][-1]["msgid"] == 1_000_000_025


def test_errmsg_without_rid() -> None:
    state, _, _ = make_state(errmsg_rid=False)
    assert send(state, "nope") == {"errcode": 40014, "errmsg": "invalid access_token"}


@pytest.mark.parametrize(
    ("key", "limit"),
    [
        ("thing1", 20),
        ("thing12", 20),
        ("number2", 32),
        ("character_string3", 32),
        ("phrase4", 5),
        ("phone_number5", 17),
        ("car_number6", 8),
        ("name7", 10),
        ("mystery8", 20),
    ],
)
def test_subscribe_key_limits(key: str, limit: int) -> None:
    assert subscribe_key_rule(key)[0] == limit


def test_subscribe_template_patterns() -> None:
    spec = TemplateSpec(
        template_id="S", kind="subscribe", keys=["number1", "letter2", "character_string3"]
    )
    template = Template.from_spec(spec, 200)
    template.validate(
        {
            "number1": {"value": "12.5"},
            "letter2": {"value": "abc"},
            "character_string3": {"value": "A-1_b"},
        }
    )
    with pytest.raises(Exception, match=r"data\.letter2\.value invalid"):
        template.validate(
            {
                "number1": {"value": "1"},
                "letter2": {"value": "ab1"},
                "character_string3": {"value": "x"},
            }
        )


def test_event_xml_and_signature() -> None:
    event = CallbackEvent("TEMPLATESENDJOBFINISH", "o_]]>x", 1_700_000_000, 42, "success")
    parsed = xmltodict.parse(render_event_xml(event, "gh_1"))["xml"]
    assert parsed == {
        "ToUserName": "gh_1",
        "FromUserName": "o_]]>x",
        "CreateTime": "1700000000",
        "MsgType": "event",
        "Event": "TEMPLATESENDJOBFINISH",
        "MsgID": "42",
        "Status": "success",
    }
    expected = hashlib.sha1(b"".join(sorted([b"tok", b"123", b"456"]))).hexdigest()
    assert sign("tok", "123", "456") == expected


def test_first_and_last_send_times_outlive_the_message_log() -> None:
    state, clock, _ = make_state(max_messages=10)
    access = token(state)
    started = clock.now()
    for _ in range(25):
        assert send(state, access)["errcode"] == 0
        clock.advance(1)
    stats = state.stats.to_json()
    assert state.messages.get(1_000_000_001) is None  # dropped from the log
    assert (stats["first_send_at"], stats["last_send_at"]) == (started, started + 24)


def test_a_shortened_window_lets_later_pairs_expire_by_their_own_time() -> None:
    state, clock, _ = make_state()
    access = token(state)
    first = send(state, access, client_msg_id="x")["msgid"]
    state.update_config({"client_msg_id_ttl_seconds": 10})
    second = send(state, access, client_msg_id="y")["msgid"]
    clock.advance(11)
    assert send(state, access, client_msg_id="x")["msgid"] == first  # its 600 s still run
    assert send(state, access, client_msg_id="y")["msgid"] == second + 1
    assert send(state, access, touser="o_b", client_msg_id="x")["msgid"] == second + 2
