"""A JSON object of arrays read a few elements at a time, each element exactly as ``json.loads``
reads it.

A lecture's 300,000-line export in columns is 9.6 MB of text that ``json.loads`` turns into about
45 MB of Python objects at once. Read here, a column's elements come ``size`` at a time, so the
caller can check and pack each run before the next is read and the whole lists never exist.

Every element is read by the json module's own scanner: the C function ``json.loads`` calls for
each value of an array or object. What lies between the elements (whitespace: space, tab,
newline, carriage return; commas, colons, brackets) follows the rules of the module's object and
array parsers, and each key is decoded by the same scanner. So whatever is read here is what
``json.loads`` gives for the same text. Anything else raises :class:`NotPlain` (the caller then
parses the text whole, whose answer, a refusal included, stays what it always was): a document
that is not one object, a key outside ``names`` or given twice, a value that is not a non-empty
array, any syntax error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Generator, Iterator
from typing import Any

# The value at an index and the index after it: the scanner json.loads reads every value with.
_scan = json.JSONDecoder().raw_decode
_WHITESPACE = " \t\n\r"  # json's whitespace, no other
_whitespace = re.compile(r"[ \t\n\r]*")


def _skip(text: str, at: int) -> int:
    """The index of the first character from ``at`` on that is not whitespace."""
    return _whitespace.match(text, at).end()  # type: ignore[union-attr]  # "*" always matches


class NotPlain(Exception):
    """The text is not an object of non-empty arrays under the names asked for (or not JSON)."""


def arrays(text: str, names: Collection[str], size: int) -> Iterator[tuple[str, list[Any]]]:
    """(name, its next ``size`` elements or fewer) for each array of the object, in the text's
    order. Raises :class:`NotPlain`, perhaps after some runs, when the text is not such an
    object."""
    seen: set[str] = set()
    try:
        at = _skip(text, 0)
        if text[at] != "{":
            raise NotPlain
        at = _skip(text, at + 1)
        while True:
            if text[at] != '"':
                raise NotPlain  # an empty object, a trailing comma, a key not a string
            name, at = _scan(text, at)  # a string: decoded as json.loads decodes a key
            if name not in names or name in seen:
                raise NotPlain  # json.loads would keep the last of a repeated key
            seen.add(name)
            at = _skip(text, at)
            if text[at] != ":":
                raise NotPlain
            at = _skip(text, at + 1)
            if text[at] != "[":
                raise NotPlain
            at = yield from _elements(text, name, at + 1, size)
            at = _skip(text, at)
            if text[at] == "}":
                break
            if text[at] != ",":
                raise NotPlain
            at = _skip(text, at + 1)
        if _skip(text, at + 1) != len(text):
            raise NotPlain  # more after the object: json.loads refuses it as extra data
    except (IndexError, ValueError, RecursionError) as e:
        # The text ended early (IndexError), or the scanner found no value or a malformed one
        # (JSONDecodeError, a ValueError), or one nested too deep.
        raise NotPlain from e


def _elements(
    text: str, name: str, at: int, size: int
) -> Generator[tuple[str, list[Any]], None, int]:
    """Yield the array's elements from ``at`` (just after its ``[``) in runs of ``size``; return
    the index after its ``]``. Written for speed: 900,000 elements go through this loop."""
    at = _skip(text, at)
    if text[at] == "]":
        raise NotPlain  # an empty column: refused, and the whole parse names it
    run: list[Any] = []
    while True:
        value, at = _scan(text, at)
        run.append(value)
        if text[at] in _WHITESPACE:
            at = _skip(text, at)
        if text[at] == ",":
            at += 1
            if text[at] in _WHITESPACE:
                at = _skip(text, at)
            if len(run) == size:
                yield name, run
                run = []
        elif text[at] == "]":
            yield name, run
            return at + 1
        else:
            raise NotPlain
