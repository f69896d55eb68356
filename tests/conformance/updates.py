"""Random atomic updates (odm/updates.py) as data, and the reference's reading of them.

An ``UpdateCase`` is a list of actions (``Act``) on distinct, non-overlapping fields, applied to
one stored item (``instance.update``) or to every match of a condition (``Query.update``, which
returns a count). Each action prints as the Python a user writes: ``tags=odm.append('a')`` or
``Item.addr.city.set('x')``. ``apply`` is the contract of docs/models.md "Atomic updates" over
attribute values (the reference instance's, before storing).
"""

from __future__ import annotations

import decimal
import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

import odm

from .strategies import INT64_MAX, INT64_MIN, VALUES, Cond, conditions, decimals, dicts, ints, short, strings

#: Update path -> (kind, the actions it takes). Kinds: scalar kinds, "list", "set", "dict", "embedded".
PATHS: dict[str, tuple[str, tuple[str, ...]]] = {
    "s": ("str", ("set", "unset")), "i": ("int", ("set", "unset", "inc", "inc")), "f": ("float", ("set", "unset", "inc", "inc")),
    "d": ("decimal", ("set", "unset", "inc", "inc")), "b": ("bool", ("set", "unset")), "t": ("datetime", ("set", "unset")),
    "code": ("str", ("set", "unset")), "extra": ("dict", ("set", "unset")), "addr": ("embedded", ("set", "unset")),
    "tags": ("list", ("append", "append", "remove", "remove", "set", "unset")),
    "labels": ("set", ("add", "add", "discard", "discard", "set", "unset")),
    "nums": ("set", ("add", "add", "discard", "discard", "set", "unset")),
    "decs": ("set", ("add", "add", "discard", "discard", "set", "unset")),
    "addr.city": ("str", ("set", "set", "set", "unset")),  # unset: a required sub-field, a ValidationError
    "addr.zip": ("int", ("set", "unset", "inc", "inc")),
    "addr.codes": ("list", ("append", "remove", "set", "unset")),
    "addr.marks": ("set", ("add", "discard", "set", "unset")),
}
#: Element strategies of the list and set paths.
ELEMENTS: dict[str, Any] = {"tags": short, "labels": short, "nums": ints, "decs": decimals(), "addr.codes": short, "addr.marks": ints}
#: Whole-value strategies of the other paths (set()).
WHOLE: dict[str, Any] = {**VALUES, "addr.city": strings, "addr.zip": ints, "addr.codes": st.lists(short, max_size=3),
                         "addr.marks": st.sets(ints, max_size=3), "extra": dicts}
#: Increments near the limits: 64-bit integers, the largest doubles, Decimals with many digits.
AMOUNTS: dict[str, Any] = {
    "int": st.one_of(st.integers(-3, 3), st.sampled_from([2**62, -(2**62), INT64_MAX, INT64_MIN, 2**53 + 1])),
    "float": st.one_of(st.sampled_from([1.0, -1.0, 0.5, 0.1, 0.2, -0.0, 1e16, 1e100, 9e125, -9e125, 1.7e308, -1.7e308]),
                       st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
    "decimal": st.one_of(st.sampled_from([decimal.Decimal(x) for x in ("1", "-1", "0.1", "-0.5", "1E+20", "1E-20", "1.10")]),
                         decimals()),
}


@dataclass(frozen=True)
class Act:
    """One action: ``op`` on ``path`` with ``args``, spelled positionally (``Item.tags.append``) or as a keyword."""

    op: str
    path: str
    args: tuple[Any, ...] = ()
    positional: bool = False

    def build(self, model: type) -> tuple[Any, tuple[str, Any] | None]:
        """(a positional action or None, a keyword (name, value) or None) on ``model``."""
        if self.positional or "." in self.path:
            ref: Any = model
            for part in self.path.split("."):
                ref = getattr(ref, part)
            return getattr(ref, self.op)(*self.args), None
        value = {"set": lambda: self.args[0], "unset": odm.unset, "inc": lambda: odm.inc(self.args[0]),
                 "append": lambda: odm.append(*self.args), "remove": lambda: odm.remove(*self.args),
                 "add": lambda: odm.add(*self.args), "discard": lambda: odm.discard(*self.args)}[self.op]()
        return None, (self.path, value)

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.args))
        if self.positional or "." in self.path:
            return f"Item.{self.path}.{self.op}({shown})"
        if self.op == "set":
            return f"{self.path}={shown}"
        return f"{self.path}=odm.{self.op}({shown})"


@dataclass(frozen=True)
class UpdateCase:
    """Actions applied to the stored item ``key`` (instance form) or to the matches of ``where`` (query form)."""

    acts: tuple[Act, ...]
    key: tuple[str, int] | None = None
    where: Cond | None = None

    def call(self, model: type, target: Any) -> Any:
        positional, keywords = [], {}
        for act in self.acts:
            action, keyword = act.build(model)
            if action is not None:
                positional.append(action)
            if keyword is not None:
                keywords[keyword[0]] = keyword[1]
        return target.update(*positional, **keywords)

    def __repr__(self) -> str:
        acts = ", ".join(sorted(map(repr, self.acts), key=lambda a: "=" in a))  # positional first, as Python wants
        if self.key is not None:
            return f"Item.get{self.key!r}.update({acts})"
        return f"Item.query({'' if self.where is None else repr(self.where)}).update({acts})"


def _stored_elements(pool: list[dict[str, Any]], path: str) -> list[Any]:
    out: list[Any] = []
    for row in pool:
        cur: Any = row
        for part in path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if isinstance(cur, (list, set)):
            out.extend(sorted(cur, key=repr) if isinstance(cur, set) else cur)  # the same examples in every run
    return out


