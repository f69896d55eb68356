"""Update actions beyond plain values: list and set elements, removals and nested paths.

Two spellings reach the same nodes. Keyword values of ``update()`` name a top-level field
(``tags=odm.append("x")``); positional actions are built from field references and may reach
into embedded models (``User.address.city.set("Paris")``). ``Binding.update_parts`` validates
both into :class:`UpdateAction` nodes in stored form, which each repository compiles into one
server-side update (docs/models.md, "Atomic updates").
"""

from __future__ import annotations

import decimal
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .errors import QueryError
from .expressions.nodes import Exists, Node, Not

if TYPE_CHECKING:
    from .fields import Field, FieldRef

#: The field kind each element operation works on, and the operation to use on the other kind.
ELEMENT_KINDS: dict[str, tuple[str, str]] = {
    "append": ("list", "add"), "remove": ("list", "discard"),
    "add": ("set", "append"), "discard": ("set", "remove"),
}
_KIND_NAMES = {"list": "List", "set": "Set"}
#: Field kinds odm.inc() adds to.
NUMERIC_KINDS = frozenset({"int", "float", "decimal"})


#: The range an increment must keep a field in, by field kind.
INC_RANGES: dict[str, tuple[Any, Any]] = {"int": (-(2**63), 2**63 - 1), "float": (-sys.float_info.max, sys.float_info.max)}


class Increment:
    """``odm.inc(n)``: an atomic server-side increment inside ``Model.update``."""

    __slots__ = ("amount",)

    def __init__(self, amount: Any = 1) -> None:
        if isinstance(amount, bool) or not isinstance(amount, (int, float, decimal.Decimal)):
            raise QueryError(f"odm.inc() takes a number (int, float or Decimal), not {amount!r}.")
        self.amount = amount

    def __repr__(self) -> str:
        return f"odm.inc({self.amount!r})"


def inc(amount: Any = 1) -> Increment:
    """Atomically add ``amount`` to a numeric field in ``Model.update``."""
    return Increment(amount)


class Elements:
    """``odm.append("x")`` and friends: values to add to or take from a List or Set field."""

    __slots__ = ("op", "values")

    def __init__(self, op: str, values: tuple[Any, ...]) -> None:
        if not values:
            raise QueryError(f"odm.{op}() needs at least one value, as in odm.{op}('x', 'y').")
        self.op = op
        self.values = values

    def __repr__(self) -> str:
        return f"odm.{self.op}({', '.join(map(repr, self.values))})"


class Unset:
    """``odm.unset()``: remove the attribute (as ``field=None`` does)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "odm.unset()"


def append(*values: Any) -> Elements:
    """Atomically append ``values`` (in order) to a List field; a missing list starts empty."""
    return Elements("append", values)


def remove(*values: Any) -> Elements:
    """Atomically remove every occurrence of each of ``values`` from a List field."""
    return Elements("remove", values)


def add(*values: Any) -> Elements:
    """Atomically add ``values`` to a Set field (a missing set starts empty)."""
    return Elements("add", values)


def discard(*values: Any) -> Elements:
    """Atomically take ``values`` out of a Set field (absent ones are ignored)."""
    return Elements("discard", values)


def unset() -> Unset:
    """Atomically remove a field's attribute (it reads back as None)."""
    return Unset()


class FieldAction:
    """``User.tags.append("y")``: an action on a field reference, given positionally to ``update()``."""

    __slots__ = ("ref", "op", "arg")

    def __init__(self, ref: FieldRef, op: str, arg: Any = None) -> None:
        self.ref = ref
        self.op = op
        self.arg = arg
        if op in ELEMENT_KINDS:
            problem = kind_problem(ref.field, op, ref.label, ref.label + ".")
            if problem:
                raise QueryError(problem)
        elif op == "inc" and ref.field.kind not in NUMERIC_KINDS:
            raise QueryError(f"{ref.label}.inc() needs an Integer, Float or Decimal field; "
                             f"{ref.label} is a {type(ref.field).__name__} field. Use .set() instead.")

    def keyword(self) -> Any:
        """The keyword-form value of this action (for a top-level field)."""
        if self.op == "set":
            return self.arg
        if self.op == "unset":
            return Unset()
        if self.op == "inc":
            return Increment(self.arg)
        return Elements(self.op, self.arg)

    def __bool__(self) -> bool:
        raise TypeError(f"{self!r} is an update action; pass it to update(), do not test it.")

    def __repr__(self) -> str:
        if self.arg is None:
            shown = ""
        elif self.op in ELEMENT_KINDS:  # the values as they were given: .append("a", "b")
            shown = ", ".join(repr(v) for v in self.arg)
        else:
            shown = repr(self.arg)
        return f"{self.ref.label}.{self.op}({shown})"


def kind_problem(field: Field, op: str, label: str, prefix: str) -> str | None:
    """Why ``op`` cannot apply to ``field`` (a sentence naming what would work), or None.

    ``prefix`` spells the call as the user wrote it: "odm." or "User.tags.".
    """
    need, other = ELEMENT_KINDS[op]
    kind = field.kind
    if kind == need:
        return None
    what = _KIND_NAMES.get(kind, type(field).__name__)
    instead = other if kind in _KIND_NAMES else "set"
    if prefix == "odm." and instead == "set":
        return f"odm.{op}() works on a {_KIND_NAMES[need]} field and {label} is a {what} field; assign the new value instead."
    return f"{prefix}{op}() works on a {_KIND_NAMES[need]} field and {label} is a {what} field; use {prefix}{instead}() instead."


