"""Expressions to DynamoDB requests: placeholders, condition text, and the Query/Scan planner.

Every attribute name and value travels as a placeholder from one ``Context``
(``#0``/``:0``; a repeated name reuses its number). The planner runs a query as
``Query`` on the table, GSI or LSI whose hash key it constrains by equality,
choosing an index only when it cannot change the answer (a secondary index
holds only items that have its key attributes, and of them only its projected
attributes), else as ``Scan`` (or a QueryError when ``Meta.allow_scan`` is
False). See docs/backends/dynamodb.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from ....errors import QueryError, ValidationError
from ....expressions.compiler import Compiler
from ....expressions.nodes import And, Between, Compare, Contains, Exists, In, Like, Node, Not, Or, Path, Prefix
from ....fields import SortKey
from ....schema import SecondaryIndexSpec, TableSpec
from ...codec import Codec, iso_utc
from ..codec import EPOCH, attribute_type, av_type, to_av
from .rewrite import Encoded, is_always, is_never, rewrite

OPERATORS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
#: DynamoDB allows at most 100 operands in one IN.
MAX_IN = 100


class Context:
    """Collects ExpressionAttributeNames/Values; one per request."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}
        self._value_keys: dict[str, str] = {}

    def name(self, part: str) -> str:
        ph = self.names.get(part)
        if ph is None:
            ph = self.names[part] = f"#{len(self.names)}"
        return ph

    def path(self, parts: tuple[str, ...]) -> str:
        return ".".join(self.name(p) for p in parts)

    def value(self, av: dict[str, Any]) -> str:
        key = repr(av)
        ph = self._value_keys.get(key)
        if ph is None:
            ph = self._value_keys[key] = f":{len(self._value_keys)}"
            self.values[ph] = av
        return ph

    def attributes(self) -> dict[str, Any]:
        """The request's ExpressionAttributeNames/Values (only those used)."""
        out: dict[str, Any] = {}
        if self.names:
            out["ExpressionAttributeNames"] = {ph: name for name, ph in self.names.items()}
        if self.values:
            out["ExpressionAttributeValues"] = dict(self.values)
        return out


def like_exact(pattern: str) -> tuple[str, str] | None:
    """A LIKE pattern DynamoDB can run exactly: ("eq", text), ("prefix", text), ("any", "") or None."""
    out: list[str] = []
    chars = iter(pattern)
    wild_at_end = False
    for ch in chars:
        if wild_at_end:
            return None
        if ch == "\\":
            out.append(next(chars, "\\"))
        elif ch == "%":
            wild_at_end = True
        elif ch == "_":
            return None
        else:
            out.append(ch)
    text = "".join(out)
    if not wild_at_end:
        return ("eq", text)
    return ("prefix", text) if text else ("any", "")


