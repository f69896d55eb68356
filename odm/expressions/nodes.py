"""The expression tree: frozen, slotted nodes that hold data only.

Every backend compiles this one tree (see ``compiler.py``). Nodes never import
a backend. Logic is two-valued (see docs/queries.md): a missing attribute is
neither equal to, less than nor greater than anything, so only ``Not`` turns a
"missing" into a match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..attributes import text_problem
from ..errors import QueryError


class Node:
    """Base of every expression node; ``visit_name`` picks the compiler method."""

    __slots__ = ()
    visit_name: ClassVar[str] = "node"

    def __and__(self, other: Node) -> Node:
        return And.of(self, _check(other))

    def __or__(self, other: Node) -> Node:
        return Or.of(self, _check(other))

    def __invert__(self) -> Node:
        if isinstance(self, Not):
            return self.item
        return Not(self)

    def __bool__(self) -> bool:
        # `if User.age == 3:` is almost always a bug; fail loudly like PynamoDB.
        raise TypeError(
            "An odm expression has no truth value; combine expressions with &, | and ~ "
            "instead of and, or and not."
        )


def _check(other: object) -> Node:
    if not isinstance(other, Node):
        raise TypeError(f"Cannot combine an odm expression with {other!r}; both sides must be expressions.")
    return other


def _operand(value: Any) -> None:
    """Refuse a text operand no stored value can hold (NUL, lone surrogates), on every backend alike."""
    if isinstance(value, str) and ("\x00" in value or not value.isascii()):
        problem = text_problem(value)
        if problem:
            raise QueryError(f"A query cannot compare with {value[:40]!r}: {problem} No stored value can hold it.")


@dataclass(frozen=True, slots=True)
class Path:
    """An attribute path in stored names (``data_key``), e.g. ``("address", "city")``.

    ``field`` is the declared field at the end of the path (None for plain-dict
    repositories); it converts query values to the stored form and is ignored
    by equality.
    """

    parts: tuple[str, ...]
    field: Any = field(default=None, compare=False, repr=False)

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """``path <op> value`` with op one of eq, lt, le, gt, ge (``!=`` is ``Not(eq)``)."""

    visit_name: ClassVar[str] = "compare"
    op: str
    path: Path
    value: Any

    def __init__(self, op: str, path: Path, value: Any) -> None:
        # The generated __init__ of a frozen dataclass, with the slots set directly (one is built
        # per query call): the same attributes, the same operand check.
        _set_op(self, op)
        _set_path(self, path)
        _set_value(self, value)
        _operand(value)


_set_op = Compare.__dict__["op"].__set__
_set_path = Compare.__dict__["path"].__set__
_set_value = Compare.__dict__["value"].__set__


@dataclass(frozen=True, slots=True)
class Between(Node):
    """Inclusive range: ``low <= path <= high``."""

    visit_name: ClassVar[str] = "between"
    path: Path
    low: Any
    high: Any

    def __post_init__(self) -> None:
        _operand(self.low)
        _operand(self.high)


@dataclass(frozen=True, slots=True)
class In(Node):
    """``path`` equals one of ``values`` (``not_in`` is ``Not(In)``)."""

    visit_name: ClassVar[str] = "in"
    path: Path
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        for value in self.values:
            _operand(value)


@dataclass(frozen=True, slots=True)
class Exists(Node):
    """The attribute is present and not null (``== None`` is ``Not(Exists)``)."""

    visit_name: ClassVar[str] = "exists"
    path: Path


@dataclass(frozen=True, slots=True)
class Prefix(Node):
    """A string attribute starts with ``prefix``."""

    visit_name: ClassVar[str] = "prefix"
    path: Path
    prefix: str

    def __post_init__(self) -> None:
        _operand(self.prefix)


@dataclass(frozen=True, slots=True)
class Contains(Node):
    """A list attribute holds ``value`` as an element, or a string holds it as a substring."""

    visit_name: ClassVar[str] = "contains"
    path: Path
    value: Any
    is_list: bool

    def __post_init__(self) -> None:
        _operand(self.value)


@dataclass(frozen=True, slots=True)
class Like(Node):
    """Case-sensitive SQL-LIKE match (``%``, ``_``, backslash escapes); the Go layer's match_pattern."""

    visit_name: ClassVar[str] = "like"
    path: Path
    pattern: str

    def __post_init__(self) -> None:
        _operand(self.pattern)


@dataclass(frozen=True, slots=True)
class And(Node):
    visit_name: ClassVar[str] = "and"
    items: tuple[Node, ...]

    @classmethod
    def of(cls, *nodes: Node) -> Node:
        flat: list[Node] = []
        for node in nodes:
            flat.extend(node.items if isinstance(node, And) else (node,))
        return flat[0] if len(flat) == 1 else cls(tuple(flat))


@dataclass(frozen=True, slots=True)
class Or(Node):
    visit_name: ClassVar[str] = "or"
    items: tuple[Node, ...]

    @classmethod
    def of(cls, *nodes: Node) -> Node:
        flat: list[Node] = []
        for node in nodes:
            flat.extend(node.items if isinstance(node, Or) else (node,))
        return flat[0] if len(flat) == 1 else cls(tuple(flat))


@dataclass(frozen=True, slots=True)
class Not(Node):
    visit_name: ClassVar[str] = "not"
    item: Node


#: LIKE pattern pieces: any run of characters (``%``), exactly one character (``_``), literal text.
LIKE_ANY, LIKE_ONE = "%", "_"


def like_parts(pattern: str) -> list[str | None]:
    """A LIKE pattern as pieces: None for ``%``, ``""`` for ``_``, else literal text.

    The one reading of the API's pattern every backend renders (``\\`` escapes the next
    character; a lone trailing backslash is a literal backslash).
    """
    out: list[str | None] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(next(chars, "\\"))
        elif ch == LIKE_ANY:
            out.append(None)
        elif ch == LIKE_ONE:
            out.append("")
        else:
            out.append(ch)
    return out


def render_like(pattern: str, any_: str, one: str, literal: Callable[[str], str]) -> str:
    """A LIKE pattern in another syntax: ``any_``/``one`` for the wildcards, ``literal`` for text."""
    return "".join(any_ if p is None else one if p == "" else literal(p) for p in like_parts(pattern))


def like_to_regex(pattern: str) -> str:
    """Translate a LIKE pattern (``%``, ``_``, ``\\`` escapes) to an anchored Python regex."""
    import re

    return "^" + render_like(pattern, ".*", ".", re.escape) + "$"


def holds_for_missing(node: Node) -> bool:
    """Whether a condition is true for an item that does not exist (every attribute missing).

    Every comparison, ``exists``, ``startswith``, ``contains`` and ``like`` is false on a missing
    attribute, so only negation can make a condition hold: the rule every backend applies to
    ``save(condition=...)`` over no stored item, without a request.
    """
    if isinstance(node, Not):
        return not holds_for_missing(node.item)
    if isinstance(node, And):
        return all(holds_for_missing(n) for n in node.items)
    if isinstance(node, Or):
        return any(holds_for_missing(n) for n in node.items)
    return False
