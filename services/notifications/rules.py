"""The notification rules: which event sends which WeChat template to whom, loaded from rules.yaml.

Pure: ``load_rules`` takes the file's text and returns a validated ``RuleSet`` or raises one
``RulesError`` listing every problem, so a bad edit is reported in full and never half-applied.
The file's shape is checked by pydantic models (``RulesFile``, ``TemplateSpec``, ``RuleSpec``), a
template and a rule at a time so each problem names the template or rule and the field; the
rule's validators check its patterns against the event in the catalogue and its template's keys.

Template values are patterns over the event's fields (see ``patterns.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    InstanceOf,
    StrictBool,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

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


# ---------------------------------------------------------------- the file's shape

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# YAML reads `version: 2` as a number; any scalar will do as long as it says something.
Version = Annotated[Text, BeforeValidator(lambda v: str(v) if isinstance(v, int | float) else v)]


def _problem(message: str) -> PydanticCustomError:
    # The message rides in the context: a pattern's braces must not be read as placeholders.
    return PydanticCustomError("rules", "{message}", {"message": message})


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RulesFile(_Spec):
    """The whole file; its templates and rules are checked one by one (``TemplateSpec``,
    ``RuleSpec``), so one bad entry does not hide the others' problems."""

    version: Version
    templates: dict[str, Any] = Field(min_length=1)
    rules: list[Any]


class TemplateSpec(_Spec):
    template_id: Text
    keys: list[Text] = Field(min_length=1)

    @field_validator("keys")
    @classmethod
    def _distinct(cls, keys: list[str]) -> list[str]:
        if len(set(keys)) != len(keys):
            raise _problem("keys are repeated")
        return keys


class RuleSpec(_Spec):
    """One rule. Field order matters: the validators of later fields read the event."""

    name: Text
    event: Text
    recipient: Text = "member_id"
    category: Category
    mandatory: StrictBool = False
    template: Text
    url: Annotated[InstanceOf[Pattern], BeforeValidator(lambda s: _parsed(s, "url"))] | None = None
    data: dict[str, Annotated[InstanceOf[Pattern], BeforeValidator(_parsed)]] = Field(min_length=1)

    @field_validator("recipient")
    @classmethod
    def _recipient_in_event(cls, recipient: str, info: ValidationInfo) -> str:
        fields = _event_fields(info)
        if fields is not None and recipient.split(".")[0] not in fields:
            raise _problem(f"recipient {recipient!r} is not a field of {info.data['event']}")
        return recipient

    @field_validator("template")
    @classmethod
    def _declared(cls, name: str, info: ValidationInfo) -> str:
        if name not in _templates(info):
            raise _problem(f"template {name!r} is not declared under templates")
        return name

    @field_validator("url")
    @classmethod
    def _url_fields(cls, url: Pattern | None, info: ValidationInfo) -> Pattern | None:
        if url is not None:
            _check_fields(url, "url", info)
        return url

    @field_validator("data")
    @classmethod
    def _data_fields(cls, data: dict[str, Pattern], info: ValidationInfo) -> dict[str, Pattern]:
        for key, pattern in data.items():
            _check_fields(pattern, f"data.{key}", info)
        template = _templates(info).get(info.data.get("template", ""))
        if template is not None:
            missing = [k for k in template.keys if k not in data]
            extra = [k for k in data if k not in template.keys]
            if missing or extra:
                raise _problem(
                    f"data keys do not match template {template.name!r} (declared:"
                    f" {', '.join(template.keys)}; missing: {', '.join(missing) or '-'};"
                    f" undeclared: {', '.join(extra) or '-'})"
                )
        return data


def _parsed(source: Any, at: str = "") -> Any:
    """A pattern; ``at`` names a field whose problems are not located by key (the url)."""
    prefix = f"{at}: " if at else ""
    if not isinstance(source, str):
        raise _problem(f"{prefix}must be a string")
    try:
        return parse_pattern(source)
    except PatternError as e:
        raise _problem(f"{prefix}{e}") from None