def like_prefix(pattern: str) -> str:
    """The literal prefix of a LIKE pattern (before its first wildcard)."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(next(chars, "\\"))
        elif ch in "%_":
            break
        else:
            out.append(ch)
    return "".join(out)


def server_exact(node: Node) -> bool:
    """Whether DynamoDB can evaluate ``node`` exactly (only some LIKE patterns cannot)."""
    if isinstance(node, (And, Or)):
        return all(server_exact(n) for n in node.items)
    if isinstance(node, Not):
        return server_exact(node.item)
    if isinstance(node, Like):
        return like_exact(node.pattern) is not None
    return True


#: Precedence of a compiled term: DynamoDB rejects redundant parentheses, so only needed ones are written.
OR, AND, NOT, ATOM = 0, 1, 2, 3
Term = tuple[str, int]


def group(term: Term, least: int) -> str:
    text, prec = term
    return f"({text})" if prec < least else text


def conj(terms: list[Term]) -> Term:
    if len(terms) == 1:
        return terms[0]
    return " AND ".join(group(t, AND) for t in terms), AND


def disj(terms: list[Term]) -> Term:
    if len(terms) == 1:
        return terms[0]
    return " OR ".join(group(t, OR) for t in terms), OR


class ExpressionCompiler(Compiler):
    """The expression tree to condition text (FilterExpression, ConditionExpression, key conditions)."""

    backend_name = "DynamoDB"

    def __init__(self, spec: TableSpec, codec: Codec, ctx: Context) -> None:
        self.spec = spec
        self.codec = codec
        self.ctx = ctx
        self._keys = {p.parts for p in spec.key_paths}

    def term(self, node: Node) -> Term:
        method = getattr(self, "visit_" + node.visit_name, None)
        if method is None:
            raise self.unsupported(node)
        return method(node)  # type: ignore[no-any-return]

    def compile(self, node: Node) -> str:
        return self.term(node)[0]

    def av(self, path: Path, value: Any, field: Any = None) -> dict[str, Any]:
        if isinstance(value, Encoded):  # computed by the rewrite, already what DynamoDB compares
            return value.av
        field = field if field is not None else path.field
        stored = self.codec.encode_value(value, field, path.parts[0] == self.spec.ttl_attribute)
        try:
            return to_av(stored)
        except ValidationError as exc:  # a query value, not an item: the query is what is wrong
            raise QueryError(f"A query value cannot be used: {exc}") from None

    def operand(self, path: Path) -> str:
        return self.ctx.path(path.parts)

    def bind(self, path: Path, value: Any, field: Any = None) -> str:
        return self.ctx.value(self.av(path, value, field))

    def false(self, path: Path) -> Term:
        p = self.operand(path)
        return f"attribute_exists({p}) AND attribute_not_exists({p})", AND

    def visit_compare(self, node: Compare) -> Term:
        return f"{self.operand(node.path)} {OPERATORS[node.op]} {self.bind(node.path, node.value)}", ATOM

    def visit_between(self, node: Between) -> Term:
        low, high = self.av(node.path, node.low), self.av(node.path, node.high)
        if av_type(low) == av_type(high) == "N" and Decimal(low["N"]) > Decimal(high["N"]):
            return self.false(node.path)
        if av_type(low) == av_type(high) and av_type(low) in "SB" and low[av_type(low)] > high[av_type(high)]:
            return self.false(node.path)
        return f"{self.operand(node.path)} BETWEEN {self.ctx.value(low)} AND {self.ctx.value(high)}", ATOM

    def visit_in(self, node: In) -> Term:
        if not node.values:
            return self.false(node.path)
        operand = self.operand(node.path)
        groups: list[Term] = []
        for i in range(0, len(node.values), MAX_IN):
            marks = ", ".join(self.bind(node.path, v) for v in node.values[i:i + MAX_IN])
            groups.append((f"{operand} IN ({marks})", ATOM))
        return disj(groups)

    def visit_exists(self, node: Exists) -> Term:
        p = self.operand(node.path)
        if node.path.parts in self._keys:
            return f"attribute_exists({p})", ATOM
        # Exists means present and not null (a NULL can sit inside a Dict field or a foreign item).
        return f"attribute_exists({p}) AND NOT attribute_type({p}, {self.ctx.value({'S': 'NULL'})})", AND

    def visit_prefix(self, node: Prefix) -> Term:
        return f"begins_with({self.operand(node.path)}, {self.ctx.value({'S': node.prefix})})", ATOM

    def visit_contains(self, node: Contains) -> Term:
        if node.is_list:
            mark = self.bind(node.path, node.value, getattr(node.path.field, "inner", None))
        else:
            mark = self.ctx.value({"S": node.value})
        return f"contains({self.operand(node.path)}, {mark})", ATOM

    def visit_like(self, node: Like) -> Term:
        exact = like_exact(node.pattern)
        p = self.operand(node.path)
        if exact is None:
            raise self.unsupported(node, "DynamoDB runs only LIKE patterns without '_' whose only '%' is at the end; "
                                         "queries filter other patterns after the server filter, but write conditions cannot.")
        kind, text = exact
        if kind == "eq":
            return f"{p} = {self.ctx.value({'S': text})}", ATOM
        if kind == "prefix":
            return f"begins_with({p}, {self.ctx.value({'S': text})})", ATOM
        return f"attribute_type({p}, {self.ctx.value({'S': 'S'})})", ATOM

    def visit_and(self, node: And) -> Term:
        return conj([self.term(n) for n in node.items])

    def visit_or(self, node: Or) -> Term:
        return disj([self.term(n) for n in node.items])

    def visit_not(self, node: Not) -> Term:
        return "NOT " + group(self.term(node.item), NOT), NOT

    def like_approximation(self, node: Like) -> Term:
        """A server-side necessary condition for a LIKE the client finishes."""
        p = self.operand(node.path)
        prefix = like_prefix(node.pattern)
        if prefix:
            return f"begins_with({p}, {self.ctx.value({'S': prefix})})", ATOM
        return f"attribute_type({p}, {self.ctx.value({'S': 'S'})})", ATOM


# -- access paths (table, GSIs, LSIs) -------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """One thing a Query can run on: the table (name None) or a GSI/LSI."""

    name: str | None
    kind: str  # "table", "GSI" or "LSI"
    hash_key: Path
    range_key: Path | None
    projection_all: bool = True
    spec: SecondaryIndexSpec | None = field(default=None, compare=False)
    #: The stored top-level attributes the index holds; None: all of them (the table, projection ALL).
    projected: frozenset[str] | None = None

    @property
    def label(self) -> str:
        return "the table" if self.name is None else f"{self.kind} '{self.name}'"

    def missing(self, needs: Iterable[str]) -> list[str]:
        """The attributes of ``needs`` this access path does not hold (in the order given)."""
        if self.projected is None:
            return []
        return [n for n in dict.fromkeys(needs) if n not in self.projected]


def key_type(spec: TableSpec, path: Path) -> str | None:
    if path.parts[0] == spec.ttl_attribute:
        return "N"
    return attribute_type(path.field, None)


def index_gsis(spec: TableSpec) -> list[SecondaryIndexSpec]:
    """Meta ``indexes`` that DynamoDB can hold as GSIs (one or two typed top-level key fields)."""
    out: list[SecondaryIndexSpec] = []
    names = {s.name for s in spec.secondary}
    keys = {(s.hash_key.parts if s.hash_key else spec.hash_key.parts, s.range_key.parts if s.range_key else None)
            for s in spec.secondary}
    keys.add((spec.hash_key.parts, spec.range_key.parts if spec.range_key else None))
    keys.add((spec.hash_key.parts, None))
    for ix in spec.indexes:
        if not 1 <= len(ix.paths) <= 2 or ix.name in names:
            continue
        if any(len(p.parts) != 1 or key_type(spec, p) is None for p in ix.paths):
            continue
        hk, rk = ix.paths[0], ix.paths[1] if len(ix.paths) == 2 else None
        signature = (hk.parts, rk.parts if rk else None)
        if signature in keys:
            continue
        keys.add(signature)
        out.append(SecondaryIndexSpec(ix.name, hk, rk))
    return out


def all_secondary(spec: TableSpec) -> list[SecondaryIndexSpec]:
    return [*spec.secondary, *index_gsis(spec)]


def projected_attributes(spec: TableSpec, sec: SecondaryIndexSpec) -> frozenset[str] | None:
    """What DynamoDB copies into the index: the table's and the index's keys, plus an INCLUDE
    list's attributes (the names sync sends as NonKeyAttributes); None for projection ALL."""
    if sec.projection == "ALL":
        return None
    keys = [*spec.key_paths, sec.hash_key or spec.hash_key, *([sec.range_key] if sec.range_key else [])]
    include = () if isinstance(sec.projection, str) else tuple(sec.projection)  # "KEYS_ONLY"
    return frozenset([*(p.parts[0] for p in keys), *include])


