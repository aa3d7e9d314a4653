"""The notification rules: which event sends which WeChat template to whom, loaded from rules.yaml.

Pure: ``load_rules`` takes the file's text and returns a validated ``RuleSet`` or raises one
``RulesError`` listing every problem, so a bad edit is reported in full and never half-applied.

Template values are patterns over the event's fields (see ``patterns.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

# Every producer's events, so a rule is checked against the same catalogue whichever modules the
# process happened to import before loading the rules.
import shared.events.catalogue
import shared.events.membership
import shared.events.mutual_aid
import shared.events.training  # noqa: F401
from services.notifications.patterns import Pattern, PatternError, parse_pattern
from shared.events.base import CATALOGUE


class Category(StrEnum):
    """What a message is about: a member may opt out of a category (not of mandatory messages)."""

    MEMBERSHIP = "membership"
    MUTUAL_AID = "mutual_aid"
    TRAINING = "training"
    ANNOUNCEMENTS = "announcements"


CATEGORIES = frozenset(Category)

# Fields the service adds from its own read model: events carry ids, members want names.
CONTEXT_FIELDS = frozenset({"member_name", "union_name"})


@dataclass(frozen=True)
class Template:
    """A WeChat template as registered on the official account: its id and its data keys."""

    name: str
    template_id: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    name: str
    event_type: str
    # Dotted path into the event data naming the member to notify, e.g. ``member_id``.
    recipient: str
    category: str
    template: Template
    data: Mapping[str, Pattern]
    url: Pattern | None = None
    # Messages members must get whatever their preferences (e.g. a decision on their claim).
    mandatory: bool = False

    @property
    def checked_on_load(self) -> bool:
        """Whether placeholders were checked against the catalogue (else only at render time)."""
        return self.event_type in CATALOGUE


@dataclass(frozen=True)
class RuleSet:
    version: str
    templates: Mapping[str, Template]
    rules: tuple[Rule, ...]
    _by_event: Mapping[str, tuple[Rule, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_event: dict[str, tuple[Rule, ...]] = {}
        for rule in self.rules:
            by_event[rule.event_type] = (*by_event.get(rule.event_type, ()), rule)
        object.__setattr__(self, "_by_event", by_event)

    def for_event(self, event_type: str) -> tuple[Rule, ...]:
        return self._by_event.get(event_type, ())

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._by_event)

    def rule(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)


class RulesError(ValueError):
    """rules.yaml is not valid; ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            f"rules.yaml has {len(problems)} problem(s):\n" + "\n".join(f"- {p}" for p in problems)
        )


_TOP_KEYS = {"version", "templates", "rules"}
_TEMPLATE_KEYS = {"template_id", "keys"}
_RULE_KEYS = {"name", "event", "recipient", "category", "template", "url", "data", "mandatory"}


def load_rules(text: str) -> RuleSet:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RulesError([f"not valid YAML: {e}"]) from None
    if not isinstance(doc, dict):
        raise RulesError(["the file must be a mapping with version, templates and rules"])

    problems: list[str] = []
    problems += [f"unknown top-level key {k!r}" for k in sorted(set(doc) - _TOP_KEYS, key=str)]
    version = doc.get("version")
    if version is None or str(version).strip() == "":
        problems.append("version is missing")
    templates = _load_templates(doc.get("templates"), problems)
    rules = _load_rules(doc.get("rules"), templates, problems)
    if problems:
        raise RulesError(problems)
    return RuleSet(str(version), templates, tuple(rules))


def _load_templates(raw: Any, problems: list[str]) -> dict[str, Template]:
    if not isinstance(raw, dict) or not raw:
        problems.append("templates must be a non-empty mapping of name to {template_id, keys}")
        return {}
    templates: dict[str, Template] = {}
    for name, spec in raw.items():
        where = f"template {name!r}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be a mapping with template_id and keys")
            continue
        problems += [f"{where}: unknown key {k!r}" for k in sorted(set(spec) - _TEMPLATE_KEYS)]
        template_id = spec.get("template_id")
        if not isinstance(template_id, str) or not template_id.strip():
            problems.append(f"{where}: template_id is missing")
            continue
        keys = spec.get("keys")
        if (
            not isinstance(keys, list)
            or not keys
            or not all(isinstance(k, str) and k for k in keys)
        ):
            problems.append(f"{where}: keys must be a non-empty list of data key names")
            continue
        if len(set(keys)) != len(keys):
            problems.append(f"{where}: keys are repeated")
            continue
        templates[str(name)] = Template(str(name), template_id.strip(), tuple(keys))
    return templates