def _templates(info: ValidationInfo) -> Mapping[str, Template]:
    templates: Mapping[str, Template] = (info.context or {}).get("templates", {})
    return templates


def _event_fields(info: ValidationInfo) -> set[str] | None:
    """The catalogued event's fields; None for an event type not (yet) in the catalogue."""
    event = CATALOGUE.get(info.data.get("event", ""))
    return None if event is None else set(event.model_fields)


def _check_fields(pattern: Pattern, at: str, info: ValidationInfo) -> None:
    fields = _event_fields(info)
    if fields is None:
        return  # checked when a message is rendered
    unknown = [p.name for p in pattern.placeholders if p.name not in fields | CONTEXT_FIELDS]
    if unknown:
        raise _problem(
            f"{at}: field {unknown[0]!r} is not in {info.data['event']} (fields:"
            f" {', '.join(sorted(fields))}; context: {', '.join(sorted(CONTEXT_FIELDS))})"
        )


# ---------------------------------------------------------------- loading


def load_rules(text: str) -> RuleSet:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RulesError([f"not valid YAML: {e}"]) from None
    if not isinstance(doc, dict):
        raise RulesError(["the file must be a mapping with version, templates and rules"])
    problems: list[str] = []
    # The top level's problems are listed, and its templates and rules checked all the same.
    file = _validated(RulesFile, doc, "", problems)
    templates = _load_templates(doc.get("templates"), problems)
    rules = _load_rules(doc.get("rules"), templates, problems)
    if problems or file is None:
        raise RulesError(problems)
    return RuleSet(file.version, templates, tuple(rules))


def _load_templates(raw: Any, problems: list[str]) -> dict[str, Template]:
    templates: dict[str, Template] = {}
    for name, spec in (raw or {}).items() if isinstance(raw, dict) else ():
        checked = _validated(TemplateSpec, spec, f"template {name!r}", problems)
        if checked is not None:
            templates[str(name)] = Template(str(name), checked.template_id, tuple(checked.keys))
    return templates


def _load_rules(raw: Any, templates: dict[str, Template], problems: list[str]) -> list[Rule]:
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, spec in enumerate(raw if isinstance(raw, list) else []):
        name = spec.get("name") if isinstance(spec, dict) else None
        where = f"rule {name!r}" if isinstance(name, str) and name else f"rule #{index + 1}"
        if isinstance(name, str) and name in seen:
            problems.append(f"{where}: the name is used by another rule")
        seen.add(str(name))
        checked = _validated(RuleSpec, spec, where, problems, templates=templates)
        if checked is not None:
            rules.append(
                Rule(
                    name=checked.name,
                    event_type=checked.event,
                    recipient=checked.recipient,
                    category=str(checked.category),
                    template=templates[checked.template],
                    data=checked.data,
                    url=checked.url,
                    mandatory=checked.mandatory,
                )
            )
    return rules


M = TypeVar("M", bound=BaseModel)


def _validated(
    model: type[M], raw: Any, where: str, problems: list[str], **context: Any
) -> M | None:
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as e:
        # Unknown keys first: a misspelt key is the likeliest cause of the problems after it.
        errors = sorted(e.errors(), key=lambda error: error["type"] != "extra_forbidden")
        problems.extend(
            f"{where}: {_say(error)}" if where else _say(error, "top-level ") for error in errors
        )
        return None


def _say(error: ErrorDetails, level: str = "") -> str:
    """One problem in the words rules.yaml's editors know: the field, then what is wrong."""
    at = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown {level}key {error['loc'][-1]!r}"
    if at == "category":
        given = None if kind == "missing" else error["input"]
        return f"unknown category {given!r} (known: {', '.join(sorted(CATEGORIES))})"
    if kind in ("missing", "string_too_short"):
        return f"{at} is missing"
    if kind == "rules":  # ours name their field, but for a pattern under its key
        return f"{at}: {error['msg']}" if len(error["loc"]) > 1 else error["msg"]
    if kind == "too_short":
        return f"{at} must not be empty"
    return f"{at}: {error['msg']}" if at else error["msg"]