def access_paths(spec: TableSpec) -> list[Access]:
    out = [Access(None, "table", spec.hash_key, spec.range_key)]
    for sec in all_secondary(spec):
        hk = spec.hash_key if sec.local else sec.hash_key
        assert hk is not None
        out.append(Access(sec.name, "LSI" if sec.local else "GSI", hk, sec.range_key, sec.projection == "ALL", sec,
                          projected_attributes(spec, sec)))
    return out


def field_names(spec: TableSpec) -> dict[str, str]:
    """Stored attribute name -> the model's field name (for messages; a data_key differs)."""
    model = getattr(spec.hash_key.field, "model", None)
    fields = getattr(model, "_fields", None) or {}
    return {(getattr(f, "data_key", None) or n): n for n, f in fields.items()}


# -- the plan ------------------------------------------------------------------------------------------


#: A plan's operation when no stored item can match: the answer is empty without a request.
EMPTY = "None"


@dataclass
class Plan:
    operation: str  # "Query", "Scan" or EMPTY
    access: Access
    key_condition: str | None
    filter: str | None
    attributes: dict[str, Any]
    forward: bool = True
    residual: Node | None = None

    def request(self, table: str) -> dict[str, Any]:
        """The low-level client's keyword arguments for this plan (without paging)."""
        req: dict[str, Any] = {"TableName": table}
        if self.access.name is not None:
            req["IndexName"] = self.access.name
        if self.key_condition:
            req["KeyConditionExpression"] = self.key_condition
        if self.filter:
            req["FilterExpression"] = self.filter
        req.update(self.attributes)
        if self.operation == "Query" and not self.forward:
            req["ScanIndexForward"] = False
        return req

    def describe(self, table: str) -> dict[str, Any]:
        return {"backend": "dynamodb", "operation": self.operation, "table": table, "index": self.access.name,
                "index_kind": self.access.kind, "key_condition": self.key_condition, "filter": self.filter,
                "client_filter": None if self.residual is None else repr(self.residual),
                "scan_forward": self.forward, "request": self.request(table)}


