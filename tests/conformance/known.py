"""Differences from the contract still present on main, keyed by issue 9's item number.

Each entry is a predicate over a case; a case it matches is still run, but a disagreement
there is counted as known instead of failing. Delete an entry when its fix lands: the suite
then checks those cases like any other (``make conformance`` prints which entries still
matched a real disagreement, so a stale one is easy to spot).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from odm.expressions.nodes import Between, Compare, In, Node
from odm.fields import SortKey

from .reference import leaves


@dataclass
class Case:
    """What a predicate may look at: the backend, the stored data and the query or condition."""

    backend: str
    docs: list[dict[str, Any]]
    node: Node | None = None
    order: tuple[SortKey, ...] = ()
    action: str = "query"  # query | get | condition | roundtrip


def node_values(node: Node | None) -> Iterator[tuple[Node, Any]]:
    """Each value a query or condition compares with, and the leaf that holds it."""
    for leaf in leaves(node):
        if isinstance(leaf, Compare):
            yield leaf, leaf.value
        elif isinstance(leaf, Between):
            yield leaf, leaf.low
            yield leaf, leaf.high
        elif isinstance(leaf, In):
            for v in leaf.values:
                yield leaf, v


def all_values(value: Any) -> Iterator[Any]:
    """Every scalar inside a row, a document or a value (dicts, lists and sets walked)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from all_values(v)
    elif isinstance(value, (list, set, frozenset, tuple)):
        for v in value:
            yield from all_values(v)
    else:
        yield value


#: Issue 9's numbered items, then differences this suite found that the issue does not list (by
#: name). Empty: every difference it found is fixed on main, or is a physical limit the backend
#: declares in its features (max_number/min_number, max_decimal_digits, empty_string_index_keys),
#: which the harness accepts as a refusal only with a ValidationError/QueryError.
KNOWN_DIFFERENCES: dict[int | str, Callable[[Case], bool]] = {}


def known(case: Case) -> list[int | str]:
    """The issue items whose known difference may explain a disagreement on this case."""
    return [item for item, predicate in KNOWN_DIFFERENCES.items() if predicate(case)]
