"""Evaluate an expression on a stored item in Python, with DynamoDB's two-valued semantics.

Used for what DynamoDB cannot express server-side (LIKE patterns other than
prefixes, applied after the server filter) and to decide how a write
condition judges a missing item (an expired TTL item counts as missing).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from ....expressions.nodes import And, Between, Compare, Contains, Exists, In, Like, Node, Not, Or, Path, Prefix, like_to_regex
from ...codec import Codec
from ..codec import float_decimal, from_av
from .rewrite import Encoded

_MISSING = object()
_NUMERIC = {None, "int", "float", "decimal"}


def value_at(doc: Any, path: Path) -> Any:
    cur = doc
    for part in path.parts:
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return _MISSING if cur is None else cur


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return frozenset(_norm(v) for v in value)
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _family(value: Any) -> type | None:
    if isinstance(value, bool):
        return bool  # False < True, as on every backend
    if isinstance(value, Decimal):
        return Decimal
    if isinstance(value, (str, bytes)):
        return type(value)
    return None


def _ordered(op: str, left: Any, right: Any) -> bool:
    if _family(left) is None or _family(left) is not _family(right):
        return False
    if op == "lt":
        return bool(left < right)
    if op == "le":
        return bool(left <= right)
    if op == "gt":
        return bool(left > right)
    return bool(left >= right)


class Evaluator:
    """``matches(node, doc)`` on stored documents; query values are encoded like stored ones."""

    def __init__(self, codec: Codec, ttl_attribute: str | None) -> None:
        self.codec = codec
        self.ttl = ttl_attribute

    def _stored(self, path: Path, value: Any, field: Any = None) -> Any:
        if isinstance(value, Encoded):
            return _norm(from_av(value.av, exact=True))
        field = field if field is not None else path.field
        if getattr(field, "kind", None) in _NUMERIC and isinstance(value, (int, float, Decimal)) \
                and not isinstance(value, bool) and path.parts[0] != self.ttl:
            # Exactly, even beyond what DynamoDB stores (the encoder would refuse it as a stored value).
            return float_decimal(value) if isinstance(value, float) else Decimal(value)
        return _norm(self.codec.encode_value(value, field, path.parts[0] == self.ttl))

    def matches(self, node: Node, doc: dict[str, Any]) -> bool:
        if isinstance(node, And):
            return all(self.matches(n, doc) for n in node.items)
        if isinstance(node, Or):
            return any(self.matches(n, doc) for n in node.items)
        if isinstance(node, Not):
            return not self.matches(node.item, doc)
        have = value_at(doc, node.path)  # type: ignore[attr-defined]
        if have is _MISSING:
            return False
        have = _norm(have)
        if isinstance(node, Exists):
            return True
        if isinstance(node, Compare):
            want = self._stored(node.path, node.value)
            return bool(have == want) if node.op == "eq" else _ordered(node.op, have, want)
        if isinstance(node, Between):
            return _ordered("ge", have, self._stored(node.path, node.low)) and _ordered("le", have, self._stored(node.path, node.high))
        if isinstance(node, In):
            return any(have == self._stored(node.path, v) for v in node.values)
        if isinstance(node, Prefix):
            return isinstance(have, str) and have.startswith(node.prefix)
        if isinstance(node, Contains):
            if isinstance(have, str):
                return isinstance(node.value, str) and node.value in have
            if isinstance(have, (list, frozenset)):
                want = self._stored(node.path, node.value, getattr(node.path.field, "inner", None))
                return want in have
            return False
        if isinstance(node, Like):
            return isinstance(have, str) and re.fullmatch(like_to_regex(node.pattern), have, re.DOTALL) is not None
        raise TypeError(f"Cannot evaluate {node!r}.")