def _inverted(node: Between) -> bool:
    try:
        return bool(node.low > node.high)
    except TypeError:
        return False


def conjuncts(node: Node | None) -> list[Node]:
    if node is None:
        return []
    return list(node.items) if isinstance(node, And) else [node]


def _paths(node: Node) -> set[tuple[str, ...]]:
    """The top-level attribute names (as 1-tuples) and full paths a condition reads."""
    if isinstance(node, (And, Or)):
        return set().union(*(_paths(n) for n in node.items))
    if isinstance(node, Not):
        return _paths(node.item)
    path = getattr(node, "path", None)
    return {path.parts, path.parts[:1]} if path is not None else set()


def read_paths(node: Node) -> set[tuple[str, ...]]:
    """The attribute paths a condition reads (each full path and its top-level name)."""
    return _paths(node)


def _top(node: Node) -> tuple[str, ...] | None:
    path = getattr(node, "path", None)
    return path.parts if path is not None and len(path.parts) == 1 else None


def _implies_present(node: Node, parts: tuple[str, ...]) -> bool:
    """A conjunct that is false for an item missing ``parts`` (so an index on it loses nothing)."""
    path = getattr(node, "path", None)
    return not isinstance(node, Not) and path is not None and path.parts[:1] == parts


def _always_present(spec: TableSpec, path: Path) -> bool:
    return path.parts in {p.parts for p in spec.key_paths} or bool(getattr(path.field, "required", False))


