"""The federation's yearly figures, rolled up its tree."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping

from shared.errors import Conflict as Conflict
from shared.errors import DomainError as DomainError
from shared.errors import NotFound as NotFound


def roll_up(
    tree: Iterable[tuple[str, str | None]], counts: Mapping[str, Mapping[str, int]]
) -> dict[str, Counter[str]]:
    """Totals per organisation over its whole subtree, itself included.

    ``tree`` lists (organisation id, parent id or None); ``counts`` gives each organisation's own
    figures by measure, e.g. {"members": 120, "migrant_worker": 80, "new_members": 12,
    "new_unions": 1}. Measures are summed as given; the caller decides what a period means.
    """
    parent_of: dict[str, str | None] = {}
    for org, parent in tree:
        if org in parent_of:
            raise DomainError("organisation_id", "listed_twice", f"{org} is listed twice")
        parent_of[org] = parent
    children: dict[str, list[str]] = {org: [] for org in parent_of}
    roots: list[str] = []
    for org, parent in parent_of.items():
        if parent is None:
            roots.append(org)
        elif parent in children:
            children[parent].append(org)
        else:
            raise DomainError(
                "parent_id", "parent_not_in_tree", f"{org}'s parent {parent} is not in the tree"
            )
    for org in counts:
        if org not in parent_of:
            # Dropping the figures would understate every total above it.
            raise DomainError(
                "organisation_id", "not_in_tree", f"counts given for {org}, not in the tree"
            )
    order: list[str] = []  # parents before children
    queue = deque(roots)
    while queue:
        org = queue.popleft()
        order.append(org)
        queue.extend(children[org])
    if len(order) != len(parent_of):
        stuck = sorted(set(parent_of) - set(order))
        raise DomainError(
            "parent_id", "tree_cycle", f"the tree has a cycle through {', '.join(stuck[:5])}"
        )
    totals = {org: Counter(counts.get(org, {})) for org in parent_of}
    for org in reversed(order):
        parent = parent_of[org]
        if parent is not None:
            totals[parent].update(totals[org])
    return totals
