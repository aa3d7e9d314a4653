"""Reading an object of arrays a few elements at a time gives what ``json.loads`` gives for the
same text, or says it is not plain (and the caller parses it whole): never anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.training.viewing_json import NotPlain, arrays

NAMES = ("report_ids", "member_ids", "minutes")


def read(text: str, size: int = 2) -> dict[str, list[Any]]:
    """The object as read in runs of ``size``; each run is full but a column's last."""
    found: dict[str, list[list[Any]]] = {}
    for name, run in arrays(text, NAMES, size):
        found.setdefault(name, []).append(run)
    for runs in found.values():
        assert all(len(run) == size for run in runs[:-1]) and 1 <= len(runs[-1]) <= size
    return {name: [v for run in runs for v in run] for name, runs in found.items()}


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types throughout (1 == 1.0 == True would hide a difference),
    NaN included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return repr(a) == repr(b)


READ_AS_JSON_LOADS = [
    '{"report_ids":["a","b","c"],"member_ids":["m","n","o"],"minutes":[1,2,3]}',
    json.dumps({"minutes": [1, 2, 3], "report_ids": ["a", "b", "c"]}, indent=2),
    ' \t\r\n{ \n"report_ids" \t: \r[ "a" ,\n"b" \t]\r\n, "minutes":[ 1 ] } \n\t ',
    r'{"report_ids": ["a\"b", "\\", "\/", "\b\f\n\r\t", "\u00e9", "\u5de5\u4f1a"]}',
    r'{"report_ids": ["\ud83d\ude00", "\ud800", "\udfff x", "😀 工会"]}',
    r'{"report\u005fids": ["a"], "min\u0075tes": [1]}',  # escaped keys
    '{"minutes": [1e2, 1.0, -0, -0.0, 1E+2, 2e-1, 123456789012345678901234567890]}',
    '{"minutes": [true, false, null, NaN, Infinity, -Infinity, "60", " 60 "]}',
    '{"minutes": [[], {}, [1, [2, {"a": [null]}]], {"x": {"y": "z"}}, {"k": 1, "k": 2}]}',
    '{"member_ids": ["' + "x" * 5000 + '", "\\u0000", ""]}',
    '{"minutes": [' + ",".join(["7"] * 9) + "]}",  # runs of two: four full, one of one
    # compact runs (read by one match) next to elements that are not
    '{"report_ids":["a","b\\"c","d","","\x7f","工","e"],"minutes":[1,-0,0,-12,2.5,3,2e3,4]}',
    '{"report_ids":["a",1,"b",null,"c"],"minutes":[1,"2",3,[4],5,true,6,100000000000000000000]}',
    '{"report_ids":["a","b" ,"c", "d","e"\n,"f"],"minutes":[1,2 ,3, 4,5\t]}',
]


@pytest.mark.parametrize("text", READ_AS_JSON_LOADS)
@pytest.mark.parametrize("size", [1, 2, 3, 2000])
def test_a_plain_object_is_read_element_by_element_exactly_as_json_loads(
    text: str, size: int
) -> None:
    assert same(read(text, size), json.loads(text))


NOT_PLAIN = [
    "",
    "   ",
    "[]",
    '["report_ids"]',
    "{}",
    '"report_ids"',
    "null",
    '\ufeff{"minutes": [1]}',  # a BOM: json.loads refuses it
    '{"minutes": [1], "minutes": [2]}',  # json.loads keeps the last: parsed whole
    '{"minutes": [1], "reports": []}',
    '{"minutes": [1], "class_id": "x"}',
    '{"minutes": []}',
    '{"minutes": null}',
    '{"minutes": "1"}',
    '{"minutes": {"a": 1}}',
    '{"minutes": [1,]}',
    '{"minutes": [1],}',
    '{"minutes": [,1]}',
    '{"minutes": [1 2]}',
    '{"minutes": [1]',
    '{"minutes": [1',
    '{"minutes": [',
    '{"minutes": [1]} x',
    '{"minutes": [1]}{}',
    '{"minutes" [1]}',
    '{"minutes";[1]}',
    '{"minutes"[[1]]}',
    "{'minutes': [1]}",
    "{minutes: [1]}",
    '{"minutes": [01]}',
    '{"minutes": [1,01]}',
    '{"minutes": [1,2,-]}',
    '{"minutes": [1,2,-01]}',
    '{"minutes": [1,2,3 4]}',
    '{"minutes": [1,2,]}',
    '{"report_ids": ["a","b","c" "d"]}',
    '{"report_ids": ["a","b\tc"]}',
    '{"report_ids": ["a","b"]"c"}',
    '{"minutes": [1.]}',
    '{"minutes": [+1]}',
    '{"minutes": [nan]}',
    '{"minutes": [tru]}',
    '{"report_ids": ["a\nb"]}',  # a raw control character: json.loads is strict
    '{"report_ids": ["a\\x"]}',
    '{"report_ids": ["\\u12"]}',
    '{"report_ids": ["open]}',
    '{"minutes":\f[1]}',  # form feed, vertical tab, no-break space: not JSON's whitespace
    '{"minutes":\v[1]}',
    '{"minutes":\xa0[1]}',
    '{"minutes": [1]}\x00',
    '{"minutes": [' + "[" * 100_000 + "]" * 100_000 + "]}",  # too deep for json.loads too
    '{"minutes": [1' + "0" * 5000 + "]}",  # beyond int's 4,300 digits, as json.loads refuses
]


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_anything_else_is_not_plain(text: str) -> None:
    with pytest.raises(NotPlain):
        read(text)