class Planner:
    """Chooses the access path and splits a query into key condition, server filter and client filter."""

    def __init__(self, spec: TableSpec, codec: Codec, now: Decimal | None) -> None:
        self.spec = spec
        self.codec = codec
        self.now = now
        self.ctx = Context()
        self.compiler = ExpressionCompiler(spec, codec, self.ctx)
        #: The stored top-level attributes the query reads, each with where it reads it (see need()).
        self.needs: dict[str, str] = {}
        #: The query reads whole items (no ``only()``): only the table or a projection-ALL index holds them.
        self.whole = True

    def need(self, fetch: Sequence[str] | None, conds: list[Node], order: tuple[SortKey, ...],
             why: str = "only()") -> None:
        """Record what the query reads: ``fetch`` (None: whole items; read for ``why``), filter, order, expiry."""
        self.whole = fetch is None
        needs: dict[str, str] = {}
        for name in fetch or ():
            needs.setdefault(name, why)
        for c in conds:
            for parts in sorted(_paths(c)):
                needs.setdefault(parts[0], "the filter")
        for key in order:
            needs.setdefault(key.path.parts[0], "order_by()")
        if self.spec.ttl_attribute and self.now is not None:
            needs.setdefault(self.spec.ttl_attribute, "the expiry (TTL) check")
        self.needs = needs

    def fits(self, access: Access) -> bool:
        """Whether ``access`` holds all the query reads (whole items: only the table or projection ALL)."""
        return access.projected is None or (not self.whole and not access.missing(self.needs))

    def projection_error(self, access: Access, forced: bool, order: tuple[SortKey, ...] = ()) -> QueryError:
        """Why ``access`` cannot serve the query: what it lacks, and what would work."""
        names = field_names(self.spec)
        assert access.projected is not None and access.spec is not None
        held = ", ".join(sorted(names.get(n, n) for n in access.projected))
        kind = "KEYS_ONLY" if isinstance(access.spec.projection, str) else "INCLUDE"
        where = f"the {access.kind} '{access.name}'"
        if forced:
            head = f"use_index({access.name!r}): {where}"
        elif order:
            shown = ", ".join(repr(k) for k in order)
            head = f"On '{self.spec.name}' {where} only serves order_by({shown}) for this query, but it"
        else:
            head = (f"'{self.spec.name}' has Meta.allow_scan = False and only {where} serves this query (its hash "
                    "key is constrained), but it")
        head += f" holds only the attributes {held} (projection {kind}), and this query reads "
        missing = access.missing(self.needs)
        by_reason: dict[str, list[str]] = {}
        for n in missing:
            by_reason.setdefault(self.needs[n], []).append(repr(names.get(n, n)))
        read = [f"{', '.join(shown)} in {reason}" for reason, shown in by_reason.items()]
        if self.whole:
            return QueryError(head + "whole items" + (f" ({'; '.join(read)})" if read else "") +
                              ". Add only(...) naming fields the index holds, or declare it with projection 'ALL'.")
        every = ", ".join(repr(names.get(n, n)) for n in missing)
        fixes = [f"add {every} to the index's projection (its INCLUDE list, or 'ALL')"]
        if "only()" in by_reason:
            fixes.append(f"drop {', '.join(by_reason['only()'])} from only()")
        if "the filter" in by_reason:
            fixes.append(f"filter on {', '.join(by_reason['the filter'])} in a query without use_index" if forced
                         else "filter on fields the index holds")
        return QueryError(head + "; ".join(read) + ", which it does not hold: " + ", or ".join(fixes) + ".")

    def _typed_value(self, access_path: Path, node: Node, kinds: str) -> bool:
        want = key_type(self.spec, access_path)
        try:
            if isinstance(node, Compare):
                got = av_type(self.compiler.av(node.path, node.value))
            elif isinstance(node, Between):
                got = av_type(self.compiler.av(node.path, node.low))
                if av_type(self.compiler.av(node.path, node.high)) != got:
                    return False
            elif isinstance(node, Prefix):
                got = "S"
            else:
                return False
        except QueryError:
            return False
        return got == want and got in kinds

    def hash_condition(self, access: Access, conds: list[Node]) -> Node | None:
        for c in conds:
            if isinstance(c, Compare) and c.op == "eq" and _top(c) == access.hash_key.parts and \
                    self._typed_value(access.hash_key, c, "SNB"):
                return c
        return None

    def range_condition(self, access: Access, conds: list[Node], used: Node) -> Node | None:
        if access.range_key is None:
            return None
        for c in conds:
            if c is used or _top(c) != access.range_key.parts:
                continue
            if isinstance(c, Between) and _inverted(c):
                continue  # an empty range: DynamoDB refuses it as a key condition; the filter gives []
            if isinstance(c, (Compare, Between)) and self._typed_value(access.range_key, c, "SNB"):
                return c
            if isinstance(c, Prefix) and self._typed_value(access.range_key, c, "S"):
                return c
        return None

    def order_direction(self, access: Access, order: tuple[SortKey, ...]) -> bool | None:
        """True/False (ascending/descending) when ``access`` serves ``order``, else None."""
        rest = [k for k in order if k.path.parts != access.hash_key.parts]
        if not rest:
            return True
        if len(rest) == 1 and access.range_key is not None and rest[0].path.parts == access.range_key.parts:
            return not rest[0].descending
        return None

    def loses_items(self, access: Access, conds: list[Node]) -> bool:
        if access.kind == "table" or access.range_key is None:
            return False
        rk = access.range_key
        return not _always_present(self.spec, rk) and not any(_implies_present(c, rk.parts) for c in conds)

    def choose(self, conds: list[Node], order: tuple[SortKey, ...], forced: str | None) -> tuple[Access, Node | None, Node | None, bool]:
        paths = access_paths(self.spec)
        if forced is not None:
            chosen = [a for a in paths if a.name == forced]
            if not chosen:
                known = ", ".join(a.name for a in paths if a.name) or "none"
                raise QueryError(f"use_index({forced!r}): '{self.spec.name}' has no such index; its indexes are: {known}.")
            paths = chosen
            if not self.fits(chosen[0]):
                raise self.projection_error(chosen[0], forced=True)
        best: tuple[int, int, Access, Node, Node | None, bool] | None = None
        unfit: Access | None = None  # an index that would serve the query but lacks attributes it reads
        for rank, access in enumerate(paths):
            if forced is None and self.loses_items(access, conds):
                continue
            hc = self.hash_condition(access, conds)
            if hc is None:
                continue
            forward = self.order_direction(access, order)
            if forward is None:
                continue
            if not self.fits(access):
                unfit = unfit or access
                continue
            rc = self.range_condition(access, conds, hc)
            score = (2 if rc is not None else 0) + (1 if order else 0)
            if best is None or score > best[0]:
                best = (score, rank, access, hc, rc, forward)
        if best is not None:
            return best[2], best[3], best[4], best[5]
        if unfit is not None and (order or not self.spec.allow_scan):
            raise self.projection_error(unfit, False, order)
        if order:
            raise self.order_error(order, conds)
        access = paths[0]
        if not self.spec.allow_scan and forced is None:
            raise self.scan_error()
        return access, None, None, True

    def order_error(self, order: tuple[SortKey, ...], conds: list[Node]) -> QueryError:
        shown = ", ".join(repr(k) for k in order)
        head = (f"DynamoDB orders only by the range key of the table or index a query runs on, so "
                f"order_by({shown}) on '{self.spec.name}' cannot run as asked.")
        for access in access_paths(self.spec):
            if self.order_direction(access, order) is None:
                continue
            need = f"an equality condition on '{access.hash_key.dotted}'"
            if self.loses_items(access, conds) and access.range_key is not None:
                need += f" and a condition on '{access.range_key.dotted}' (the index holds only items that have it)"
            where = "the table" if access.name is None else f"the {access.kind} index '{access.name}'"
            return QueryError(f"{head} It would be served by {where} (hash key '{access.hash_key.dotted}'"
                              f"{', range key ' + repr(access.range_key.dotted) if access.range_key else ''}); add {need}.")
        key = next((k.path.dotted for k in order if k.path.parts != self.spec.hash_key.parts), shown)
        return QueryError(f"{head} No table key or index has '{key}' as its range key; declare a GSI or LSI with "
                          f"range_key '{key}' (the index that would serve this order) and query it by its hash key.")

    def scan_error(self) -> QueryError:
        options = "; ".join(f"{a.label}: hash key '{a.hash_key.dotted}'" for a in access_paths(self.spec))
        return QueryError(f"'{self.spec.name}' has Meta.allow_scan = False and this query constrains no table or index "
                          f"hash key by equality, so it would need a Scan. Add an equality condition on one of: {options}.")

    def empty(self, forced: str | None) -> Plan:
        """The plan of a query no storable item can match: no request at all."""
        paths = access_paths(self.spec)
        if forced is not None:
            self.choose([], (), forced)  # an unknown index is still an error
            paths = [a for a in paths if a.name == forced]
        return Plan(EMPTY, paths[0], None, None, {})

    def ttl_filter(self) -> Term | None:
        ttl = self.spec.ttl_attribute
        if not ttl or self.now is None:
            return None
        return live_term(self.ctx, ttl, self.now)

    def plan(self, where: Node | None, order: tuple[SortKey, ...], forced: str | None,
             fetch: Sequence[str] | None = None, why: str = "only()") -> Plan:
        if where is not None:
            where = rewrite(self.spec, self.codec, where, all_secondary(self.spec))
            if is_never(where):
                self.need(fetch, [], order, why)
                return self.empty(forced)
            if is_always(where):
                where = None
        conds = conjuncts(where)
        self.need(fetch, conds, order, why)
        access, hc, rc, forward = self.choose(conds, order, forced)
        key_condition = None
        if hc is not None:
            key_condition = conj([self.compiler.term(n) for n in (hc, rc) if n is not None])[0]
        server: list[Term] = []
        residual: list[Node] = []
        # A Query's FilterExpression may not name the table's or index's own key attributes:
        # conditions on them beyond the key condition are checked here instead.
        keys = {p.parts for p in (access.hash_key, access.range_key) if p is not None} if hc is not None else set()
        for c in conds:
            if c is hc or c is rc:
                continue
            if keys and _paths(c) & keys:
                residual.append(c)
            elif server_exact(c):
                server.append(self.compiler.term(c))
            else:
                residual.append(c)
                if isinstance(c, Like):
                    server.append(self.compiler.like_approximation(c))
        live = self.ttl_filter()
        if live:
            server.append(live)
        return Plan("Query" if hc is not None else "Scan", access, key_condition,
                    conj(server)[0] if server else None, self.ctx.attributes(), forward,
                    And.of(*residual) if residual else None)


