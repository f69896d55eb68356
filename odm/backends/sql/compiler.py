"""One SQL compiler for every SQL dialect: the shared expression tree to a WHERE clause."""

from __future__ import annotations

from typing import Any

from ...expressions.compiler import Compiler
from ...expressions.nodes import And, Between, Compare, Contains, Exists, In, Like, Node, Not, Or, Path, Prefix
from ...fields import SortKey
from ...schema import TableSpec
from ..codec import Codec
from .dialect import Dialect


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

    # -- operands ---------------------------------------------------------------------
    def operand(self, path: Path) -> str:
        column = self._columns.get(path.parts)
        if column is not None:
            return column
        return self.dialect.json_operand(path.parts, path.field)

    def bind(self, path: Path, value: Any, field: Any = None) -> str:
        field = field if field is not None else path.field
        stored = self.codec.encode_value(value, field, path.parts[0] == self.spec.ttl_attribute)
        if path.parts in self._columns:
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
                terms.append(self.dialect.order_term(self.operand(k.path), k.descending))
        return ", ".join(terms)

    # -- nodes --------------------------------------------------------------------------
    def _guard(self, path: Path, value: Any) -> str | None:
        """For untyped paths (plain-dict repositories), the dialect's JSON type check, if it needs one."""
        if path.field is not None or path.parts in self._columns:
            return None
        return self.dialect.type_guard(path.parts, self.codec.encode_value(value, None))

    def visit_compare(self, node: Compare) -> str:
        op = self.dialect.OPERATORS[node.op]
        sql = f"{self.operand(node.path)} {op} {self.bind(node.path, node.value)}"
        guard = self._guard(node.path, node.value) if node.op == "eq" else None
        return sql if guard is None else f"({sql} AND {guard})"

    def visit_between(self, node: Between) -> str:
        operand = self.operand(node.path)
        return f"{operand} BETWEEN {self.bind(node.path, node.low)} AND {self.bind(node.path, node.high)}"

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