def test_a_refusal_may_come_after_runs_already_read() -> None:
    """The caller drops what it packed: the runs before the fault are no answer."""
    runs = arrays('{"minutes": [1, 2, 3, oops]}', NAMES, 2)
    assert next(runs) == ("minutes", [1, 2])
    with pytest.raises(NotPlain):
        next(runs)


ELEMENTS = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Objects of some of the three columns, now and then with another key, an empty column or
    one not a list, written compact or spread out, ASCII-escaped or not."""
    elements = draw(st.sampled_from([ELEMENTS, st.text(max_size=4), st.integers()]))
    columns: dict[str, Any] = draw(
        st.dictionaries(
            st.sampled_from(NAMES), st.lists(elements, min_size=1, max_size=6), min_size=1
        )
    )
    odd = draw(st.sampled_from(["", "", "", "reports", "x", "empty", "number"]))
    if odd in ("reports", "x"):
        columns[odd] = []
    elif odd:
        columns[draw(st.sampled_from(list(columns)))] = [] if odd == "empty" else 1
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", "\t:\r")]))
    indent = draw(st.sampled_from([None, 0, 2, "\t"]))
    ascii_only = draw(st.booleans())
    text = json.dumps(columns, separators=separators, indent=indent, ensure_ascii=ascii_only)
    return draw(st.sampled_from(["", " ", "\n\t"])) + text + draw(st.sampled_from(["", "\r\n"]))


class _Pairs(list[tuple[str, Any]]):
    """An object's keys and values in order, a repeated key included."""


def plain(text: str) -> bool:
    """Whether json.loads reads the text as an object of non-empty arrays under distinct
    names among NAMES."""
    try:
        top = json.loads(text, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return False
    names = [name for name, _ in top] if isinstance(top, _Pairs) else []
    return (
        bool(names)
        and len(set(names)) == len(names)
        and set(names) <= set(NAMES)
        and all(type(value) is list and value for _, value in top)
    )


def agrees(text: str) -> None:
    """Read as json.loads reads it, or not plain, and then only when it is not."""
    try:
        found = read(text, 2)
    except NotPlain:
        assert not plain(text)
        return
    assert same(found, json.loads(text))


@settings(max_examples=400, deadline=None)
@given(documents())
def test_any_document_is_read_as_json_loads_reads_it_or_is_not_plain(text: str) -> None:
    agrees(text)


@settings(max_examples=400, deadline=None)
@given(documents(), st.data())
def test_a_damaged_document_is_read_as_json_loads_reads_it_or_is_not_plain(
    text: str, data: st.DataObject
) -> None:
    """A character dropped, doubled or replaced by one of JSON's own, anywhere or where JSON's
    punctuation is."""
    punctuation = [at for at, c in enumerate(text) if c in '{}[],:"']
    at = data.draw(st.integers(min_value=0, max_value=len(text)) | st.sampled_from(punctuation))
    edit = data.draw(st.sampled_from(["drop", "double", *'{}[],:"\\ 0e-.\n\x00']))
    if edit == "drop":
        text = text[:at] + text[at + 1 :]
    elif edit == "double":
        text = text[: at + 1] + text[at:]
    else:
        text = text[:at] + edit + text[at + 1 :]
    agrees(text)
