"""Update actions (odm.updates) as DynamoDB UpdateExpression clauses.

Native where DynamoDB has the operation: ``SET a.b = :v``, ``REMOVE a.b``, ``SET n = if_not_exists(n, :0) + :x``
(ADD works on top-level attributes only), ``SET l = list_append(if_not_exists(l, :[]), :v)`` and
``ADD s :set``. The rest is computed from a read of the item and written on condition that the
path still holds the value read (an optimistic read-modify-write, retried by the repository):

- removing values from a list (DynamoDB removes list elements by index only);
- taking values out of a set (``DELETE`` would drop the attribute when the set empties, while
  every backend keeps an empty set, stored here as an empty list, as the codec writes it);
- adding to a set stored as that empty list, or to a set inside a map (``ADD`` is top-level only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...expressions.nodes import Path
from ...updates import UpdateAction
from .codec import from_av, to_av
from .guards import av_at
from .planner.compiler import ATOM, Context, Term

EMPTY_LIST: dict[str, Any] = {"L": []}


def needs_read(action: UpdateAction) -> bool:
    """Must this action be computed from a read of the item (see the module docstring)?"""
    return action.op in ("remove", "discard") or (action.op == "add" and len(action.path) > 1)


@dataclass
class Clauses:
    """The pieces actions add to an UpdateExpression, and the conditions they rely on."""

    sets: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    guards: list[Term] = field(default_factory=list)


def _stored(value: Any) -> dict[str, Any]:
    if isinstance(value, (set, frozenset)) and not value:
        return EMPTY_LIST  # an empty Set is stored as an empty list (codec.enc_set)
    return to_av(value)


def _plain(av: Mapping[str, Any]) -> Any:
    return from_av(av, True)


def clauses(ctx: Context, actions: Sequence[UpdateAction], current: Mapping[str, Any] | None,
            read: set[int]) -> Clauses:
    """Clauses for ``actions``; those whose index is in ``read`` are computed from ``current`` (a raw item)."""
    out = Clauses()
    for i, action in enumerate(actions):
        name, op = ctx.path(action.path), action.op
        if i in read:
            _from_read(ctx, out, name, action, av_at(current or {}, Path(action.path)))
        elif op == "set":
            out.sets.append(f"{name} = {ctx.value(_stored(action.value))}")
        elif op == "unset":
            out.removes.append(name)
        elif op == "inc":
            out.sets.append(f"{name} = if_not_exists({name}, {ctx.value({'N': '0'})}) + {ctx.value(to_av(action.value))}")
        elif op == "append":
            out.sets.append(f"{name} = list_append(if_not_exists({name}, {ctx.value(EMPTY_LIST)}), "
                            f"{ctx.value(to_av(list(action.value)))})")
        else:  # add, top level: a real set or none (an empty set stored as a list is read instead)
            out.adds.append(f"{name} {ctx.value(to_av(action.value))}")
            out.guards.append((f"NOT attribute_type({name}, {ctx.value({'S': 'L'})})", ATOM))
    return out


def _from_read(ctx: Context, out: Clauses, name: str, action: UpdateAction, old: dict[str, Any] | None) -> None:
    """One action computed from the value read at its path, guarded by that value.

    When nothing changes, the path is written as it was read (or removed while missing): the
    update still runs, so its conditions are judged and the item is returned as usual.
    """
    out.guards.append((f"attribute_not_exists({name})", ATOM) if old is None else (f"{name} = {ctx.value(old)}", ATOM))
    values = [_plain(to_av(v)) for v in action.value]
    new: dict[str, Any] | None = old
    if action.op == "remove":
        if old is not None and "L" in old:
            new = {"L": [e for e in old["L"] if _plain(e) not in values]}
    else:
        present = set() if old is None or "L" in old else set(_plain(old))
        if action.op == "add":
            new = _stored(present | set(values))
        elif old is not None and present & set(values):  # discard; a missing set stays missing
            new = _stored(present - set(values))
    if new is None:
        out.removes.append(name)
    else:
        out.sets.append(f"{name} = {ctx.value(new)}")


def stale(actions: Sequence[UpdateAction], read: set[int], current: Mapping[str, Any] | None,
          old: Mapping[str, Any]) -> bool:
    """After a refused write: did a path the write relied on change (then ``read`` grows and it is retried)?"""
    moved = False
    for i, action in enumerate(actions):
        now = av_at(old, Path(action.path))
        if i in read:
            moved |= now != av_at(current or {}, Path(action.path))
        elif action.op == "add" and now is not None and "L" in now:
            read.add(i)  # stored as the empty list: compute it from the read instead
            moved = True
    return moved


__all__ = ["Clauses", "clauses", "needs_read", "stale"]