@dataclass(frozen=True, slots=True)
class UpdateAction:
    """One validated action in stored form, for a repository.

    ``op`` is one of set, unset, inc, append, remove, add, discard; ``path`` the stored names
    from the document's root; ``field`` the field at the path; ``value`` the stored value (for
    set), the amount (inc) or the elements in the stored form of the field's container (a list,
    or the backend's stored set).
    """

    op: str
    path: tuple[str, ...]
    field: Field
    value: Any = None

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def check_overlaps(paths: list[tuple[tuple[str, ...], str]]) -> None:
    """QueryError when two actions of one update touch the same path, or one path inside another."""
    ordered = sorted(paths)
    for (a, label_a), (b, label_b) in zip(ordered, ordered[1:], strict=False):
        if b[:len(a)] == a:
            raise QueryError(f"One update cannot change both {label_a} and {label_b}: they "
                             f"{'are the same path' if a == b else 'overlap'}. Combine them into one action, "
                             "or make two updates.")


def element_values(field: Field, values: tuple[Any, ...], encoder: Callable[[Any], Any] | None) -> Any:
    """The elements in the stored form of their container; raises fields.Invalid."""
    loaded = field.convert(list(values))
    return encoder(loaded) if encoder is not None else list(loaded)


def split_update_args(model: type, args: Iterable[Any], condition: Node | None) -> tuple[list[FieldAction], Node | None]:
    """``update()``'s positional arguments: actions, and at most one condition expression."""
    actions: list[FieldAction] = []
    for arg in args:
        if isinstance(arg, FieldAction):
            actions.append(arg)
        elif isinstance(arg, Node):
            if condition is not None:
                raise QueryError(f"{model.__name__}.update() takes one condition; combine several with &.")
            condition = arg
        else:
            raise QueryError(f"{model.__name__}.update() takes actions such as {model.__name__}.<field>.set(value) "
                             f"and one condition expression positionally, not {arg!r}.")
    return actions, condition


@dataclass(frozen=True)
class Inc:
    """One increment to keep in range: the attribute names, its reference, amount and bounds."""

    names: tuple[str, ...]
    ref: FieldRef
    amount: Any
    low: Any
    high: Any


def increments_of(model: Any, changes: Mapping[str, Any], positional: Sequence[FieldAction]) -> list[Inc]:
    """Each increment of an Integer or Float field (keyword or positional), with the range it must stay in."""
    most = model._bound().repo.backend.features.max_number
    refs: list[tuple[FieldRef, Any]] = [(getattr(model, name), value.amount) for name, value in changes.items()
                                        if isinstance(value, Increment) and name in model._fields]
    refs += [(a.ref, a.arg) for a in positional if a.op == "inc"]
    out = []
    for ref, amount in refs:
        field = ref.field
        if field.kind not in INC_RANGES:
            continue
        low, high = INC_RANGES[field.kind]
        out.append(Inc(tuple(f.name for f in ref.fields), ref, field.convert(amount), max(low, -most), min(high, most)))
    return out


def _inner_bound(limit: Any, amount: Any) -> Any:
    """The stored value furthest from 0 to which adding ``amount`` stays within ``limit``, exactly.

    ``limit - amount`` rounds (floats), so step it inward until the exact sum fits: a server adding
    in exact arithmetic or rounding to nearest then never passes ``limit``.
    """
    bound = limit - amount
    if isinstance(bound, float):
        inward = -math.inf if amount > 0 else math.inf
        exceeds = (lambda b: Fraction(b) + Fraction(amount) > Fraction(limit)) if amount > 0 else \
            (lambda b: Fraction(b) + Fraction(amount) < Fraction(limit))
        while exceeds(bound):
            bound = math.nextafter(bound, inward)
    return bound


def increment_guards(increments: Iterable[Inc]) -> list[Node]:
    """Conditions that keep ``stored + amount`` inside the field's range (64 bits, finite floats).

    Servers differ when an increment overflows (SQLite turns it into a float, PostgreSQL and
    DynamoDB keep growing, MongoDB refuses), so the update itself is conditioned on the result
    fitting; a missing value counts as 0, which always fits.
    """
    guards: list[Node] = []
    for inc in increments:
        ref = inc.ref
        if inc.amount > 0:
            guards.append(Not(Exists(ref.path)) | (ref <= _inner_bound(inc.high, inc.amount)))
        elif inc.amount < 0:
            guards.append(Not(Exists(ref.path)) | (ref >= _inner_bound(inc.low, inc.amount)))
    return guards


def parent_guards(positional: Sequence[FieldAction]) -> list[Node]:
    """A nested action changes a present embedded model only: every backend then writes the same.

    (MongoDB would create the parent, DynamoDB refuses a path through a missing map, and a
    half-built embedded model could lack its required fields.)
    """
    from .fields import FieldRef

    seen: dict[tuple[str, ...], Node] = {}
    for action in positional:
        ref = action.ref
        if len(ref.fields) > 1:
            parent = FieldRef(ref.model, ref.fields[:-1])
            seen.setdefault(parent.path.parts, Exists(parent.path))
    return list(seen.values())


def value_at(obj: Any, names: Sequence[str]) -> Any:
    """The value at attribute names from a model instance (None where a step is missing)."""
    for name in names:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return obj


def stored_at(doc: Any, path: Sequence[str]) -> Any:
    """The value at stored names in a stored document (None where a step is missing)."""
    for part in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(part)
    return doc


__all__ = ["Elements", "FieldAction", "Inc", "Increment", "Unset", "UpdateAction", "add", "append", "check_overlaps",
           "discard", "element_values", "inc", "increment_guards", "increments_of", "kind_problem", "parent_guards",
           "remove", "split_update_args", "stored_at", "unset", "value_at"]