def plan_query(spec: TableSpec, codec: Codec, where: Node | None, order: tuple[SortKey, ...] = (),
               index: str | None = None, now: Decimal | None = None, fetch: Sequence[str] | None = None,
               why: str = "only()") -> Plan:
    """The plan of one query; ``now`` (epoch seconds) adds the TTL liveness filter.

    ``fetch`` is the stored attributes the caller reads from each match (``only()``; ``()`` for a
    count), None meaning whole items; ``why`` names that reader in messages. A KEYS_ONLY/INCLUDE
    index is chosen only when those, the filter's, the order's and the expiry's attributes all lie
    in its projection.
    """
    return Planner(spec, codec, now).plan(where, order, index, fetch, why)


def compile_condition(spec: TableSpec, codec: Codec, ctx: Context, node: Node) -> Term:
    """A write condition's text, after the rewrite of what DynamoDB would refuse (see rewrite.py)."""
    return ExpressionCompiler(spec, codec, ctx).term(rewrite(spec, codec, node, all_secondary(spec)))


def _now_values(ctx: Context, now: Decimal) -> tuple[str, str]:
    # Epoch seconds (what odm writes), and the ISO text a DateTime had before TTL was enabled on it.
    iso = iso_utc(EPOCH + timedelta(seconds=float(now)))
    return ctx.value({"N": str(now)}), ctx.value({"S": iso})


def live_term(ctx: Context, ttl: str, now: Decimal) -> Term:
    """The item is not expired: no TTL value, or one after ``now`` (a number, or ISO text)."""
    p = ctx.name(ttl)
    n, s = _now_values(ctx, now)
    return f"attribute_not_exists({p}) OR {p} > {n} OR {p} > {s}", OR


def expired_term(ctx: Context, ttl: str, now: Decimal) -> Term:
    p = ctx.name(ttl)
    n, s = _now_values(ctx, now)
    return f"{p} <= {n} OR {p} <= {s}", OR