@st.composite
def acts(draw: Any, pool: list[dict[str, Any]]) -> tuple[Act, ...]:
    """One to four actions on distinct fields, none inside another (``addr`` excludes ``addr.*``)."""
    # Sizes drawn explicitly: hypothesis's own list sizes favour one element.
    count = draw(st.sampled_from([1, 2, 2, 3, 4]))
    paths = draw(st.lists(st.sampled_from(list(PATHS)), min_size=count, max_size=count, unique=True))
    if "addr" in paths:
        paths = [p for p in paths if not p.startswith("addr.")]
    out = []
    for path in paths:
        kind, ops = PATHS[path]
        op = draw(st.sampled_from(ops))
        if op == "set":
            args: tuple[Any, ...] = (draw(st.one_of(WHOLE[path], st.none()) if path != "addr.city" else WHOLE[path]),)
        elif op == "unset":
            args = ()
        elif op == "inc":
            args = (draw(AMOUNTS[kind]),)
        else:  # element actions: often values a stored item holds, so that removals happen
            stored = _stored_elements(pool, path)
            element = st.one_of(ELEMENTS[path], st.sampled_from(stored)) if stored else ELEMENTS[path]
            size = draw(st.sampled_from([1, 2, 2, 3]))
            args = tuple(draw(st.lists(element, min_size=size, max_size=size)))
        out.append(Act(op, path, args, positional=draw(st.booleans())))
    return tuple(out)


@st.composite
def update_cases(draw: Any, pool: list[dict[str, Any]]) -> UpdateCase:
    actions = draw(acts(pool))
    if draw(st.booleans()):
        keys = [(r["pk"], r["sk"]) for r in pool]
        missing = st.tuples(st.sampled_from(["a", "b", "é"]), st.sampled_from([0, 1, -1]))  # perhaps stored
        key = draw(st.sampled_from(keys)) if keys and draw(st.integers(0, 5)) else draw(missing)
        return UpdateCase(actions, key=key)
    return UpdateCase(actions, where=draw(st.one_of(st.none(), conditions(pool))))


# -- the reference -------------------------------------------------------------------------------
class Refused(Exception):
    """The contract refuses this action on this item: ``kind`` is the odm error a user sees."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def attrs(obj: Any) -> dict[str, Any]:
    """An instance's present attributes by field name (embedded models as dicts), as input to the model again."""
    out: dict[str, Any] = {}
    for name in type(obj)._fields:
        value = getattr(obj, name)
        if value is None:
            continue
        out[name] = attrs(value) if isinstance(value, odm.EmbeddedModel) else value
    return out


def inc_range(kind: str, max_number: float) -> tuple[Any, Any] | None:
    """The range an increment must keep a field in (None: no range check, as for Decimal)."""
    if kind == "int":
        return INT64_MIN, INT64_MAX
    if kind == "float":
        most = min(sys.float_info.max, max_number)
        return -most, most
    return None


def check(acts_: tuple[Act, ...], values: dict[str, Any], max_number: float) -> None:
    """Raise Refused when the contract refuses the update on an item holding ``values``.

    Order as Model.update reports it: a nested action on a missing embedded model
    (ConditionFailed) before an increment leaving its range (ValidationError).
    """
    for act in acts_:
        if "." in act.path and not isinstance(values.get(act.path.split(".")[0]), dict):
            raise Refused("ConditionFailed")
    for act in acts_:
        if act.op != "inc":
            continue
        bounds = inc_range(PATHS[act.path][0], max_number)
        current = _at(values, act.path)
        if bounds is None or current is None:  # a missing value counts as 0, which always fits
            continue
        total = Fraction(current) + Fraction(act.args[0])
        if not Fraction(bounds[0]) <= total <= Fraction(bounds[1]):
            raise Refused("ValidationError")


def validation_refusal(acts_: tuple[Act, ...]) -> str | None:
    """What every backend refuses before any request, whatever is stored (a required sub-field unset)."""
    for act in acts_:
        if act.path == "addr.city" and (act.op == "unset" or (act.op == "set" and act.args[0] is None)):
            return "ValidationError"
    return None


def _at(values: dict[str, Any], path: str) -> Any:
    cur: Any = values
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def apply(acts_: tuple[Act, ...], values: dict[str, Any]) -> dict[str, Any]:
    """The attribute values after the actions (to be validated by the model again)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for act in acts_:
        *parents, last = act.path.split(".")
        holder = out
        for part in parents:
            holder = holder[part]
        current = holder.get(last)
        if act.op == "set":
            new = act.args[0]
        elif act.op == "unset":
            new = None
        elif act.op == "inc":
            amount = act.args[0]
            kind = PATHS[act.path][0]
            if kind == "decimal":
                new = decimal.Context(prec=200).add(current or decimal.Decimal(0), decimal.Decimal(amount))
            elif kind == "float":
                new = (current or 0.0) + float(amount)
            else:
                new = (current or 0) + amount
        elif act.op == "append":
            new = [*(current or []), *act.args]
        elif act.op == "remove":
            new = None if current is None else [x for x in current if not any(_same(x, v) for v in act.args)]
        elif act.op == "add":
            new = set(current or ()) | set(act.args)
        else:  # discard
            new = None if current is None else {x for x in current if not any(_same(x, v) for v in act.args)}
        if new is None:
            holder.pop(last, None)
        else:
            holder[last] = new
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a == b and not (math.isnan(a) or math.isnan(b))
    return bool(a == b)
