"""Differences from the contract still present on main, keyed by issue 9's item number.

Each entry is a predicate over a case; a case it matches is still run, but a disagreement
there is counted as known instead of failing. Delete an entry when its fix lands: the suite
then checks those cases like any other (``make conformance`` prints which entries still
matched a real disagreement, so a stale one is easy to spot).
"""

from __future__ import annotations

import decimal
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
    action: str = "query"  # query | get | condition | roundtrip | update
    acts: tuple[Any, ...] = ()  # an update's actions (updates.Act)


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
def _incs(case: Case, path: str) -> Iterator[tuple[Any, Any]]:
    """(stored value or None, amount) of each increment of ``path`` in an update case, per stored item."""
    for act in case.acts:
        if act.op == "inc" and act.path == path:
            for doc in case.docs or [{}]:
                yield doc.get(path), act.args[0]


#: Backends that store a Decimal increment's sum rounded to 28 significant digits.
ROUNDED_DECIMAL_INC = frozenset({"mongodb"})


def _decimal_inc(case: Case) -> bool:
    """A Decimal increment whose exact sum has more than 28 significant digits is stored rounded on
    MongoDB (74000000000000000000000000 + 0.99999999999999999 is stored as 74000000000000000000000001),
    not exactly (SQL, where odm_update adds with every digit) nor refused with ValidationError as a
    stored value beyond max_decimal_digits is: $inc on Decimal128 rounds on the server (SecantusDB at
    28 digits; MongoDB itself at 34). Matches such an increment there."""
    if case.backend not in ROUNDED_DECIMAL_INC:
        return False
    exact = decimal.Context(prec=200)
    return any(len(exact.add(stored or decimal.Decimal(0), decimal.Decimal(amount)).normalize(exact).as_tuple().digits) > 28
               for stored, amount in _incs(case, "d"))


#: Backends whose Float increment adds the values' shortest decimal spellings exactly and rounds the sum
#: to a double (DynamoDB's N; declared as features.float_increments_in_decimal), where the others and the reference add the doubles
#: (IEEE, Python's ``a + b``).
DECIMAL_FLOAT_INC = frozenset({"dynamodb"})  # features.float_increments_in_decimal


def _float_inc(case: Case) -> bool:
    """A Float increment's result differs by one ulp between the two readings: -839146771452.9952
    + 675467.7408696504 is -839146770777.2544 as doubles, -839146770777.2543 on DynamoDB, whose ADD is
    decimal arithmetic. The contract (docs/semantics.md) is the IEEE sum; DynamoDB declares the
    exception (features.float_increments_in_decimal). Matches only increments where the two readings differ."""
    if case.backend not in DECIMAL_FLOAT_INC:
        return False
    exact = decimal.Context(prec=800)
    return any(stored is not None and float(exact.add(decimal.Decimal(repr(stored)), decimal.Decimal(repr(float(amount))))) != stored + amount
               for stored, amount in _incs(case, "f"))


KNOWN_DIFFERENCES: dict[int | str, Callable[[Case], bool]] = {
    "decimal-inc-rounded": _decimal_inc,
    "float-inc-decimal-sum": _float_inc,
}


def known(case: Case) -> list[int | str]:
    """The issue items whose known difference may explain a disagreement on this case."""
    return [item for item, predicate in KNOWN_DIFFERENCES.items() if predicate(case)]
