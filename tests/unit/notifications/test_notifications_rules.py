"""Loading and validating rules.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notifications.patterns import PatternError, Placeholder, parse_pattern
from services.notifications.rules import RulesError, load_rules

SHIPPED = Path(__file__).parents[3] / "services" / "notifications" / "rules.yaml"

WELCOME = """
version: 7
templates:
  welcome:
    template_id: "TPL-WELCOME"
    keys: [first, keyword1]
rules:
  - name: joined
    event: gonghui.membership.member.joined
    category: membership
    template: welcome
    data:
      first: "{name}，欢迎加入{union_name}"
      keyword1: "{card_number}"
"""


def problems_of(text: str) -> tuple[str, ...]:
    with pytest.raises(RulesError) as caught:
        load_rules(text)
    return caught.value.problems


def test_the_shipped_rules_load() -> None:
    rules = load_rules(SHIPPED.read_text(encoding="utf-8"))
    assert len(rules.rules) == 13
    assert {r.name for r in rules.for_event("gonghui.membership.member.joined")} == {
        "member_joined_welcome"
    }


def test_claim_decisions_are_mandatory_but_receipt_is_not() -> None:
    rules = load_rules(SHIPPED.read_text(encoding="utf-8"))
    assert rules.rule("claim_approved").mandatory
    assert rules.rule("claim_rejected").mandatory
    assert rules.rule("claim_paid").mandatory
    assert not rules.rule("claim_received").mandatory
    assert not rules.rule("member_joined_welcome").mandatory


def test_a_valid_file_gives_rules_with_templates_and_patterns() -> None:
    rules = load_rules(WELCOME)
    assert rules.version == "7"
    rule = rules.rule("joined")
    assert rule.template.template_id == "TPL-WELCOME"
    assert rule.recipient == "member_id"
    assert rule.category == "membership"
    assert rule.checked_on_load
    assert rule.data["keyword1"].placeholders == (Placeholder("card_number"),)
    assert rules.for_event("gonghui.membership.card.issued") == ()


def test_a_placeholder_naming_no_field_of_a_catalogued_event_is_an_error() -> None:
    (problem,) = problems_of(WELCOME.replace("{card_number}", "{card_no}"))
    assert "rule 'joined'" in problem
    assert "'card_no'" in problem
    assert "gonghui.membership.member.joined" in problem


def test_an_uncatalogued_event_type_is_allowed_and_checked_at_render_time() -> None:
    rules = load_rules(
        WELCOME.replace(
            "gonghui.membership.member.joined", "gonghui.future.thing.happened"
        ).replace("{card_number}", "{anything_at_all}")
    )
    assert not rules.rule("joined").checked_on_load


def test_a_missing_template_id_is_an_error() -> None:
    problems = problems_of(WELCOME.replace('template_id: "TPL-WELCOME"', 'template_id: ""'))
    assert any("template 'welcome': template_id is missing" in p for p in problems)


def test_data_keys_must_match_the_templates_declared_keys() -> None:
    text = WELCOME.replace("keyword1: ", "keyword9: ")
    (problem,) = problems_of(text)
    assert "rule 'joined'" in problem
    assert "missing: keyword1" in problem
    assert "undeclared: keyword9" in problem


def test_an_unknown_category_is_an_error() -> None:
    (problem,) = problems_of(WELCOME.replace("category: membership", "category: gossip"))
    assert "unknown category 'gossip'" in problem


def test_every_problem_is_listed_at_once() -> None:
    text = (
        WELCOME.replace("category: membership", "category: gossip")
        .replace("{card_number}", "{card_no}")
        .replace("version: 7\n", "")
    )
    problems = problems_of(text)
    assert len(problems) == 3
    with pytest.raises(RulesError, match="3 problem"):
        load_rules(text)


def test_a_rule_must_name_a_declared_template() -> None:
    (problem,) = problems_of(WELCOME.replace("template: welcome", "template: farewell"))
    assert "template 'farewell' is not declared" in problem


def test_rule_names_are_unique() -> None:
    rule = WELCOME.split("rules:\n")[1]
    problems = problems_of(WELCOME + rule)
    assert any("used by another rule" in p for p in problems)


def test_the_recipient_must_be_a_field_of_a_catalogued_event() -> None:
    text = WELCOME.replace(
        "category: membership", "recipient: union_name\n    category: membership"
    )
    (problem,) = problems_of(text)
    assert "recipient 'union_name'" in problem


def test_unknown_keys_are_reported_as_likely_typos() -> None:
    problems = problems_of(WELCOME.replace("category: membership", "categroy: membership"))
    assert problems == (
        "rule 'joined': unknown key 'categroy'",
        "rule 'joined': unknown category None "
        "(known: announcements, membership, mutual_aid, training)",
    )


@pytest.mark.parametrize(
    "text",
    ["version: [", "just a string", "version: 1\ntemplates: {}\nrules: []"],
)
def test_a_malformed_file_is_a_rules_error(text: str) -> None:
    assert problems_of(text)


@pytest.mark.parametrize(
    "pattern",
    [
        "{name.__class__}",
        "{name[0]}",
        "{name!r}",
        "{name:>300}",
        "{}",
        "{0}",
        "{amount_fen|eval}",
        "{name",
        "name}",
    ],
)
def test_placeholders_can_only_name_fields(pattern: str) -> None:
    with pytest.raises(PatternError):
        parse_pattern(pattern)
    problems = problems_of(WELCOME.replace('"{card_number}"', repr(pattern).replace("'", '"')))
    assert any("data.keyword1" in p for p in problems)


def test_a_pattern_keeps_literal_text_and_escaped_braces() -> None:
    pattern = parse_pattern("{{卡号}}：{card_number}，金额{amount_fen|yuan}元")
    assert pattern.parts == (
        "{卡号}：",
        Placeholder("card_number"),
        "，金额",
        Placeholder("amount_fen", "yuan"),
        "元",
    )
