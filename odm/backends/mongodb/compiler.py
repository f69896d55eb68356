"""The expression tree as MongoDB filter documents, sort lists and key ``_id`` values.

Two-valued logic maps onto MongoDB's own: a comparison never matches a missing
attribute, and ``Not`` becomes ``$nor`` (or ``$ne``/``$nin``/``$eq: null`` where
those mean exactly the same), which matches it. User values only ever appear
as operands of ``$eq``/``$in``/``$lt``..., where MongoDB treats them as data,
and attribute names are checked so a ``.`` or a leading ``$`` cannot change
what a query addresses.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from typing import Any

from bson.code import Code
from bson.regex import Regex

from ...errors import QueryError
from ...expressions.compiler import Compiler
from ...expressions.nodes import (
    And,
    Between,
    Compare,
    Contains,
    Exists,
    In,
    Like,
    Node,
    Not,
    Or,
    Path,
    Prefix,
    like_to_regex,
)
from ...fields import SortKey
from ...schema import TableSpec
from ..codec import Codec
from .codec import TTL_MICROS, split_micros

OPERATORS = {"eq": "$eq", "lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}
#: Field kinds whose stored value is never an array, so MongoDB's "any element" rule cannot apply.
SCALAR_KINDS = frozenset({"str", "int", "float", "decimal", "bool", "datetime", "date", "uuid", "bytes", "enum",
                          "dict", "embedded"})
#: A regex end anchor that means "end of string" in PCRE (MongoDB) and Python's re alike;
#: ``$`` also matches before a final newline in both.
END = r"(?![\s\S])"
_NOT_ARRAY = {"$not": {"$type": "array"}}


def check_name(part: str) -> str:
    """One attribute name, refused if MongoDB would read it as a path or an operator."""
    if not isinstance(part, str) or not part or "." in part or part.startswith("$") or "\x00" in part:
        raise QueryError(f"The attribute name {part!r} cannot be queried on MongoDB: names must be non-empty "
                         "and must not contain '.' or NUL or start with '$' (MongoDB would read them as a path "
                         "or an operator).")
    return part


def and_filters(*parts: dict[str, Any]) -> dict[str, Any]:
    """AND filter documents: merged into one when their keys differ, else ``$and``."""
    kept = [p for p in parts if p]
    if not kept:
        return {}
    if len(kept) == 1:
        return kept[0]
    merged: dict[str, Any] = {}
    for part in kept:
        if merged.keys() & part.keys():
            return {"$and": kept}
        merged.update(part)
    return merged


def _check_value(value: Any) -> Any:
    # A regex inside $in is a pattern, not data; Code is never data we write.
    if isinstance(value, (re.Pattern, Regex, Code)):
        raise QueryError(f"A query value cannot be a regular expression or code object ({value!r}); "
                         "use .startswith(), .contains() or match_pattern().")
    return value


class MongoCompiler(Compiler):
    """One compile per query; returns plain dicts ready for pymongo."""

    backend_name = "MongoDB"

    def __init__(self, spec: TableSpec, codec: Codec) -> None:
        self.spec = spec
        self.codec = codec
        # A hash-only key is the _id itself, so key lookups use the _id index.
        self._id_path = spec.hash_key.parts if spec.range_key is None else None

    # -- names and values ------------------------------------------------------------------
    def field(self, path: Path) -> str:
        if path.parts == self._id_path:
            return "_id"
        if path.parts[0] == "_id":  # the internal primary key is not an attribute of the item
            raise QueryError("The attribute name '_id' cannot be queried on MongoDB: it is the internal primary key; "
                             "query the key field instead.")
        return ".".join(check_name(p) for p in path.parts)

    def value(self, path: Path, value: Any, field: Any = None) -> Any:
        field = field if field is not None else path.field
        ttl = len(path.parts) == 1 and path.parts[0] == self.spec.ttl_attribute
        return _check_value(self.codec.encode_value(value, field, ttl))

    def _is_ttl(self, path: Path) -> bool:
        return len(path.parts) == 1 and path.parts[0] == self.spec.ttl_attribute

    def ttl_compare(self, op: str, value: Any) -> dict[str, Any] | None:
        """A comparison on the TTL attribute, exact at the microsecond, or None for a non-date value.

        The attribute is a BSON date (milliseconds, for the TTL index) and ``TTL_MICROS`` the
        microseconds below it (missing counts as 0, as in data written before it existed), so
        the stored instant is the pair (date, remainder) compared in that order.
        """
        name = self.spec.ttl_attribute
        if not isinstance(value, _dt.datetime) or name is None:
            return None
        date, rest = split_micros(value)
        # Remainder tests that treat a missing remainder as 0.
        rest_eq: dict[str, Any] = {"$in": [0, None]} if rest == 0 else {"$eq": rest}
        below = {"eq": None, "lt": {"$not": {"$gte": rest}}, "le": {"$not": {"$gt": rest}},
                 "gt": {"$gt": rest}, "ge": {"$gte": rest}}[op]
        if op == "eq":
            return {name: date, TTL_MICROS: rest_eq}
        strict: dict[str, Any] = {name: {"$lt" if op in ("lt", "le") else "$gt": date}}
        if (op == "lt" and rest == 0) or (op == "ge" and rest == 0):
            # Nothing at ``date`` itself is below a whole millisecond; everything there is at or above it.
            return strict if op == "lt" else {name: {"$gte": date}}
        return {"$or": [strict, {name: date, TTL_MICROS: below}]}

    def _scalar(self, path: Path) -> bool:
        """Is the stored value known never to be an array (a declared scalar field)?"""
        return getattr(path.field, "kind", None) in SCALAR_KINDS

    def _may_nest(self, path: Path) -> bool:
        """Can the stored value be an array holding arrays (so ``$eq: [..]`` could match an element)?"""
        field = path.field
        if field is None:
            return True
        return getattr(field, "kind", None) in ("list", "set") and not self._scalar(Path(path.parts, field.inner))

    def _equals_list(self, path: Path, value: list[Any]) -> dict[str, Any]:
        """Exactly this array, not an array holding it.

        ``{v: {$eq: [1, 2]}}`` also matches ``[[1, 2], 3]`` (MongoDB tests each element too);
        ``$expr``'s ``$eq`` compares the whole value only. The plain ``$eq`` stays in front so an
        index on the attribute still narrows the scan.
        """
        name = self.field(path)
        exact = {"$expr": {"$eq": ["$" + name, {"$literal": value}]}}
        return {"$and": [{name: {"$eq": value}}, exact]}

    def _exists(self, path: Path) -> dict[str, Any]:
        """Present and not null. ``$ne: null`` alone refuses an array holding null (MongoDB tests
        each element), which SQL and DynamoDB count as present: an array always exists."""
        name = self.field(path)
        if self._scalar(path):
            return {name: {"$ne": None}}
        return {"$or": [{name: {"$type": "array"}}, {name: {"$ne": None}}]}

    def _ops(self, path: Path, ops: dict[str, Any], literal_list: bool = False) -> dict[str, Any]:
        """``{field: ops}``; on untyped paths an array never matches a scalar test (as on SQL/DynamoDB)."""
        if path.field is None and not literal_list:
            ops = {**ops, **_NOT_ARRAY}
        return {self.field(path): ops}

    # -- public helpers -------------------------------------------------------------------
    def where(self, node: Node | None) -> dict[str, Any]:
        return {} if node is None else self.compile(node)  # type: ignore[no-any-return]

    def sort(self, keys: tuple[SortKey, ...]) -> list[tuple[str, int]]:
        out = []
        for k in keys:
            out.append((self.field(k.path), -1 if k.descending else 1))
            if self._is_ttl(k.path):  # the TTL attribute's microseconds break ties within its millisecond
                out.append((TTL_MICROS, -1 if k.descending else 1))
        return out

    def ranked(self, keys: tuple[SortKey, ...]) -> bool:
        """Does this order need the JSON-type ranking of ``sort_stages`` (an untyped attribute)?

        MongoDB's own sort puts an array among the values of its smallest (largest, descending)
        element, so untyped attributes are ranked by type in an aggregation instead.
        """
        return any(self._untyped(k.path) for k in keys)

    def _untyped(self, path: Path) -> bool:
        return path.field is None and path.parts != self._id_path

    def sort_stages(self, keys: tuple[SortKey, ...]) -> list[dict[str, Any]]:
        """Pipeline stages that sort by ``keys`` in the one JSON order (docs/go-layer.md, "Order").

        The document moves under ``d`` next to the computed rank and value of each untyped key,
        so no computed name can meet an attribute's; ``unwrap_stages`` puts it back.
        """
        shaped: dict[str, Any] = {"d": "$$ROOT"}
        sort: dict[str, int] = {}
        for i, key in enumerate(keys):
            direction = -1 if key.descending else 1
            name = self.field(key.path)
            if not self._untyped(key.path):
                sort["d." + name] = direction
                if self._is_ttl(key.path):
                    sort["d." + TTL_MICROS] = direction
                continue
            kind = {"$type": "$" + name}
            shaped[f"r{i}"] = {"$switch": {"branches": [
                {"case": {"$in": [kind, ["missing", "null"]]}, "then": 0},
                {"case": {"$in": [kind, ["int", "long", "double", "decimal"]]}, "then": 1},
                {"case": {"$eq": [kind, "string"]}, "then": 2},
                {"case": {"$eq": [kind, "object"]}, "then": 3},
                {"case": {"$eq": [kind, "array"]}, "then": 4},
                {"case": {"$eq": [kind, "bool"]}, "then": 5},
            ], "default": 6}}  # dates and binary data (not JSON): after booleans
            # Objects and arrays are not compared with each other: they tie, and the key decides.
            shaped[f"v{i}"] = {"$cond": [{"$in": [kind, ["object", "array"]]}, None, "$" + name]}
            sort[f"r{i}"] = direction
            sort[f"v{i}"] = direction
        return [{"$replaceWith": shaped}, {"$sort": sort}]

    @staticmethod
    def unwrap_stages() -> list[dict[str, Any]]:
        return [{"$replaceWith": "$d"}, {"$project": {"_id": 0}}]

    def key_id(self, key: tuple[Any, ...]) -> Any:
        """The ``_id`` of a stored key tuple: the hash value, or ``{"h": hash, "r": range}``."""
        if len(key) == 1:
            return key[0]
        return {"h": key[0], "r": key[1]}

    # -- nodes ----------------------------------------------------------------------------
    def visit_compare(self, node: Compare) -> dict[str, Any]:
        value = self.value(node.path, node.value)
        exact = self.ttl_compare(node.op, value) if self._is_ttl(node.path) else None
        if exact is not None:
            return exact
        if node.op == "eq" and isinstance(value, list) and self._may_nest(node.path):
            return self._equals_list(node.path, value)
        return self._ops(node.path, {OPERATORS[node.op]: value}, isinstance(value, list))

    def visit_between(self, node: Between) -> dict[str, Any]:
        low, high = self.value(node.path, node.low), self.value(node.path, node.high)
        if self._is_ttl(node.path):
            first, last = self.ttl_compare("ge", low), self.ttl_compare("le", high)
            if first is not None and last is not None:
                return {"$and": [first, last]}
        return self._ops(node.path, {"$gte": low, "$lte": high})

    def visit_in(self, node: In) -> dict[str, Any]:
        values = [self.value(node.path, v) for v in node.values]
        if self._is_ttl(node.path) and values and all(isinstance(v, _dt.datetime) for v in values):
            return {"$or": [self.ttl_compare("eq", v) for v in values]}
        if any(isinstance(v, Mapping) or (isinstance(v, list) and self._may_nest(node.path)) for v in values):
            # MongoDB refuses "$"-keys nested under $in; $eq keeps every dict literal, and a list
            # needs the exact form of visit_compare.
            return {"$or": [self.visit_compare(Compare("eq", node.path, v)) for v in node.values]}
        return self._ops(node.path, {"$in": values}, any(isinstance(v, list) for v in values))

    def visit_exists(self, node: Exists) -> dict[str, Any]:
        return self._exists(node.path)

    def visit_prefix(self, node: Prefix) -> dict[str, Any]:
        return self._ops(node.path, {"$regex": "^" + re.escape(node.prefix)})

    def visit_like(self, node: Like) -> dict[str, Any]:
        pattern = like_to_regex(node.pattern)
        assert pattern.endswith("$")
        # "s": "_" and "%" match newlines too, as SQL LIKE does.
        return self._ops(node.path, {"$regex": pattern[:-1] + END, "$options": "s"})

    def visit_contains(self, node: Contains) -> dict[str, Any]:
        if node.is_list:
            value = self.value(node.path, node.value, getattr(node.path.field, "inner", None))
            return {self.field(node.path): {"$elemMatch": {"$eq": value}}}
        if not isinstance(node.value, str):
            raise QueryError(f"{node.path.dotted}.contains() on a string needs a string, not {node.value!r}.")
        return self._ops(node.path, {"$regex": re.escape(node.value)})

    def visit_and(self, node: And) -> dict[str, Any]:
        return and_filters(*(self.compile(n) for n in node.items))

    def visit_or(self, node: Or) -> dict[str, Any]:
        return {"$or": [self.compile(n) for n in node.items]}

    def visit_not(self, node: Not) -> dict[str, Any]:
        inner = node.item
        if isinstance(inner, Exists) and self._scalar(inner.path):
            return {self.field(inner.path): {"$eq": None}}  # missing or null
        if isinstance(inner, (Compare, In)) and self._is_ttl(inner.path):
            return {"$nor": [self.compile(inner)]}  # a pair of attributes: no single-field shortcut
        if isinstance(inner, Compare) and inner.op == "eq" and self._scalar(inner.path):
            return {self.field(inner.path): {"$ne": self.value(inner.path, inner.value)}}
        if isinstance(inner, In) and self._scalar(inner.path):
            values = [self.value(inner.path, v) for v in inner.values]
            if not any(isinstance(v, Mapping) for v in values):
                return {self.field(inner.path): {"$nin": values}}
        return {"$nor": [self.compile(inner)]}
