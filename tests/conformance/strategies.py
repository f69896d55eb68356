"""Hypothesis strategies: datasets for the conformance model and random queries over them.

A query is described as plain data (``Cond``) and built on each backend's own model class,
so the same description runs everywhere and prints as the Python a user would write.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UTC = dt.timezone.utc

# -- values ------------------------------------------------------------------------------------
#: Prefix-sharing unicode, with LIKE metacharacters and a backslash, never NUL or lone surrogates.
ALPHABET = ["a", "b", "A", "é", "e\u0301", "%", "_", "\\", " ", "ß", "\u00ff", "\u4e2d", "\U0001f600", "\uffff"]
strings = st.one_of(st.lists(st.sampled_from(ALPHABET), max_size=4).map("".join),
                    st.sampled_from(["", "a", "ab", "abc", "b", "A", "a%", "a_", "a\\", "%", "_", "\\"]))
nonempty_strings = strings.filter(bool)
ints = st.one_of(st.integers(-4, 4), st.sampled_from([INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX - 1, 2**53, 2**53 + 1,
                                                      -(2**53) - 1, 2**31, -(2**31) - 1]))
#: Floats inside DynamoDB's number range (stored numbers are range-checked on write).
floats = st.one_of(st.sampled_from([0.0, -0.0, 0.1, 0.2, 0.30000000000000004, 1 / 3, 1.5, -1.5, 2.0**53, 2.0**53 + 2, 1e-130, -1e-130,
                                    9.9e125, -9.9e125, 1e100, 123456789.123456789]),
                   st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False))
#: Query-only numbers beyond DynamoDB's range (issue 9 item 3).
wild_floats = st.sampled_from([1e-200, -1e-200, 1e200, -1e200, 1.7e308, 5e-324])


@st.composite
def decimals(draw: Any) -> decimal.Decimal:
    """Up to 38 significant digits (DynamoDB's limit), many of them, within DynamoDB's exponent range."""
    if draw(st.booleans()):
        return draw(st.sampled_from([decimal.Decimal(x) for x in ("0", "1", "-1", "1.5", "0.1", "1.10", "100", "-0.001",
                                                                   "12345678901234567890.12345678901234567",
                                                                   "12345678901234567890.12345678901234568",
                                                                   "0.1000000000000000000000000000000000001",
                                                                   "9007199254740993", "9007199254740992",
                                                                   "1.0000000000000001", "1.0000000000000002", "0.99999999999999999")]))
    digits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=38))
    return decimal.Decimal((draw(st.integers(0, 1)), tuple(digits), draw(st.integers(-30, 30))))


wild_decimals = st.sampled_from([decimal.Decimal("1e-200"), decimal.Decimal("-1e200"), decimal.Decimal("1e130")])


@st.composite
def datetimes(draw: Any) -> dt.datetime:
    """Aware datetimes, in UTC or another offset; most whole milliseconds, some with microseconds."""
    base = draw(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)))
    if draw(st.integers(0, 2)):
        base = base.replace(microsecond=base.microsecond // 1000 * 1000)
    if draw(st.booleans()):
        base = base.replace(microsecond=0)
    zone = draw(st.sampled_from([UTC, UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]))
    return base.replace(tzinfo=UTC).astimezone(zone)


short = st.sampled_from(["a", "b", "ab", "", "é"])
untyped_numbers = st.sampled_from([2.5, 3.0, -0.0, 0.1, 1e20, decimal.Decimal("2.50"), decimal.Decimal("1E+3"),
                                   decimal.Decimal("12345678901234567890.123456789")])
json_values = st.recursive(st.one_of(st.integers(-3, 3), short, untyped_numbers), lambda inner: st.lists(inner, max_size=2),
                           max_leaves=3)
dicts = st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values, max_size=3)
lists = st.lists(short, max_size=3)
sets = st.sets(short, max_size=3)
int_sets = st.sets(ints, max_size=3)
decimal_sets = st.sets(decimals(), max_size=3)
addresses = st.fixed_dictionaries({"city": strings}, optional={"zip": ints, "codes": lists, "marks": int_sets})

#: Field name -> strategy of stored values (None means "leave it out").
VALUES: dict[str, Any] = {
    "s": strings, "i": ints, "f": floats, "d": decimals(), "b": st.booleans(), "t": datetimes(), "tags": lists,
    "labels": sets, "extra": dicts, "addr": addresses, "code": strings, "nums": int_sets, "decs": decimal_sets,
}
#: Query operands: stored-type values plus some only a query can hold.
QUERY_VALUES: dict[str, Any] = {
    **VALUES, "pk": strings, "sk": ints, "f": st.one_of(floats, wild_floats), "d": st.one_of(decimals(), wild_decimals),
    "addr.city": strings, "addr.zip": ints,
}
KINDS = {"pk": "str", "sk": "int", "s": "str", "i": "int", "f": "num", "d": "num", "b": "bool", "t": "num", "tags": "list",
         "labels": "list", "extra": "dict", "addr.city": "str", "addr.zip": "int", "code": "str", "addr": "embedded"}
SCALARS = ["pk", "sk", "s", "i", "f", "d", "b", "t", "addr.city", "addr.zip", "code"]
ORDERABLE = SCALARS


@st.composite
def rows(draw: Any, min_size: int = 0, max_size: int = 7) -> list[dict[str, Any]]:
    keys = draw(st.lists(st.tuples(st.sampled_from(["a", "b", "ab", "é", "a%"]), st.sampled_from([0, 1, 2, -1, INT64_MAX, INT64_MIN])),
                         min_size=min_size, max_size=max_size, unique=True))
    out = []
    for pk, sk in keys:
        row: dict[str, Any] = {"pk": pk, "sk": sk}
        for name, strategy in VALUES.items():
            choice = draw(st.integers(0, 4))  # 0: left out, 1: None (the same as left out), else a value
            if choice:
                row[name] = None if choice == 1 else draw(strategy)
        out.append(row)
    return out


# -- queries -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cond:
    """One condition as data: ``("op", path, operator, args)`` or ``("and"|"or"|"not", children)``."""

    kind: str
    path: str = ""
    op: str = ""
    args: tuple[Any, ...] = ()
    children: tuple[Cond, ...] = ()

    def build(self, model: type) -> Any:
        if self.kind == "and":
            return self.children[0].build(model) & self.children[1].build(model)
        if self.kind == "or":
            return self.children[0].build(model) | self.children[1].build(model)
        if self.kind == "not":
            return ~self.children[0].build(model)
        ref: Any = model
        for part in self.path.split("."):
            ref = getattr(ref, part)
        a = self.args
        return {
            "==": lambda: ref == a[0], "!=": lambda: ref != a[0], "<": lambda: ref < a[0], "<=": lambda: ref <= a[0],
            ">": lambda: ref > a[0], ">=": lambda: ref >= a[0], "between": lambda: ref.between(a[0], a[1]),
            "in_": lambda: ref.in_(a[0]), "not_in": lambda: ref.not_in(a[0]), "startswith": lambda: ref.startswith(a[0]),
            "contains": lambda: ref.contains(a[0]), "exists": lambda: ref.exists(), "not_exists": lambda: ref.not_exists(),
        }[self.op]()

    def __repr__(self) -> str:
        if self.kind in ("and", "or"):
            return f"({self.children[0]!r} {'&' if self.kind == 'and' else '|'} {self.children[1]!r})"
        if self.kind == "not":
            return f"~{self.children[0]!r}"
        ref = f"Item.{self.path}"
        if self.op in ("exists", "not_exists"):
            return f"{ref}.{self.op}()"
        if self.op in ("between", "in_", "not_in", "startswith", "contains"):
            return f"{ref}.{self.op}({', '.join(map(repr, self.args))})"
        return f"{ref} {self.op} {self.args[0]!r}"


def _value(draw: Any, path: str, pool: list[dict[str, Any]]) -> Any:
    """A fresh operand, or (often) one a stored row holds, so that matches happen."""
    stored = [_get(r, path) for r in pool]
    stored = [v for v in stored if v is not None]
    if stored and draw(st.integers(0, 2)):
        return draw(st.sampled_from(stored))
    return draw(QUERY_VALUES[path])


def _get(row: dict[str, Any], path: str) -> Any:
    cur: Any = row
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


@st.composite
def leaf(draw: Any, pool: list[dict[str, Any]]) -> Cond:
    path = draw(st.sampled_from([*SCALARS, "tags", "labels", "extra"]))
    kind = KINDS[path]
    ops = ["==", "!=", "in_", "not_in", "exists", "not_exists", "== None", "!= None"]
    if kind in ("str", "int", "num", "bool"):
        ops += ["<", "<=", ">", ">=", "between", "between"]
    if kind == "str":
        ops += ["startswith", "startswith", "contains"]
    if kind == "list":
        ops += ["contains", "contains"]
    op = draw(st.sampled_from(ops))
    if op in ("== None", "!= None"):
        return Cond("op", path, op[:2], (None,))
    if op in ("exists", "not_exists"):
        return Cond("op", path, op)
    if op in ("in_", "not_in"):
        return Cond("op", path, op, ([_value(draw, path, pool) for _ in range(draw(st.integers(0, 3)))],))
    if op == "between":
        return Cond("op", path, op, (_value(draw, path, pool), _value(draw, path, pool)))
    if op == "startswith":
        stored = [v for v in (_get(r, path) for r in pool) if isinstance(v, str)]
        if stored and draw(st.booleans()):
            text = draw(st.sampled_from(stored))
            return Cond("op", path, op, (text[: draw(st.integers(0, len(text)))],))
        return Cond("op", path, op, (draw(strings),))
    if op == "contains" and kind == "list":
        return Cond("op", path, op, (draw(short),))
    if op == "contains":
        return Cond("op", path, op, (draw(strings),))
    return Cond("op", path, op, (_value(draw, path, pool),))


def conditions(pool: list[dict[str, Any]]) -> Any:
    return st.recursive(leaf(pool), lambda inner: st.one_of(
        st.builds(lambda a, b: Cond("and", children=(a, b)), inner, inner),
        st.builds(lambda a, b: Cond("or", children=(a, b)), inner, inner),
        st.builds(lambda a: Cond("not", children=(a,)), inner)), max_leaves=4)


@dataclass(frozen=True)
class QueryCase:
    """A condition, an order, a window and which reads to make of it."""

    where: Cond | None
    order: tuple[str, ...] = ()
    limit: int | None = None
    offset: int = 0
    page_size: int | None = None
    reads: tuple[str, ...] = field(default=("iter",))
    group: str = "s"  # the field of the distinct and count_by reads


    def build(self, model: type) -> Any:
        q = model.query() if self.where is None else model.query(self.where.build(model))
        if self.order:
            q = q.order_by(*self.order)
        return q

    def __repr__(self) -> str:
        text = "Item.query(" + ("" if self.where is None else repr(self.where)) + ")"
        if self.order:
            text += ".order_by(" + ", ".join(map(repr, self.order)) + ")"
        if self.limit is not None:
            text += f".limit({self.limit})"
        if self.offset:
            text += f".offset({self.offset})"
        if self.page_size:
            text += f" read as page(size={self.page_size}) pages"
        reads = [f"{r}({self.group!r})" if r in ("distinct", "count_by") else r for r in self.reads]
        return text + f" [{', '.join(reads)}]"


@st.composite
def query_cases(draw: Any, pool: list[dict[str, Any]]) -> QueryCase:
    where = draw(st.one_of(st.none(), conditions(pool)))
    order: tuple[str, ...] = ()
    shape = draw(st.integers(0, 5))
    # Key-shaped queries, so DynamoDB runs (and orders) them as a Query on the table or an index.
    keyed = {1: ("pk", "sk"), 2: ("s", "i"), 3: ("pk", "t")}.get(shape)
    if keyed:
        eq = Cond("op", keyed[0], "==", (_value(draw, keyed[0], pool),))
        where = eq if where is None else Cond("and", children=(eq, where))
        if draw(st.booleans()):
            order = (("-" if draw(st.booleans()) else "") + keyed[1],)
    elif shape == 4:
        order = tuple(("-" if draw(st.booleans()) else "") + p for p in draw(st.lists(st.sampled_from(ORDERABLE), min_size=1, max_size=2,
                                                                                          unique=True)))
    limit = draw(st.one_of(st.none(), st.integers(1, 4)))
    offset = draw(st.sampled_from([0, 0, 1, 2]))
    page_size = draw(st.one_of(st.none(), st.none(), st.integers(1, 3)))
    reads = ["iter"] + [r for r in ("count", "exists", "first") if draw(st.booleans())]
    reads += [r for r in [draw(st.sampled_from([None, None, "distinct", "count_by"]))] if r]
    return QueryCase(where, order, limit, offset, page_size, tuple(reads), draw(st.sampled_from(SCALARS)))
