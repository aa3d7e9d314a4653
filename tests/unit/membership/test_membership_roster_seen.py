"""The roster's memory of ID numbers: a flat hash table that must answer as a dict would."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from services.membership.roster import IdNumbersSeen
from tests.support.people import id_number


def test_it_remembers_the_first_row_of_each_number_while_it_grows() -> None:
    seen = IdNumbersSeen(capacity_bits=4)
    numbers = [id_number(serial) for serial in range(20_000)]
    assert all(seen.first_row(n, row) is None for row, n in enumerate(numbers, start=2))
    assert len(seen) == 20_000
    shuffled = random.Random(3).sample(range(20_000), 2_000)
    assert [seen.first_row(numbers[i], 99_999) for i in shuffled] == [i + 2 for i in shuffled]
    assert len(seen) == 20_000
    assert all(n in seen for n in numbers)
    assert id_number(20_000) not in seen


def test_anything_but_an_id_number_is_not_in_it() -> None:
    seen = IdNumbersSeen()
    seen.first_row(id_number(1), 1)
    assert id_number(1) in seen
    for other in ("", "not an id number", id_number(1)[:17], 341602, None):
        assert other not in seen


@given(st.lists(st.integers(min_value=0, max_value=3_000), max_size=400))
def test_it_answers_as_a_dict_would(serials: list[int]) -> None:
    seen = IdNumbersSeen(capacity_bits=2)
    expected: dict[str, int] = {}
    for row, serial in enumerate(serials, start=1):
        number = id_number(serial)
        assert seen.first_row(number, row) == expected.get(number)
        expected.setdefault(number, row)
    assert len(seen) == len(expected)
