"""Conditions DynamoDB refuses, rewritten into ones it evaluates, with the same answer.

DynamoDB refuses three kinds of operand that the other backends compare (issue 9):
ordering on a BOOL, an empty string or bytes value in a key condition, and a number it
cannot store (beyond 38 significant digits, or a magnitude outside 1E-130 up to below
1E+126). Each still has a definite answer over what DynamoDB can store, which is all a
query or a write condition is ever judged on:

- Booleans: False < True, so an ordering comparison is a test against the subset of
  {False, True} it accepts (an equality, an ``IN``, or nothing).
- A key attribute (of the table, a GSI or an LSI) never holds "" or b"" (DynamoDB refuses
  such items), so equality with it matches nothing and ``> ""`` means "present".
- A stored number is always storable, so a comparison with an unstorable value ``v`` is
  the same comparison with the nearest storable number on the right side of ``v`` (or is
  decided outright): ``f > 1e-200`` is ``f >= 1E-130``, ``f < 1e300`` is ``f <= 9.99..E+125``
  (38 nines), ``f == 1e300`` matches nothing.

Constants are expressed with nodes every consumer already handles: ``In(path, ())`` is
false and ``Not(In(path, ()))`` true. The rewritten value travels as ``Encoded`` (the
AttributeValue itself), so no field encoder sees, or refuses, it.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ....errors import QueryError, ValidationError
from ....expressions.nodes import And, Between, Compare, Contains, Exists, In, Node, Not, Or, Path, Prefix
from ....schema import SecondaryIndexSpec, TableSpec
from ...codec import Codec
from ..codec import MAX_ADJUSTED, MAX_DIGITS, MIN_ADJUSTED, attribute_type, float_decimal, in_range, storable, to_av

#: The largest and smallest positive numbers DynamoDB stores.
LARGEST = Decimal("9." + "9" * (MAX_DIGITS - 1) + f"E+{MAX_ADJUSTED}")
SMALLEST = Decimal(f"1E{MIN_ADJUSTED}")
_UP = decimal.Context(prec=MAX_DIGITS, rounding=decimal.ROUND_CEILING, Emax=10**6, Emin=-10**6)
_NUMERIC = {None, "int", "float", "decimal"}
_EMPTY = ({"S": ""}, {"B": b""})


@dataclass(frozen=True, eq=False)
class Encoded:
    """A query value already in AttributeValue form (computed here, sent as is)."""

    av: dict[str, Any]

    def __repr__(self) -> str:
        return f"Encoded({self.av!r})"


def never(path: Path) -> Node:
    return In(path, ())


def always(path: Path) -> Node:
    return Not(In(path, ()))


def is_never(node: Node) -> bool:
    return isinstance(node, In) and not node.values


def is_always(node: Node) -> bool:
    return isinstance(node, Not) and is_never(node.item)


# -- numbers --------------------------------------------------------------------------------------


def _up(value: Decimal) -> Decimal | None:
    """The smallest storable number >= ``value`` (None above the largest)."""
    if storable(value):
        return value
    c = _UP.plus(value)  # 38 digits, toward +infinity: no storable number lies between value and c
    if in_range(c):
        return c
    if c > 0:
        return SMALLEST if c.adjusted() < MIN_ADJUSTED else None
    return Decimal(0) if c.adjusted() < MIN_ADJUSTED else LARGEST.copy_negate()


def _down(value: Decimal) -> Decimal | None:
    """The largest storable number <= ``value`` (None below the smallest)."""
    # copy_negate: unary minus would round to the context's 28 digits.
    up = _up(value.copy_negate())
    return None if up is None else up.copy_negate() if up else Decimal(0)


def _number_av(value: Decimal) -> Encoded:
    return Encoded({"N": str(value)})


# -- the rewrite ----------------------------------------------------------------------------------


class Rewriter:
    """One condition tree in, an equivalent one DynamoDB evaluates out (see the module docstring)."""

    def __init__(self, spec: TableSpec, codec: Codec, keys: dict[str, str | None]) -> None:
        self.spec = spec
        self.codec = codec
        self.keys = keys  # top-level key attribute name -> its DynamoDB key type (S, N, B)

    def node(self, node: Node) -> Node:
        if isinstance(node, And):
            items = [self.node(n) for n in node.items]
            if any(is_never(n) for n in items):
                return next(n for n in items if is_never(n))
            kept = [n for n in items if not is_always(n)]
            return And.of(*kept) if kept else items[0]
        if isinstance(node, Or):
            items = [self.node(n) for n in node.items]
            if any(is_always(n) for n in items):
                return next(n for n in items if is_always(n))
            kept = [n for n in items if not is_never(n)]
            return Or.of(*kept) if kept else items[0]
        if isinstance(node, Not):
            inner = self.node(node.item)
            if is_never(inner):
                return always(inner.path)  # type: ignore[attr-defined]
            if is_always(inner):
                return inner.item  # type: ignore[attr-defined, no-any-return]
            return Not(inner)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Between):
            return self.between(node)
        if isinstance(node, In):
            return self.in_(node)
        if isinstance(node, Contains) and node.is_list:
            number = self.number(node.path, node.value, getattr(node.path.field, "inner", None))
            return never(node.path) if number is not None and not storable(number) else node
        if isinstance(node, Prefix) and self.empty_key(node.path, node.prefix, strict=True):
            return Exists(node.path)
        return node

    # -- what a value is ---------------------------------------------------------------------
    def number(self, path: Path, value: Any, field: Any = None) -> Decimal | None:
        """The exact number a numeric query value stands for (None when it is not one)."""
        field = field if field is not None else path.field
        if getattr(field, "kind", None) not in _NUMERIC or path.parts[0] == self.spec.ttl_attribute:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return None
        if isinstance(value, float):
            return float_decimal(value)
        return Decimal(value) if isinstance(value, int) else value

    def boolean(self, path: Path, value: Any) -> bool | None:
        if isinstance(value, bool) and getattr(path.field, "kind", None) in ("bool", None):
            return value
        return None

    def empty_key(self, path: Path, value: Any, strict: bool = False) -> bool:
        """Is ``value`` "" or b"" compared with a key attribute (which no stored item holds empty)?

        ``strict`` also wants the key's own type, for tests that become "is present".
        """
        if not isinstance(value, (str, bytes)) or value or len(path.parts) != 1 or path.parts[0] not in self.keys:
            return False
        try:
            av = to_av(self.codec.encode_value(value, path.field, path.parts[0] == self.spec.ttl_attribute))
        except (QueryError, ValidationError):
            return False  # the compiler reports it
        if av not in _EMPTY:
            return False
        want = self.keys[path.parts[0]]
        return want == next(iter(av)) or (want is None and not strict)

    # -- nodes --------------------------------------------------------------------------------
    def compare(self, node: Compare) -> Node:
        path, op = node.path, node.op
        flag = self.boolean(path, node.value)
        if flag is not None and op != "eq":
            return self.booleans(path, [b for b in (False, True) if _holds(op, b, flag)])
        number = self.number(path, node.value)
        if number is not None and not storable(number):
            if op == "eq":
                return never(path)
            bound = _up(number) if op in ("gt", "ge") else _down(number)
            if bound is None:
                return never(path)
            return Compare("ge" if op in ("gt", "ge") else "le", path, _number_av(bound))
        if op in ("gt", "ge"):
            if self.empty_key(path, node.value, strict=True):
                return Exists(path)  # a key value is never empty, so it is above "" whenever present
        elif self.empty_key(path, node.value):
            return never(path)  # = "", < "", <= "": only "" itself could match
        return node

    def between(self, node: Between) -> Node:
        path, low, high = node.path, node.low, node.high
        lo_flag, hi_flag = self.boolean(path, low), self.boolean(path, high)
        if lo_flag is not None and hi_flag is not None:
            return self.booleans(path, [b for b in (False, True) if lo_flag <= b <= hi_flag])
        lo_num, hi_num = self.number(path, low), self.number(path, high)
        if lo_num is not None and hi_num is not None and not (storable(lo_num) and storable(hi_num)):
            lo, hi = _up(lo_num), _down(hi_num)
            if lo is None or hi is None or lo > hi:
                return never(path)
            return Between(path, _number_av(lo), _number_av(hi))
        if self.empty_key(path, high):
            return never(path)  # only "" itself lies at or below "", and no key holds it
        if self.empty_key(path, low, strict=True):
            return Compare("le", path, high)
        return node

    def in_(self, node: In) -> Node:
        kept = []
        for value in node.values:
            number = self.number(node.path, value)
            if number is not None and not storable(number):
                continue
            if self.empty_key(node.path, value):
                continue
            kept.append(value)
        if len(kept) == len(node.values):
            return node
        # One value left: an equality, which can serve as a key condition.
        return Compare("eq", node.path, kept[0]) if len(kept) == 1 else In(node.path, tuple(kept))

    def booleans(self, path: Path, accepted: list[bool]) -> Node:
        """The Boolean values in ``accepted`` as a test the server evaluates."""
        if not accepted:
            return never(path)
        if len(accepted) == 1:
            return Compare("eq", path, Encoded({"BOOL": accepted[0]}))
        return In(path, tuple(Encoded({"BOOL": b}) for b in accepted))


def _holds(op: str, left: bool, right: bool) -> bool:
    if op == "lt":
        return left < right
    if op == "le":
        return left <= right
    if op == "gt":
        return left > right
    return left >= right


def key_types(spec: TableSpec, secondary: list[SecondaryIndexSpec]) -> dict[str, str | None]:
    """Every top-level attribute that is a key of the table or of one of its indexes, with its type."""
    paths = [spec.hash_key, spec.range_key]
    for sec in secondary:
        paths += [sec.hash_key, sec.range_key]
    out: dict[str, str | None] = {}
    for path in paths:
        if path is not None and len(path.parts) == 1:
            ttl = path.parts[0] == spec.ttl_attribute
            out[path.parts[0]] = "N" if ttl else attribute_type(path.field, None)
    return out


def rewrite(spec: TableSpec, codec: Codec, node: Node, secondary: list[SecondaryIndexSpec]) -> Node:
    """``node`` as a condition DynamoDB can evaluate, with the same answer on every storable item."""
    return Rewriter(spec, codec, key_types(spec, secondary)).node(node)
