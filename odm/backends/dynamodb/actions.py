"""Update actions (odm.updates) as DynamoDB UpdateExpression clauses.

Native where DynamoDB has the operation: ``SET a.b = :v``, ``REMOVE a.b``, ``SET n = if_not_exists(n, :0) + :x``
(ADD works on top-level attributes only), ``SET l = list_append(if_not_exists(l, :[]), :v)`` and
``ADD s :set``. The rest is computed from a read of the item and written on condition that the
path still holds the value read (an optimistic read-modify-write, retried by the repository):

- removing values from a list (DynamoDB removes list elements by index only);
- taking values out of a set (``DELETE`` would drop the attribute when the set empties, while
  every backend keeps an empty set, stored here as an empty list, as the codec writes it);
- adding to a set stored as that empty list, or to a set inside a map (``ADD`` is top-level only).

:func:`applied` computes the item the actions make locally, for a transaction block, whose
update is written only at its end (docs/transactions.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context as DecimalContext
from decimal import Decimal
from typing import Any

from ...expressions.nodes import Path
from ...updates import UpdateAction
from .codec import from_av, to_av
from .guards import av_at
from .planner.compiler import ATOM, Context, Term

EMPTY_LIST: dict[str, Any] = {"L": []}
#: Wide enough that adding two DynamoDB numbers (38 digits) never rounds.
WIDE = DecimalContext(prec=80)


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
    new = _computed(action, old)
    if new is None:
        out.removes.append(name)
    else:
        out.sets.append(f"{name} = {ctx.value(new)}")


def _computed(action: UpdateAction, old: dict[str, Any] | None) -> dict[str, Any] | None:
    """The value ``action`` leaves at its path when ``old`` is there (AttributeValues; None: no attribute)."""
    op = action.op
    if op == "set":
        return None if action.value is None else _stored(action.value)
    if op == "unset":
        return None
    if op == "inc":
        before = Decimal(old["N"]) if old is not None and "N" in old else Decimal(0)
        return {"N": str(WIDE.add(before, Decimal(to_av(action.value)["N"])))}
    if op == "append":
        return {"L": [*(old or {}).get("L", []), *to_av(list(action.value))["L"]]}
    values = [_plain(to_av(v)) for v in action.value]
    if op == "remove":
        if old is not None and "L" in old:
            return {"L": [e for e in old["L"] if _plain(e) not in values]}
        return old
    present = set() if old is None or "L" in old else set(_plain(old))
    if op == "add":
        return _stored(present | set(values))
    if old is not None and present & set(values):  # discard; a missing set stays missing
        return _stored(present - set(values))
    return old


def applied(item: Mapping[str, Any], actions: Sequence[UpdateAction]) -> dict[str, Any]:
    """The item ``actions`` make of ``item`` (AttributeValues), computed as DynamoDB applies them.

    Used where the result is needed before the server writes it (a transaction block). A path
    through a missing or non-map parent is left alone: the update's parent guard refuses it.
    """
    out = dict(item)
    for action in actions:
        *parents, last = action.path
        maps: list[dict[str, Any]] = [out]
        for part in parents:
            inner = maps[-1].get(part)
            if not isinstance(inner, dict) or "M" not in inner:
                break
            maps.append(dict(inner["M"]))
        else:
            new = _computed(action, maps[-1].get(last))
            if new is None:
                maps[-1].pop(last, None)
            else:
                maps[-1][last] = new
            for depth in range(len(parents) - 1, -1, -1):  # the copied maps back into their parents
                maps[depth][parents[depth]] = {"M": maps[depth + 1]}
    return out


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


__all__ = ["Clauses", "applied", "clauses", "needs_read", "stale"]