def _load_rules(raw: Any, templates: dict[str, Template], problems: list[str]) -> list[Rule]:
    if not isinstance(raw, list):
        problems.append("rules must be a list")
        return []
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, spec in enumerate(raw):
        if not isinstance(spec, dict):
            problems.append(f"rule #{index + 1}: must be a mapping")
            continue
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"rule #{index + 1}: name is missing")
            name = f"#{index + 1}"
        elif name in seen:
            problems.append(f"rule {name!r}: the name is used by another rule")
        seen.add(name)
        rule = _load_rule(name, spec, templates, problems)
        if rule is not None:
            rules.append(rule)
    return rules


def _load_rule(
    name: str, spec: dict[str, Any], templates: dict[str, Template], problems: list[str]
) -> Rule | None:
    where = f"rule {name!r}"
    before = len(problems)
    problems += [f"{where}: unknown key {k!r}" for k in sorted(set(spec) - _RULE_KEYS)]

    event_type = spec.get("event")
    if not isinstance(event_type, str) or not event_type:
        problems.append(f"{where}: event (the event type) is missing")
        event_type = ""
    event_class = CATALOGUE.get(event_type)
    event_fields = set(event_class.model_fields) if event_class is not None else None

    recipient = spec.get("recipient", "member_id")
    if not isinstance(recipient, str) or not recipient:
        problems.append(f"{where}: recipient must be a field path such as member_id")
        recipient = ""
    elif event_fields is not None and recipient.split(".")[0] not in event_fields:
        problems.append(f"{where}: recipient {recipient!r} is not a field of {event_type}")

    category = spec.get("category")
    if category not in CATEGORIES:
        problems.append(
            f"{where}: unknown category {category!r} (known: {', '.join(sorted(CATEGORIES))})"
        )

    mandatory = spec.get("mandatory", False)
    if not isinstance(mandatory, bool):
        problems.append(f"{where}: mandatory must be true or false")

    template_name = spec.get("template")
    template = templates.get(template_name) if isinstance(template_name, str) else None
    if template is None:
        problems.append(f"{where}: template {template_name!r} is not declared under templates")

    def pattern(source: Any, at: str) -> Pattern | None:
        if not isinstance(source, str):
            problems.append(f"{where}: {at} must be a string")
            return None
        try:
            parsed = parse_pattern(source)
        except PatternError as e:
            problems.append(f"{where}: {at}: {e}")
            return None
        if event_fields is not None:
            for p in parsed.placeholders:
                if p.name not in event_fields and p.name not in CONTEXT_FIELDS:
                    problems.append(
                        f"{where}: {at}: field {p.name!r} is not in {event_type} "
                        f"(fields: {', '.join(sorted(event_fields))}; "
                        f"context: {', '.join(sorted(CONTEXT_FIELDS))})"
                    )
        return parsed

    data_spec = spec.get("data")
    data: dict[str, Pattern] = {}
    if not isinstance(data_spec, dict) or not data_spec:
        problems.append(f"{where}: data must be a mapping of template key to pattern")
    else:
        for key, source in data_spec.items():
            parsed = pattern(source, f"data.{key}")
            if parsed is not None:
                data[str(key)] = parsed
        if template is not None:
            missing = [k for k in template.keys if k not in data_spec]
            extra = [str(k) for k in data_spec if k not in template.keys]
            if missing or extra:
                problems.append(
                    f"{where}: data keys do not match template {template.name!r} "
                    f"(declared: {', '.join(template.keys)}; "
                    f"missing: {', '.join(missing) or '-'}; undeclared: {', '.join(extra) or '-'})"
                )

    url = None
    if spec.get("url") is not None:
        url = pattern(spec["url"], "url")

    if len(problems) > before or template is None:
        return None
    return Rule(
        name=name,
        event_type=event_type,
        recipient=recipient,
        category=str(category),
        template=template,
        data=data,
        url=url,
        mandatory=bool(mandatory),
    )
