"""A pure-Python reading of the query contract (API.md "Queries", docs/semantics.md).

It evaluates the shared expression tree (odm/expressions/nodes.py) over documents keyed by
stored names. Two-valued logic: a missing or null attribute equals nothing and is neither
less nor greater than anything; only ``Not`` turns "missing" into a match. Ascending order
puts missing first, descending last. Values compare as Python compares them (strings by code
point, numbers exactly, datetimes as instants, sets as sets, dicts regardless of key order).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

from odm.expressions.nodes import And, Between, Compare, Contains, Exists, In, Like, Node, Not, Or, Path, Prefix, like_to_regex
from odm.fields import SortKey

from .model import plain


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def lookup(doc: dict[str, Any], path: Path) -> Any:
    """The value at ``path``, or MISSING when absent or null."""
    cur: Any = doc
    for part in path.parts:
        if not isinstance(cur, dict) or part not in cur:
            return MISSING
        cur = cur[part]
    return MISSING if cur is None else cur


def _norm(value: Any) -> Any:
    """Sets and frozensets compare as sets; lists and tuples as lists; numbers inside dicts and lists
    (untyped: a ``Dict()``'s contents) by value as stored, so a query's ``0.1`` is the stored ``0.1``."""
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    if isinstance(value, (tuple, list, dict)):
        return plain(list(value) if isinstance(value, tuple) else value)
    return value


def equal(stored: Any, value: Any) -> bool:
    if stored is MISSING:
        return False
    if type(stored) is bool or type(value) is bool:  # True is not 1 on any backend
        return type(stored) is type(value) and stored == value
    return bool(_norm(stored) == _norm(value))


def _order(op: str, stored: Any, value: Any) -> bool:
    if stored is MISSING:
        return False
    try:
        if op == "lt":
            return bool(stored < value)
        if op == "le":
            return bool(stored <= value)
        if op == "gt":
            return bool(stored > value)
        return bool(stored >= value)
    except TypeError:
        return False


def matches(node: Node | None, doc: dict[str, Any]) -> bool:
    if node is None:
        return True
    if isinstance(node, And):
        return all(matches(n, doc) for n in node.items)
    if isinstance(node, Or):
        return any(matches(n, doc) for n in node.items)
    if isinstance(node, Not):
        return not matches(node.item, doc)
    if isinstance(node, Exists):
        return lookup(doc, node.path) is not MISSING
    stored = lookup(doc, node.path) if hasattr(node, "path") else MISSING
    if isinstance(node, Compare):
        return equal(stored, node.value) if node.op == "eq" else _order(node.op, stored, node.value)
    if isinstance(node, Between):
        return _order("ge", stored, node.low) and _order("le", stored, node.high)
    if isinstance(node, In):
        return any(equal(stored, v) for v in node.values)
    if isinstance(node, Prefix):
        return isinstance(stored, str) and stored.startswith(node.prefix)
    if isinstance(node, Contains):
        if node.is_list:
            return isinstance(stored, (list, set, frozenset)) and any(equal(x, node.value) for x in stored)
        return isinstance(stored, str) and node.value in stored
    if isinstance(node, Like):
        import re
        return isinstance(stored, str) and re.fullmatch(like_to_regex(node.pattern)[1:-1], stored, re.S) is not None
    raise TypeError(f"reference evaluator does not know {node!r}")


def leaves(node: Node | None) -> Iterator[Node]:
    """Every comparison in the tree (not And/Or/Not)."""
    if node is None:
        return
    if isinstance(node, (And, Or)):
        for item in node.items:
            yield from leaves(item)
    elif isinstance(node, Not):
        yield from leaves(node.item)
    else:
        yield node


def sort_values(doc: dict[str, Any], order: Sequence[SortKey]) -> tuple[Any, ...]:
    return tuple(lookup(doc, k.path) for k in order)


def _cmp_key(a: Any, b: Any) -> int:
    if a is MISSING or b is MISSING:
        return (a is not MISSING) - (b is not MISSING)
    return (a > b) - (a < b)


def ordered(docs: list[dict[str, Any]], order: Sequence[SortKey]) -> list[dict[str, Any]]:
    """Docs sorted by ``order`` (missing first ascending); ties keep their input order."""

    def compare(x: dict[str, Any], y: dict[str, Any]) -> int:
        for key in order:
            c = _cmp_key(lookup(x, key.path), lookup(y, key.path))
            if c:
                return -c if key.descending else c
        return 0

    return sorted(docs, key=functools.cmp_to_key(compare))


def same_sort_values(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all((x is MISSING and y is MISSING) or (x is not MISSING and y is not MISSING and equal(x, y))
                                    for x, y in zip(a, b, strict=True))
