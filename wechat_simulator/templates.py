"""The template library and WeChat's rules for template data: pure, no I/O.

Template messages (``/cgi-bin/message/template/send``) take free text up to a length per key;
subscription messages (``/cgi-bin/message/subscribe/bizsend``) type each key by its name prefix
(``thing1`` is at most 20 characters, ``number2`` digits only, ...). A breach is 47003 with an
errmsg that names the offending field, as WeChat does, so a client can log which value to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import TemplateKind, TemplateSpec
from .errors import ARGUMENT_INVALID, INVALID_TEMPLATE_ID, WeChatError

# Subscription-message key types: (maximum length, pattern the value must match or None).
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_LETTER = re.compile(r"^[A-Za-z]+$")
_CHARACTER_STRING = re.compile(r"^[\x21-\x7e]+$")
SUBSCRIBE_KEY_RULES: dict[str, tuple[int, re.Pattern[str] | None]] = {
    "thing": (20, None),
    "number": (32, _NUMBER),
    "letter": (32, _LETTER),
    "symbol": (5, None),
    "character_string": (32, _CHARACTER_STRING),
    "time": (32, None),
    "date": (32, None),
    "amount": (32, None),
    "phone_number": (17, None),
    "car_number": (8, None),
    "name": (10, None),
    "phrase": (5, None),
    "const": (20, None),
}
_KEY_PREFIX = re.compile(r"^([a-z_]+?)\d*$")


def subscribe_key_rule(key: str) -> tuple[int, re.Pattern[str] | None]:
    match = _KEY_PREFIX.match(key)
    prefix = match.group(1) if match else key
    # An unknown type prefix gets the loosest subscription limit rather than a rejection, so a
    # template registered with an unusual key name still works.
    return SUBSCRIBE_KEY_RULES.get(prefix, (20, None))


@dataclass(frozen=True, slots=True)
class Template:
    template_id: str
    kind: TemplateKind
    keys: tuple[str, ...]
    required: frozenset[str]
    max_len: dict[str, int]
    patterns: dict[str, re.Pattern[str]]
    title: str

    @classmethod
    def from_spec(cls, spec: TemplateSpec, template_value_max_len: int) -> Template:
        key_limits: dict[str, int | None] = (
            dict.fromkeys(spec.keys) if isinstance(spec.keys, list) else dict(spec.keys)
        )
        max_len: dict[str, int] = {}
        patterns: dict[str, re.Pattern[str]] = {}
        for key, limit in key_limits.items():
            if spec.kind == "subscribe":
                default_len, pattern = subscribe_key_rule(key)
                if pattern is not None:
                    patterns[key] = pattern
            else:
                default_len = template_value_max_len
            max_len[key] = limit if limit is not None else default_len
        keys = tuple(key_limits)
        return cls(
            template_id=spec.template_id,
            kind=spec.kind,
            keys=keys,
            required=frozenset(keys) - frozenset(spec.optional_keys),
            max_len=max_len,
            patterns=patterns,
            title=spec.title,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "kind": self.kind,
            "keys": {key: self.max_len[key] for key in self.keys},
            "optional_keys": sorted(set(self.keys) - self.required),
            "title": self.title,
        }

    def validate(self, data: Any) -> None:
        """Raise 47003 naming the first field that breaks the template's rules."""
        if not isinstance(data, dict):
            raise _invalid("data is not an object")
        for key in self.keys:
            if key in self.required and key not in data:
                raise _invalid(f"data.{key}.value is empty")
        for key, item in data.items():
            limit = self.max_len.get(key)
            if limit is None:
                raise _invalid(f"data.{key} is not a field of template {self.template_id}")
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                raise _invalid(f"data.{key}.value is empty")
            if not value and (key in self.required or self.kind == "subscribe"):
                raise _invalid(f"data.{key}.value is empty")
            if len(value) > limit:
                raise _invalid(f"data.{key}.value exceeds limit {limit}")
            pattern = self.patterns.get(key)
            if pattern is not None and value and not pattern.match(value):
                raise _invalid(f"data.{key}.value invalid")


def _invalid(detail: str) -> WeChatError:
    return WeChatError(ARGUMENT_INVALID, f"argument invalid! {detail}")


class TemplateLibrary:
    """The templates the account added, by id."""

    def __init__(self) -> None:
        self._templates: dict[str, Template] = {}

    def put(self, spec: TemplateSpec, template_value_max_len: int) -> Template:
        template = Template.from_spec(spec, template_value_max_len)
        self._templates[spec.template_id] = template
        return template

    def delete(self, template_id: str) -> bool:
        return self._templates.pop(template_id, None) is not None

    def all(self) -> Iterable[Template]:
        return self._templates.values()

    def get(self, template_id: Any, kind: TemplateKind) -> Template:
        """The template a send names; 40037 when unknown or of the other kind."""
        template = self._templates.get(template_id) if isinstance(template_id, str) else None
        if template is None or template.kind != kind:
            raise WeChatError(INVALID_TEMPLATE_ID)
        return template
