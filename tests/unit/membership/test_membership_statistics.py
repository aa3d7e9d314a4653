"""Rolling per-union figures up the tree: every node totals its whole subtree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.membership.domain import DomainError, roll_up

TREE: list[tuple[str, str | None]] = [
    ("city", None),
    ("qiaocheng", "city"),
    ("guoyang", "city"),
    ("u1", "qiaocheng"),
    ("u2", "qiaocheng"),
    ("u3", "guoyang"),
    ("organ", "city"),  # the federation staff's own union, straight under the city
]
COUNTS = {
    "u1": {"members": 120, "migrant_worker": 80, "new_members": 12, "new_unions": 1},
    "u2": {"members": 30, "woman": 18},
    "u3": {"members": 200, "migrant_worker": 150, "new_members": 40},
    "organ": {"members": 45, "woman": 20},
}


def test_each_node_totals_its_subtree() -> None:
    totals = roll_up(TREE, COUNTS)
    assert totals["u1"] == COUNTS["u1"]
    assert totals["qiaocheng"] == {
        "members": 150,
        "migrant_worker": 80,
        "new_members": 12,
        "new_unions": 1,
        "woman": 18,
    }
    assert totals["guoyang"] == COUNTS["u3"]
    assert totals["city"] == {
        "members": 395,
        "migrant_worker": 230,
        "new_members": 52,
        "new_unions": 1,
        "woman": 38,
    }


def test_a_federation_own_figures_are_counted_too() -> None:
    totals = roll_up(TREE, {**COUNTS, "qiaocheng": {"new_unions": 2}})
    assert totals["qiaocheng"]["new_unions"] == 3
    assert totals["city"]["new_unions"] == 3


def test_nodes_without_figures_total_zero() -> None:
    assert roll_up([("city", None), ("q", "city")], {}) == {"city": {}, "q": {}}


@pytest.mark.parametrize(
    ("tree", "counts", "field"),
    [
        ([("city", None), ("u", "nowhere")], {}, "parent_id"),
        ([("city", None), ("a", "b"), ("b", "a")], {}, "parent_id"),
        ([("city", None), ("city", None)], {}, "organisation_id"),
        ([("city", None)], {"ghost": {"members": 1}}, "organisation_id"),
    ],
)
def test_a_broken_tree_is_refused(
    tree: list[tuple[str, str | None]], counts: dict[str, dict[str, int]], field: str
) -> None:
    with pytest.raises(DomainError) as caught:
        roll_up(tree, counts)
    assert caught.value.field == field


@given(st.lists(st.integers(0, 50), min_size=1, max_size=40), st.data())
def test_the_root_holds_the_sum_of_everything(members: list[int], data: st.DataObject) -> None:
    # Node i hangs under some earlier node, so every generated tree is a real tree.
    tree: list[tuple[str, str | None]] = [("n0", None)]
    for i in range(1, len(members)):
        tree.append((f"n{i}", f"n{data.draw(st.integers(0, i - 1))}"))
    counts = {f"n{i}": {"members": m} for i, m in enumerate(members)}
    totals = roll_up(tree, counts)
    assert totals["n0"]["members"] == sum(members)
    for org, parent in tree:
        if parent is not None:
            assert totals[parent]["members"] >= totals[org]["members"]
