"""Unique indexes on DynamoDB: one guard item per unique value, in a guard table beside the model's.

DynamoDB has no unique constraint (a GSI is not one), so each unique value an item holds is
claimed by a guard item, ``{"guard": "u#<index>#<value>", "owner": "<item key>"}``, written in
the same ``TransactWriteItems`` as the item with ``attribute_not_exists``: two items can never
hold the same value, even when written at once. The guards live in their own table,
``<table>.unique``, created by ``sync``, so no read, scan, count, page or delete of the model's
table ever sees them, whatever the model's key types. Items lacking a field of the index (or
holding null there) have no guard: unique indexes ignore missing values, as on every backend.
On a TTL model a guard carries its owner's expiry, so an expired item's value counts as free.
See docs/backends/dynamodb.md ("Unique indexes").
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context as DecimalContext
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...expressions.nodes import Path
from ..codec import parse_iso_utc
from .codec import epoch_of, from_av, to_av
from .planner.compiler import ATOM, Context, Term, conj, disj
from .transact import Write

if TYPE_CHECKING:
    from .repository import DynamoRepository

GUARD = "guard"
OWNER = "owner"
EXPIRES = "expires"
OF = "of"  # the owner's key as AttributeValues, so sync can find the item a guard belongs to
SUFFIX = ".unique"
#: Longer encoded values are keyed by their SHA-256 (a hash key holds at most 2,048 bytes).
MAX_INLINE = 1024
#: Enough digits for any DynamoDB number (38 significant), so normalizing never rounds.
_WIDE = DecimalContext(prec=60)
#: One unique index's value: the AttributeValue of each of its fields.
Value = tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class UniqueIndex:
    name: str
    paths: tuple[Path, ...]

    @property
    def shown(self) -> str:
        return ", ".join(p.dotted for p in self.paths)


def _canonical(av: Mapping[str, Any]) -> Any:
    """An AttributeValue as JSON data that is equal exactly when DynamoDB would call the values equal."""
    (tag, value), = av.items()
    if tag == "N":
        return ["N", _number(value)]
    if tag == "B":
        return ["B", base64.b64encode(bytes(value)).decode()]
    if tag == "NS":
        return ["NS", sorted(_number(v) for v in value)]
    if tag == "BS":
        return ["BS", sorted(base64.b64encode(bytes(v)).decode() for v in value)]
    if tag == "SS":
        return ["SS", sorted(value)]
    if tag == "M":
        return ["M", sorted([k, _canonical(v)] for k, v in value.items())]
    if tag == "L":
        return ["L", [_canonical(v) for v in value]]
    return [tag, value]


def _number(text: str) -> str:
    value = _WIDE.normalize(Decimal(text))
    return "0" if value.is_zero() else format(value, "f") if abs(value.adjusted()) < 40 else str(value)


def av_at(item: Mapping[str, Any], path: Path) -> dict[str, Any] | None:
    """The AttributeValue at ``path`` of an item (dotted paths walk maps); None when missing or null."""
    node: Any = {"M": item}
    for part in path.parts:
        inner = node.get("M") if isinstance(node, Mapping) else None
        if not isinstance(inner, Mapping) or part not in inner:
            return None
        node = inner[part]
    return None if "NULL" in node else dict(node)


def _text(values: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps([_canonical(v) for v in values], ensure_ascii=False, separators=(",", ":"))


class Guards:
    """The unique indexes of one repository and the guard writes that enforce them."""

    def __init__(self, repo: DynamoRepository) -> None:
        self.repo = repo
        self.table = repo.table + SUFFIX
        keys = {p.parts for p in repo.spec.key_paths}
        # An index that includes the whole primary key is unique already: it needs no guards.
        self.indexes = [UniqueIndex(ix.name, ix.paths) for ix in repo.spec.indexes
                        if ix.unique and not keys <= {p.parts for p in ix.paths}]
        self.paths = list({p.parts: p for ix in self.indexes for p in ix.paths}.values())
        self.names = {p.parts[0] for p in self.paths}
        self.ttl = repo.ttl

    def __bool__(self) -> bool:
        return bool(self.indexes)

    # -- values (all on AttributeValue items, so a stored number is never re-rounded) --------------
    def value(self, ix: UniqueIndex, item: Mapping[str, Any]) -> Value | None:
        """The index's value in ``item``, or None when a field is missing or null (no guard then)."""
        out = tuple(av_at(item, p) for p in ix.paths)
        return None if any(v is None for v in out) else out  # type: ignore[return-value]

    def values(self, item: Mapping[str, Any] | None) -> dict[str, Value]:
        if item is None:
            return {}
        found = {ix.name: self.value(ix, item) for ix in self.indexes}
        return {name: v for name, v in found.items() if v is not None}

    def key(self, name: str, value: Value) -> str:
        text = _text(value)
        if len(text.encode("utf-8")) > MAX_INLINE:
            text = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
        return f"u#{name}#{text}"

    def owner(self, key: tuple[Any, ...]) -> str:
        return _text([to_av(v) for v in key])

    def expiry(self, item: Mapping[str, Any] | None) -> Decimal | None:
        """The owner's TTL as epoch seconds (ISO text written by the Go package is converted)."""
        av = item.get(self.ttl) if self.ttl and item else None
        if not av:
            return None
        if "N" in av:
            return Decimal(av["N"])
        if "S" in av:
            try:
                return Decimal(av["S"])
            except ArithmeticError:
                return epoch_of(parse_iso_utc(av["S"]))
        return None

    def same(self, a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
        """Equal as far as guards care: existence, unique values, expiry."""
        if (a is None) != (b is None):
            return False
        return {n: self.key(n, v) for n, v in self.values(a).items()} == \
            {n: self.key(n, v) for n, v in self.values(b).items()} and self.expiry(a) == self.expiry(b)

    def index(self, name: str) -> UniqueIndex:
        return next(ix for ix in self.indexes if ix.name == name)

    def label(self, name: str, value: Value) -> str:
        ix = self.index(name)
        plain = tuple(from_av(v) for v in value)
        shown = repr(plain[0]) if len(plain) == 1 else repr(plain)
        return f"the unique index '{ix.name}' ({ix.shown}) value {shown}"

    # -- writes -----------------------------------------------------------------------------
    def claim(self, name: str, value: Value, key: tuple[Any, ...], expires: Decimal | None) -> Write:
        """Put the guard: it must be free, already ours, or its owner expired."""
        owner = self.owner(key)
        ctx = Context()
        g, o = ctx.name(GUARD), ctx.name(OWNER)
        terms: list[Term] = [(f"attribute_not_exists({g})", ATOM), (f"{o} = {ctx.value({'S': owner})}", ATOM)]
        if self.ttl:
            e = ctx.name(EXPIRES)
            terms.append((f"{e} <= {ctx.value(to_av(self.repo.now()))}", ATOM))
        item = {GUARD: {"S": self.key(name, value)}, OWNER: {"S": owner}, OF: {"M": self.repo.key_av(key)}}
        if expires is not None:
            item[EXPIRES] = to_av(expires)
        request = {"TableName": self.table, "Item": item, "ConditionExpression": disj(terms)[0], **ctx.attributes()}
        return Write("Put", request, "claim", name, value)

    def release(self, name: str, value: Value, key: tuple[Any, ...]) -> Write:
        """Delete the guard if it is ours (a missing one is fine: the delete is then a no-op)."""
        owner = self.owner(key)
        ctx = Context()
        g, o = ctx.name(GUARD), ctx.name(OWNER)
        cond = f"attribute_not_exists({g}) OR {o} = {ctx.value({'S': owner})}"
        request = {"TableName": self.table, "Key": {GUARD: {"S": self.key(name, value)}}, "ConditionExpression": cond,
                   **ctx.attributes()}
        return Write("Delete", request, "release", name, value)

    def swap(self, key: tuple[Any, ...], old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
             skip: frozenset[str] | set[str] = frozenset()) -> list[Write]:
        """Guard writes that move the item from ``old`` to ``new``: claim new values, release old ones.

        An unchanged value is claimed again only when the expiry changed (the guard carries it).
        ``skip`` names guards found owned by someone else: those are not released.
        """
        before, after = self.values(old), self.values(new)
        had = {self.key(n, v) for n, v in before.items()}
        has = {self.key(n, v) for n, v in after.items()}
        refresh = self.ttl is not None and self.expiry(old) != self.expiry(new)
        exp = self.expiry(new)
        out = [self.claim(n, v, key, exp) for n, v in after.items() if refresh or self.key(n, v) not in had]
        out += [self.release(n, v, key) for n, v in before.items() if self.key(n, v) not in has | set(skip)]
        return out

    def unchanged(self, ctx: Context, hash_name: str, cur: Mapping[str, Any] | None) -> Term:
        """The stored item is still ``cur`` as far as guards care: existence, unique values, expiry."""
        h = ctx.name(hash_name)
        if cur is None:
            return f"attribute_not_exists({h})", ATOM
        terms: list[Term] = [(f"attribute_exists({h})", ATOM)]
        paths: Sequence[Path] = self.paths + ([Path((self.ttl,))] if self.ttl else [])
        for p in paths:
            name = ctx.path(p.parts)
            got = av_at(cur, p)
            if got is None:
                terms.append(disj([(f"attribute_not_exists({name})", ATOM),
                                   (f"attribute_type({name}, {ctx.value({'S': 'NULL'})})", ATOM)]))
            else:
                terms.append((f"{name} = {ctx.value(got)}", ATOM))
        return conj(terms)

