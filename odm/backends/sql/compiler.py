"""One SQL compiler for every SQL dialect: the shared expression tree to a WHERE clause."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...expressions.compiler import Compiler
from ...expressions.nodes import And, Between, Compare, Contains, Exists, In, Like, Node, Not, Or, Path, Prefix
from ...fields import SortKey
from ...schema import TableSpec
from ..codec import Codec
from .dialect import Dialect


def _kind(spec: TableSpec, parts: tuple[str, ...]) -> str | None:
    """A key path's field kind (the Go layer's key kinds live in ``spec.extra``)."""
    for path in spec.key_paths:
        if path.parts == parts:
            return getattr(path.field, "kind", None)
    return None


class SQLCompiler(Compiler):
    """Collects SQL text and parameters; user values only ever travel as parameters."""

    backend_name = "SQL"

    def __init__(self, dialect: Dialect, spec: TableSpec, codec: Codec) -> None:
        self.dialect = dialect
        self.spec = spec
        self.codec = codec
        self.params: list[Any] = []
        self._columns = {spec.hash_key.parts: '"_hk"'}
        if spec.range_key is not None:
            self._columns[spec.range_key.parts] = '"_rk"'
        #: Decimal key columns whose ordering needs the dialect's exact operand (SQLite).
        self._exact_columns = {
            parts: exact for parts, column in self._columns.items()
            if _kind(spec, parts) == "decimal" and (exact := dialect.exact_column_operand(column)) is not None}

    # -- operands ---------------------------------------------------------------------
    def operand(self, path: Path) -> str:
        column = self._columns.get(path.parts)
        if column is not None:
            return column
        return self.dialect.json_operand(path.parts, path.field)

    def ordered(self, path: Path, values: tuple[Any, ...]) -> tuple[str, bool]:
        """The operand for comparing ``path`` with ``values``, and whether it is an exact-number one.

        Exact where the dialect's own comparison is not: a Decimal key column being ordered, or
        an untyped path compared with a Decimal (typed Decimal fields are exact in json_operand).
        """
        exact = self._exact_columns.get(path.parts)
        if exact is not None:
            return exact, True
        if path.field is None and path.parts not in self._columns and any(isinstance(v, Decimal) for v in values):
            operand = self.dialect.exact_number_operand(path.parts)
            if operand is not None:
                return operand, True
        return self.operand(path), False

    def bind(self, path: Path, value: Any, field: Any = None, exact: bool = False) -> str:
        field = field if field is not None else path.field
        stored = self.codec.encode_value(value, field, path.parts[0] == self.spec.ttl_attribute)
        if exact:
            self.params.append(self.dialect.exact_number_param(stored))
        elif path.parts in self._columns:
            self.params.append(self.dialect.column_param(stored))
        else:
            self.params.append(self.dialect.json_param(stored, field))
        return self.dialect.ph

    def where(self, node: Node | None) -> str:
        return "TRUE" if node is None else self.compile(node)

    def order(self, keys: tuple[SortKey, ...]) -> str:
        terms = []
        for k in keys:
            if k.path.field is None and k.path.parts not in self._columns:
                # Untyped (Go layer): one order over JSON types, the same on every backend.
                terms.append(self.dialect.json_order_term(k.path.parts, k.descending))
            else:
                # Decimal key columns order by their exact key (see ordered).
                terms.append(self.dialect.order_term(self.ordered(k.path, ())[0], k.descending))
        return ", ".join(terms)

    # -- nodes --------------------------------------------------------------------------
    def _guard(self, path: Path, value: Any) -> str | None:
        """For untyped paths (plain-dict repositories), the dialect's JSON type check, if it needs one."""
        if path.field is not None or path.parts in self._columns:
            return None
        return self.dialect.type_guard(path.parts, self.codec.encode_value(value, None))

    def _prefilter(self, path: Path, low: Any, high: Any) -> str | None:
        """The dialect's cheap necessary test for a costly exact number comparison (its params go first)."""
        if path.field is None or path.parts in self._columns or (low is None and high is None):
            return None
        encode = self.codec.encode_value
        pre = self.dialect.number_prefilter(path.parts, path.field, None if low is None else encode(low, path.field),
                                            None if high is None else encode(high, path.field))
        if pre is None:
            return None
        self.params.extend(pre[1])
        return pre[0]

    def visit_compare(self, node: Compare) -> str:
        op = self.dialect.OPERATORS[node.op]
        if node.op == "eq" and node.path.parts in self._exact_columns:
            operand, exact = self.operand(node.path), False  # equality on the stored key: the primary key serves it
        else:
            operand, exact = self.ordered(node.path, (node.value,))
        low = node.value if node.op in ("eq", "gt", "ge") else None
        high = node.value if node.op in ("eq", "lt", "le") else None
        pre = self._prefilter(node.path, low, high) if node.value is not None else None
        sql = f"{operand} {op} {self.bind(node.path, node.value, exact=exact)}"
        guard = self._guard(node.path, node.value) if node.op == "eq" and not exact else None
        sql = sql if guard is None else f"({sql} AND {guard})"
        return sql if pre is None else f"({pre} AND {sql})"

    def visit_between(self, node: Between) -> str:
        operand, exact = self.ordered(node.path, (node.low, node.high))
        pre = self._prefilter(node.path, node.low, node.high)
        low, high = self.bind(node.path, node.low, exact=exact), self.bind(node.path, node.high, exact=exact)
        sql = f"{operand} BETWEEN {low} AND {high}"
        return sql if pre is None else f"({pre} AND {sql})"

    def visit_in(self, node: In) -> str:
        if not node.values:
            return "FALSE"
        if any(self._guard(node.path, v) for v in node.values):
            return "(" + " OR ".join(self.visit_compare(Compare("eq", node.path, v)) for v in node.values) + ")"
        operand = self.operand(node.path)
        marks = ", ".join(self.bind(node.path, v) for v in node.values)
        return f"{operand} IN ({marks})"

    def visit_exists(self, node: Exists) -> str:
        return f"{self.operand(node.path)} IS NOT NULL"

    def visit_prefix(self, node: Prefix) -> str:
        operand = self.operand(node.path)
        self.params.append(self.dialect.prefix_param(node.prefix))
        return self.dialect.prefix_sql(operand, self.dialect.ph)

    def visit_like(self, node: Like) -> str:
        operand = self.operand(node.path)
        self.params.append(self.dialect.like_param(node.pattern))
        return self.dialect.like_sql(operand, self.dialect.ph)

    def visit_contains(self, node: Contains) -> str:
        if node.is_list:
            inner = getattr(node.path.field, "inner", None)
            stored = self.codec.encode_value(node.value, inner)
            exact = self.dialect.exact_contains_sql(node.path.parts, self.dialect.ph) if isinstance(stored, Decimal) else None
            if exact is not None:
                self.params.append(self.dialect.exact_number_param(stored))
                return exact
            self.params.append(self.dialect.contains_list_param(stored))
            return self.dialect.contains_list_sql(node.path.parts, self.dialect.ph)
        self.params.append(node.value)
        return self.dialect.contains_str_sql(self.operand(node.path), self.dialect.ph)

    def visit_and(self, node: And) -> str:
        return "(" + " AND ".join(self.compile(n) for n in node.items) + ")"

    def visit_or(self, node: Or) -> str:
        return "(" + " OR ".join(self.compile(n) for n in node.items) + ")"

    def visit_not(self, node: Not) -> str:
        return self.dialect.not_sql(self.compile(node.item))
