"""The shipped rules.yaml renders every catalogued event it names, whatever the event holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.notifications.domain import VALUE_LIMIT, render
from services.notifications.rules import Rule, load_rules
from shared.events.base import CATALOGUE

RULES = load_rules(
    (Path(__file__).parents[3] / "services/notifications/rules.yaml").read_text(encoding="utf-8")
)
CATALOGUED = [r for r in RULES.rules if r.checked_on_load]
CONTEXT = {"member_name": "王芳", "union_name": "市总工会"}


def test_every_rule_is_checked_against_the_catalogue() -> None:
    assert {r.name for r in RULES.rules if not r.checked_on_load} == set()


@pytest.mark.parametrize("rule", CATALOGUED, ids=lambda r: r.name)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_each_catalogued_rule_renders_any_valid_event(rule: Rule, data: st.DataObject) -> None:
    event = data.draw(st.builds(CATALOGUE[rule.event_type]))
    msg = render(rule, event.model_dump(mode="json"), CONTEXT, event_id="evt-1", openid="oMEMBER")
    assert set(msg.data) == set(rule.template.keys)
    assert all(len(v["value"]) <= VALUE_LIMIT for v in msg.data.values())
    assert msg.template_id == rule.template.template_id
