"""DynamoDB repository: stored documents over the low-level client.

Reads follow LastEvaluatedKey to the end, and ``limit`` counts matching items
(DynamoDB's Limit counts items read before the filter, so pages continue until
enough match). Expired TTL items, which DynamoDB deletes only eventually (and
DynamoDB Local never), are filtered out of every read and treated as absent by
inserts and conditions. See docs/backends/dynamodb.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Context as DecimalContext
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import botocore.exceptions as bexc

from ... import logs
from ...errors import BackendUnavailable, ConditionFailed, DuplicateKey, QueryError, ValidationError
from ...expressions.nodes import And, Node, Path, holds_for_missing
from ...ops import Emit, Op
from ...pagination import fingerprint, invalid_cursor
from ...schema import TableSpec
from ...updates import UpdateAction
from ..base import Action, QuerySpec, Repository, SyncPlan, chunks, dig
from ..codec import parse_iso_utc
from .actions import Clauses, applied, clauses, needs_read, stale
from .codec import DynamoCodec, av_size, epoch_of, item_from_av, item_size, item_to_av, owner_name, to_av
from .guards import GUARD, Guards, av_at
from .planner.compiler import (
    ATOM,
    EMPTY,
    Context,
    Plan,
    Term,
    all_secondary,
    compile_condition,
    conj,
    conjuncts,
    disj,
    expired_term,
    live_term,
    plan_query,
    read_paths,
    server_exact,
)
from .planner.evaluate import Evaluator
from .retry import Sleep, may_have_landed
from .sync import TableSync
from .transact import ATTEMPTS, Outcome, Refusal, Unit, Write, fold, run_many, run_one

if TYPE_CHECKING:
    from .backend import DynamoBackend

#: Builds a guarded write from the stored item and the guards to leave alone: (item write, new item).
Build = Callable[[dict[str, Any] | None, set[str]], tuple[Write | None, dict[str, Any] | None]]

#: BatchWriteItem and BatchGetItem limits.
WRITE_BATCH = 25
GET_BATCH = 100
#: Retries of unprocessed batch items: capped exponential backoff with full jitter.
BATCH_ATTEMPTS = 8
#: How often an update whose actions were computed from a read is tried when the item moved meanwhile.
ACTION_ATTEMPTS = 20
BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0


_RETRIES = logs.retries_logger("dynamodb")

#: Wide enough that adding two DynamoDB numbers (38 digits) never rounds.
WIDE = DecimalContext(prec=80)


def backoff(attempt: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt)))


def _code(exc: bexc.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass
class ReadStats:
    """What the last read cost: requests, items DynamoDB read (ScannedCount) and matched (Count)."""

    operation: str = ""
    index: str | None = None
    requests: int = 0
    scanned: int = 0
    count: int = 0
    capacity: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


class DynamoRepository(Repository):
    backend: DynamoBackend

    def __init__(self, backend: DynamoBackend, spec: TableSpec) -> None:
        super().__init__(backend, spec)
        self.codec: DynamoCodec = backend.codec
        self.table = backend.prefix + spec.name
        self.hash_name = spec.hash_key.parts[0]
        self.range_name = spec.range_key.parts[0] if spec.range_key is not None else None
        self.ttl = spec.ttl_attribute
        self.model_name = owner_name(spec.hash_key.field) or spec.name
        self.exact = False
        self.evaluator = Evaluator(self.codec, self.ttl)
        self.last_read = ReadStats()
        self.guards = Guards(self)
        #: The item size DynamoDB refuses beyond (features.max_item_bytes, 400 KB): checked before any request.
        self.max_item_bytes = backend.features.max_item_bytes
        # Attributes that key a GSI/LSI: DynamoDB refuses "" there (a server error after the request).
        self.index_keys = {p.parts[0]: getattr(p.field, "name", None) or p.parts[0] for s in all_secondary(spec)
                           for p in (s.hash_key, s.range_key) if p is not None and len(p.parts) == 1}

    def use_exact_decimals(self) -> None:
        self.exact = True

    # -- helpers ------------------------------------------------------------------------------
    def now(self) -> Decimal:
        return epoch_of(_utcnow())

    def _live(self, doc: dict[str, Any]) -> bool:
        if not self.ttl:
            return True
        value = doc.get(self.ttl)
        if value is None or isinstance(value, bool):
            return True
        if isinstance(value, str):
            try:
                return float(Decimal(value)) > time.time()
            except ArithmeticError:
                return parse_iso_utc(value).timestamp() > time.time()
        return float(value) > time.time()

    def key_av(self, key: tuple[Any, ...]) -> dict[str, Any]:
        out = {self.hash_name: to_av(key[0])}
        if self.range_name is not None:
            out[self.range_name] = to_av(key[1])
        return out

    def _check_index_keys(self, values: dict[str, Any]) -> None:
        """Refuse "" in an index key attribute before any request (DynamoDB cannot index it)."""
        for stored, name in self.index_keys.items():
            if values.get(stored) == "":
                raise ValidationError({name: [
                    f"DynamoDB cannot store an empty string in '{name}', a key of a secondary index of "
                    f"'{self.spec.name}'; leave it unset (None) instead, or drop the index. Nothing was written."]},
                    self.model_name)

    def _item(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A stored document as an AttributeValue item, refused before any request if DynamoDB would."""
        if self.index_keys:
            self._check_index_keys(doc)
        try:
            item = item_to_av(doc)
        except ValidationError as exc:
            raise ValidationError(exc.messages, self.model_name) from None
        size = item_size(item)
        limit = self.max_item_bytes
        if limit is not None and size > limit:
            raise ValidationError({"_schema": [
                f"The item {self.key_label(self.spec.key_of(doc))} is {size} bytes; DynamoDB refuses items over "
                f"{limit // 1024} KB ({limit} bytes), so nothing was written."]}, self.model_name)
        return item

    def _doc(self, item: dict[str, Any]) -> dict[str, Any]:
        return item_from_av(item, self.exact)

    def _absent_condition(self, ctx: Context) -> Term:
        """True when no live item has this key (missing, or expired but not yet deleted)."""
        missing: Term = (f"attribute_not_exists({ctx.name(self.hash_name)})", ATOM)
        if self.ttl:
            return disj([missing, expired_term(ctx, self.ttl, self.now())])
        return missing

    def _live_condition(self, ctx: Context) -> Term | None:
        return live_term(ctx, self.ttl, self.now()) if self.ttl else None

    def _condition(self, ctx: Context, node: Node) -> Term:
        return compile_condition(self.spec, self.codec, ctx, node)

    # -- schema -------------------------------------------------------------------------------
    def sync_op(self, plan: SyncPlan | None = None) -> Op[list[Action]]:
        return TableSync(self, plan).run()

    # -- writes -------------------------------------------------------------------------------
    def insert_op(self, doc: dict[str, Any]) -> Op[None]:
        item = self._item(doc)
        key = self.spec.key_of(doc)
        if self.backend.defers_writes() and fold(self, key, "create", None, lambda cur: item):
            return  # the block wrote this item before: one action (transact.fold)
        refusal = yield from run_one(self.backend, self._insert_unit(key, item))
        if refusal is not None:
            raise self._duplicate(refusal) from refusal.cause

    def _insert_unit(self, key: tuple[Any, ...], item: dict[str, Any]) -> Unit:
        """Put the item if no live item has its key, and claim its unique values."""
        ctx = Context()
        request = {"TableName": self.table, "Item": item, "ConditionExpression": self._absent_condition(ctx)[0],
                   **ctx.attributes()}
        writes = [Write("Put", request), *self.guards.swap(key, None, item)]
        return Unit(key, writes, item_size(item))

    def _refused(self, refusal: Refusal) -> str:
        """Why a write was refused, as a clause: 'an item with key 'a' already exists'."""
        write = refusal.write
        if write.role == "claim" and write.index is not None:
            return f"{self.guards.label(write.index, write.value)} is already held by another item"
        return f"an item with key {self.key_label(refusal.unit.key)} already exists"

    def _duplicate(self, refusal: Refusal) -> DuplicateKey:
        why = self._refused(refusal)
        return DuplicateKey(f"{why[0].upper()}{why[1:]} in '{self.spec.name}'; nothing was written.")

    def _raw(self, key: tuple[Any, ...]) -> Op[dict[str, Any] | None]:
        """The stored item as AttributeValues, expired or not (guards follow what is stored)."""
        out = yield from self.backend.call_op("get_item", TableName=self.table, Key=self.key_av(key), ConsistentRead=True)
        item: dict[str, Any] | None = out.get("Item")
        return item

    def _item_write(self, op: str, key: tuple[Any, ...], terms: list[Term], **request: Any) -> Write:
        ctx = request.pop("ctx")
        body = {"TableName": self.table, **request, "ConditionExpression": conj(terms)[0],
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD", **ctx.attributes()}
        if op != "Put":
            body["Key"] = self.key_av(key)
        return Write(op, body)

    def _guarded(self, key: tuple[Any, ...], build: Build, what: str) -> Op[dict[str, Any] | None]:
        """Run ``build(cur, skip) -> (item write, new item)`` with guard swaps until it lands.

        ``cur`` is the stored item the write is conditioned on (unchanged unique values and
        expiry); when another writer changed it first, it is read again. Returns the item the
        write replaced. A failed claim is DuplicateKey; a failed user condition ConditionFailed.
        """
        cur = yield from self._raw(key)
        skip: set[str] = set()
        for _ in range(ATTEMPTS * 4):
            write, new = build(cur, skip)
            if write is None:
                return cur
            refusal = yield from run_one(self.backend, Unit(key, [write, *self.guards.swap(key, cur, new, skip)]))
            if refusal is None:
                return cur
            if refusal.write.role == "claim":
                raise self._duplicate(refusal) from refusal.cause
            if refusal.write.role == "release":  # our old guard was taken over after we expired
                skip.add(refusal.write.request["Key"][GUARD]["S"])
                continue
            if self.guards.same(refusal.old, cur):
                raise self.condition_failed(key, what) from refusal.cause
            cur = refusal.old
        raise BackendUnavailable(f"The item {self.key_label(key)} in '{self.spec.name}' kept changing under the {what}; "
                                 "nothing was written. Retry.")

    def _write_condition(self, ctx: Context, condition: Node) -> Term:
        """``condition`` on the live item; an expired item counts as missing (DynamoDB judges a missing one)."""
        cond = self._condition(ctx, condition)
        if not self.ttl:
            return cond
        cond = conj([live_term(ctx, self.ttl, self.now()), cond])
        if holds_for_missing(condition):
            cond = disj([cond, expired_term(ctx, self.ttl, self.now())])
        return cond

    def put_op(self, doc: dict[str, Any], condition: Node | None = None) -> Op[None]:
        item = self._item(doc)
        if self.backend.defers_writes() and fold(self, self.spec.key_of(doc), "save", condition, lambda cur: item):
            return
        if self.guards:
            yield from self._guarded_put(self.spec.key_of(doc), item, condition)
            return
        kwargs: dict[str, Any] = {}
        if condition is not None:
            ctx = Context()
            kwargs = {"ConditionExpression": self._write_condition(ctx, condition)[0], **ctx.attributes()}
        try:
            yield from self.backend.call_op("put_item", write=True, key=self.spec.key_of(doc), TableName=self.table,
                                            Item=item, **kwargs)
        except bexc.ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise self.condition_failed(self.spec.key_of(doc), "save") from exc
            raise

    def _guarded_put(self, key: tuple[Any, ...], item: dict[str, Any], condition: Node | None) -> Op[None]:
        def build(cur: dict[str, Any] | None, skip: set[str]) -> tuple[Write, dict[str, Any]]:
            ctx = Context()
            terms = [self.guards.unchanged(ctx, self.hash_name, cur)]
            if condition is not None:
                terms.append(self._write_condition(ctx, condition))
            return self._item_write("Put", key, terms, ctx=ctx, Item=item), item

        yield from self._guarded(key, build, "save")

    def _update_expression(self, ctx: Context, sets: dict[str, Any], incs: dict[str, Any], unsets: Sequence[str],
                           extra: Clauses | None = None) -> str:
        clauses = []
        set_parts, removes = [], [ctx.name(n) for n in unsets]
        adds = [f"{ctx.name(n)} {ctx.value(to_av(v))}" for n, v in incs.items()]
        for name, value in sets.items():
            if isinstance(value, (set, frozenset)) and not value:
                removes.append(ctx.name(name))
            else:
                set_parts.append(f"{ctx.name(name)} = {ctx.value(to_av(value))}")
        if extra is not None:
            set_parts += extra.sets
            removes += extra.removes
            adds += extra.adds
        if set_parts:
            clauses.append("SET " + ", ".join(set_parts))
        if adds:
            clauses.append("ADD " + ", ".join(adds))
        if removes:
            clauses.append("REMOVE " + ", ".join(removes))
        return " ".join(clauses)

    def update_op(self, key: tuple[Any, ...], sets: dict[str, Any], incs: dict[str, Any],
                  unsets: Sequence[str], condition: Node | None = None,
                  actions: Sequence[UpdateAction] = ()) -> Op[dict[str, Any] | None]:
        if self.index_keys:
            self._check_index_keys(sets)
        changed = {*sets, *incs, *unsets, *(a.path[0] for a in actions)}
        # In a transaction block: folded into the block's earlier write of the item (transact.fold), or else
        # sent at the block's end, the item it makes computed here from a read (_guarded_update).
        if self.backend.defers_writes() and (done := fold(self, key, "update", condition,
                                                          lambda cur: _updated(cur or {}, sets, incs, unsets, actions))):
            return done.result  # type: ignore[no-any-return]
        if (self.guards and changed & (self.guards.names | ({self.ttl} if self.ttl else set()))) \
                or self.backend.defers_writes():
            return (yield from self._guarded_update(key, sets, incs, unsets, condition, actions))
        # Actions DynamoDB cannot do natively are computed from a read and guarded by it (see actions.py).
        read = {i for i, a in enumerate(actions) if needs_read(a)}
        current = (yield from self._raw(key)) if read else None
        for _ in range(ACTION_ATTEMPTS):
            ctx = Context()
            extra = clauses(ctx, actions, current, read)
            expression = self._update_expression(ctx, sets, incs, unsets, extra)
            conds: list[Term] = [(f"attribute_exists({ctx.name(self.hash_name)})", ATOM), *extra.guards]
            live = self._live_condition(ctx)
            if live:
                conds.append(live)
            if condition is not None:
                conds.append(self._condition(ctx, condition))
            try:
                out = yield from self.backend.call_op(
                    "update_item", write=True, key=key, TableName=self.table, Key=self.key_av(key),
                    UpdateExpression=expression, ConditionExpression=conj(conds)[0],
                    ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD", **ctx.attributes())
            except bexc.ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                old: Any = exc.response.get("Item")
                if old is None or not self._live(self._doc(old)):
                    return None
                if actions and stale(actions, read, current, old):
                    current = old  # a path an action relied on changed meanwhile: again, from this read
                    continue
                if condition is None:
                    return None
                raise self.condition_failed(key, "update") from exc
            return self._doc(out["Attributes"])
        raise ConditionFailed(f"The item {self.key_label(key)} in '{self.spec.name}' kept changing while it was being "
                              f"updated ({ACTION_ATTEMPTS} attempts); nothing was written.")

    def _guarded_update(self, key: tuple[Any, ...], sets: dict[str, Any], incs: dict[str, Any],
                        unsets: Sequence[str], condition: Node | None,
                        actions: Sequence[UpdateAction] = ()) -> Op[dict[str, Any] | None]:
        """An update touching a unique field (or the expiry): item and guards in one transaction.

        Actions are computed from the transaction's read (whose item must stay unchanged anyway);
        one on a uniquely indexed attribute is refused, as its new value is known only to the server.
        """
        guarded = [a.dotted for a in actions if a.path[0] in self.guards.names]
        if guarded:
            raise QueryError(f"'{guarded[0]}' in '{self.spec.name}' is part of a unique index; on DynamoDB set it "
                             "with a plain value instead of an update action (its unique-value guard item is "
                             "written with the new value, which an action leaves to the server to compute).")
        gone = False

        def build(cur: dict[str, Any] | None, skip: set[str]) -> tuple[Write | None, dict[str, Any] | None]:
            nonlocal gone
            if cur is None or not self._live(self._doc(cur)):
                gone = True
                return None, None
            ctx = Context()
            extra = clauses(ctx, actions, cur, {i for i, a in enumerate(actions) if a.op in ("remove", "add", "discard")})
            expression = self._update_expression(ctx, sets, incs, unsets, extra)
            terms = [self.guards.unchanged(ctx, self.hash_name, cur), *extra.guards]
            live = self._live_condition(ctx)
            if live:
                terms.append(live)
            if condition is not None:
                terms.append(self._condition(ctx, condition))
            write = self._item_write("Update", key, terms, ctx=ctx, UpdateExpression=expression)
            return write, _updated(cur, sets, incs, unsets, actions)

        before = yield from self._guarded(key, build, "update")
        if gone:
            return None
        # TransactWriteItems returns no attributes: read the result back (not yet written in a transaction block)
        after = None if self.backend.defers_writes() else (yield from self._raw(key))
        return self._doc(after if after is not None else _updated(before or {}, sets, incs, unsets, actions))

    def _guarded_delete(self, key: tuple[Any, ...], condition: Node | None) -> Op[bool]:
        def build(cur: dict[str, Any] | None, skip: set[str]) -> tuple[Write | None, None]:
            if cur is None and condition is None:
                return None, None
            ctx = Context()
            terms = [self.guards.unchanged(ctx, self.hash_name, cur)]
            if condition is not None:
                terms.append(self._write_condition(ctx, condition))
            return self._item_write("Delete", key, terms, ctx=ctx), None

        old = yield from self._guarded(key, build, "delete")
        return old is not None and self._live(self._doc(old))

    def delete_op(self, key: tuple[Any, ...], condition: Node | None = None) -> Op[bool]:
        if self.backend.defers_writes() and (done := fold(self, key, "delete", condition, lambda cur: None)):
            return bool(done.result)
        if self.guards:
            return (yield from self._guarded_delete(key, condition))
        kwargs: dict[str, Any] = {}
        if condition is not None:
            ctx = Context()
            kwargs = {"ConditionExpression": self._write_condition(ctx, condition)[0], **ctx.attributes()}
        try:
            out = yield from self.backend.call_op("delete_item", write=True, key=key, TableName=self.table,
                                                  Key=self.key_av(key), ReturnValues="ALL_OLD", **kwargs)
        except bexc.ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise self.condition_failed(key, "delete") from exc
            raise
        old = out.get("Attributes")
        return bool(old) and self._live(self._doc(old))

    def insert_many_op(self, docs: Sequence[dict[str, Any]]) -> Op[None]:
        """Conditional puts in transactions of up to 100 actions: an existing item is never replaced.

        Each item (with its unique guards) is one unit of ``TransactWriteItems``; a cancelled
        chunk is read per action, its refused items reported and the rest written again, so
        every item that can be written is written exactly once. A repeated key (or unique
        value) within the call: the first wins. See docs/backends/dynamodb.md.
        """
        if not docs:
            return
        sized = [self._sized_item(d) for d in docs]  # every item refused before any request, as _item would
        units: list[Unit] = []
        refused: list[tuple[int, tuple[Any, ...], str]] = []  # (position in docs, key, why)
        keys: set[tuple[Any, ...]] = set()
        claimed: set[str] = set()
        order: dict[int, int] = {}  # id(unit) -> position
        # The put's condition is the same for every item: built once per call (one "now" for TTL).
        ctx = Context()
        condition = {"ConditionExpression": self._absent_condition(ctx)[0], **ctx.attributes()}
        table = self.table
        guards = self.guards
        for pos, (doc, (item, size)) in enumerate(zip(docs, sized, strict=True)):
            key = self.spec.key_of(doc)
            if not guards:  # no unique index: the unit is the put alone
                if key in keys:
                    refused.append((pos, key, f"{self.key_label(key)} (its key repeats in this call)"))
                    continue
                keys.add(key)
                unit = Unit(key, [Write("Put", {"TableName": table, "Item": item, **condition})], size)
                units.append(unit)
                order[id(unit)] = pos
                continue
            values = {guards.key(n, v): (n, v) for n, v in guards.values(item).items()}
            repeat = next((nv for g, nv in values.items() if g in claimed), None)
            if key in keys or repeat is not None:
                what = f"{guards.label(*repeat)} repeats" if repeat is not None and key not in keys else "its key repeats"
                refused.append((pos, key, f"{self.key_label(key)} ({what} in this call)"))
                continue
            keys.add(key)
            claimed.update(values)
            unit = Unit(key, [Write("Put", {"TableName": table, "Item": item, **condition}),
                              *guards.swap(key, None, item)], size)
            units.append(unit)
            order[id(unit)] = pos
        out = yield from run_many(self.backend, units)
        refused += [(order[id(r.unit)], r.unit.key, f"{self.key_label(r.unit.key)} ({self._why(r)})") for r in out.refused]
        refused.sort(key=lambda r: r[0])
        if out.error is not None:
            raise self._incomplete(len(docs), out, refused) from out.error
        if refused:
            shown = ", ".join(label for _, _, label in refused[:20]) + (" ..." if len(refused) > 20 else "")
            error = DuplicateKey(f"insert_many into '{self.spec.name}' wrote {len(out.written)} of {len(docs)} "
                                 f"item(s); {len(refused)} were not written because their key or a unique value "
                                 f"already exists or repeats in this call: {shown}.")
            error.failed = [k for _, k, _ in refused]  # type: ignore[attr-defined]
            error.written = [u.key for u in out.written]  # type: ignore[attr-defined]
            raise error from (out.refused[0].cause if out.refused else None)

    def _sized_item(self, doc: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """``_item(doc)`` and its ``item_size`` in one pass (insert_many's per-item cost): strings and
        integers, the usual values, are converted and measured inline; anything else as ``_item`` does."""
        if self.index_keys:
            self._check_index_keys(doc)
        item: dict[str, Any] = {}
        size = 0
        for k, v in doc.items():
            kind = type(v)
            if kind is str:
                item[k] = {"S": v}
                size += len(v) if v.isascii() else len(v.encode("utf-8"))
            elif kind is int:
                text = str(v)
                item[k] = {"N": text}
                size += (len(text) - (v < 0) + 1) // 2 + 1  # av_size of a number: its digits
            elif v is None or (isinstance(v, (set, frozenset)) and not v):
                continue  # not stored (item_to_av)
            else:
                try:
                    av = item[k] = to_av(v)
                except ValidationError as exc:
                    raise ValidationError(exc.messages, self.model_name) from None
                size += av_size(av)
            size += len(k) if k.isascii() else len(k.encode("utf-8"))
        limit = self.max_item_bytes
        if limit is not None and size > limit:
            raise ValidationError({"_schema": [
                f"The item {self.key_label(self.spec.key_of(doc))} is {size} bytes; DynamoDB refuses items over "
                f"{limit // 1024} KB ({limit} bytes), so nothing was written."]}, self.model_name)
        return item, size

    def _why(self, refusal: Refusal) -> str:
        write = refusal.write
        if write.role == "claim" and write.index is not None:
            return f"{self.guards.label(write.index, write.value)} is taken"
        return "key exists"

    def _incomplete(self, total: int, out: Outcome, refused: list[tuple[int, tuple[Any, ...], str]]) -> BackendUnavailable:
        """insert_many stopped: which keys are confirmed written, which may be, which are not."""

        def shown(keys: list[tuple[Any, ...]]) -> str:
            return ", ".join(self.key_label(k) for k in keys[:20]) + (f" ... ({len(keys)} in all)" if len(keys) > 20 else "")

        written = [u.key for u in out.written]
        doubt = [u.key for u in out.unconfirmed]
        unwritten = [u.key for u in out.unwritten]
        parts = [f"insert_many into '{self.spec.name}' stopped: {out.error} Of {total} item(s), "
                 f"{len(written)} are confirmed written" + (f": {shown(written)}" if written else "")]
        if doubt:
            parts.append(f"{len(doubt)} were sent but not confirmed (they may or may not be written; rerunning "
                         f"insert_many reports the written ones as DuplicateKey): {shown(doubt)}")
        if unwritten:
            parts.append(f"{len(unwritten)} were not written: {shown(unwritten)}")
        if refused:
            parts.append(f"{len(refused)} were refused (key or unique value taken): "
                         + ", ".join(label for _, _, label in refused[:20]))
        error = BackendUnavailable("; ".join(parts) + ".")
        error.written = written  # type: ignore[attr-defined]
        error.unconfirmed = doubt  # type: ignore[attr-defined]
        error.unwritten = unwritten  # type: ignore[attr-defined]
        error.failed = [k for _, k, _ in refused]  # type: ignore[attr-defined]
        return error

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """:meth:`_batch_write_op` run with the sync driver."""
        self.backend.run(self._batch_write_op(requests))

    def _batch_write_op(self, requests: list[dict[str, Any]]) -> Op[None]:
        """BatchWriteItem in chunks; unprocessed items are sent again while each round makes progress.

        Throttled calls are repeated by the backend; when it gives up, or a chunk stalls for
        BATCH_ATTEMPTS rounds, BackendUnavailable names every item not written (this chunk's
        remainder and all later chunks).
        """
        todo = list(chunks(requests, WRITE_BATCH))
        for n, chunk in enumerate(todo):
            pending: list[dict[str, Any]] = list(chunk)
            stalled, sent = 0, 1
            while pending and stalled < BATCH_ATTEMPTS:
                try:
                    out = yield from self.backend.call_op("batch_write_item", write=True, RequestItems={self.table: pending})
                except BackendUnavailable as exc:
                    later = [r for c in todo[n + 1:] for r in c]
                    if may_have_landed(exc.__cause__):  # the answer was lost: these are unconfirmed
                        doubt = f"{self._unwritten(pending, [], 'They may or may not be written', unsure=True)} "
                        raise BackendUnavailable(f"{exc} {doubt}{self._unwritten(later, []) if later else ''}") from exc
                    raise BackendUnavailable(f"{exc} {self._unwritten(pending, later)}") from exc
                left = out.get("UnprocessedItems", {}).get(self.table, [])
                stalled = 0 if len(left) < len(pending) else stalled + 1
                pending = left
                if pending:
                    wait = backoff(stalled)
                    logs.retry(_RETRIES, "dynamodb", "batch_write", self.table, f"{len(pending)} unprocessed item(s)",
                               sent + 1, None, wait)
                    sent += 1
                    yield Sleep(wait)
            if pending:
                later = [r for c in todo[n + 1:] for r in c]
                raise BackendUnavailable(f"DynamoDB at {self.backend.where} left batch writes to '{self.spec.name}' "
                                         f"unprocessed for {BATCH_ATTEMPTS} rounds in a row (throttled). "
                                         + self._unwritten(pending, later))

    def _unwritten(self, pending: list[dict[str, Any]], later: list[dict[str, Any]],
                   before: str = "Everything before them was written", unsure: bool = False) -> str:
        """Which batch writes did not happen: those of the failed request may or may not have landed."""
        def labels(reqs: list[dict[str, Any]]) -> list[str]:
            out = []
            for req in reqs:
                body = req.get("PutRequest", {}).get("Item") or req.get("DeleteRequest", {}).get("Key") or {}
                doc = self._doc({k: v for k, v in body.items() if k in (self.hash_name, self.range_name)})
                out.append(self.key_label(self.spec.key_of(doc)))
            return out

        names = labels(pending + later)
        verb = "deleted" if all("DeleteRequest" in r for r in pending + later) else "written"
        if unsure:
            verb = f"confirmed {verb}"
        shown = ", ".join(names) if len(names) <= 50 else \
            f"{', '.join(names[:49])} and {len(names) - 50} more, up to {names[-1]}"
        return f"{len(names)} item(s) not {verb}: {shown}. {before}; retry these."

    # -- reads -----------------------------------------------------------------------------------
    def _storable_key(self, key: tuple[Any, ...]) -> bool:
        """Could a stored item have this key? Not with "" / b"" or a number DynamoDB cannot store."""
        try:
            avs = self.key_av(key).values()
        except ValidationError:
            return False
        return not any(av in ({"S": ""}, {"B": b""}) for av in avs)

    def get_op(self, key: tuple[Any, ...], only: Sequence[str] | None = None) -> Op[dict[str, Any] | None]:
        if not self._storable_key(key):
            return None  # DynamoDB would refuse the request; no item has it
        out = yield from self.backend.call_op("get_item", TableName=self.table, Key=self.key_av(key), ConsistentRead=True,
                                              **(self.projection(only, {}) if only is not None else {}))
        item = out.get("Item")
        if item is None:
            return None
        doc = self._doc(item)
        return doc if self._live(doc) else None

    def batch_get_op(self, keys: Sequence[tuple[Any, ...]]) -> Op[list[dict[str, Any]]]:
        out: list[dict[str, Any]] = []
        keys = [k for k in dict.fromkeys(keys) if self._storable_key(k)]
        for chunk in chunks(keys, GET_BATCH):
            pending: dict[str, Any] = {self.table: {"Keys": [self.key_av(k) for k in chunk], "ConsistentRead": True}}
            stalled, sent = 0, 1
            while pending and stalled < BATCH_ATTEMPTS:
                before = len(pending[self.table]["Keys"])
                resp = yield from self.backend.call_op("batch_get_item", RequestItems=pending)
                for item in resp.get("Responses", {}).get(self.table, []):
                    doc = self._doc(item)
                    if self._live(doc):
                        out.append(doc)
                pending = resp.get("UnprocessedKeys") or {}
                if pending:
                    # Another round while each makes progress; only a stalled chunk gives up.
                    stalled = 0 if len(pending[self.table]["Keys"]) < before else stalled + 1
                    wait = backoff(stalled)
                    logs.retry(_RETRIES, "dynamodb", "batch_get", self.table,
                               f"{len(pending[self.table]['Keys'])} unprocessed key(s)", sent + 1, None, wait)
                    sent += 1
                    yield Sleep(wait)
            if pending:
                left = len(pending.get(self.table, {}).get("Keys", []))
                raise BackendUnavailable(f"DynamoDB at {self.backend.where} left {left} key(s) of a batch_get on "
                                         f"'{self.spec.name}' unprocessed for {BATCH_ATTEMPTS} rounds in a row "
                                         "(throttled).")
        return out

    def projection(self, only: Sequence[str], names: dict[str, Any], keys: Sequence[str] = ()) -> dict[str, Any]:
        """``only()`` as a ProjectionExpression over ``#pj<n>`` placeholders (a name is never spliced
        in), added to the request's ``names``; the TTL attribute and ``keys`` come along (expiry, cursors)."""
        attrs = dict.fromkeys([*only, self.hash_name, *([self.range_name] if self.range_name else []), *keys,
                               *([self.ttl] if self.ttl else [])])
        names = dict(names)
        refs = []
        for i, name in enumerate(attrs):
            names[f"#pj{i}"] = name  # the planner's names are "#<n>": no clash
            refs.append(f"#pj{i}")
        return {"ProjectionExpression": ", ".join(refs), "ExpressionAttributeNames": names}

    def plan(self, query: QuerySpec, fetch: Sequence[str] | None = None, why: str = "only()") -> Plan:
        """The query's plan; ``fetch`` is what is read of each match (None: whole items), which
        decides whether a KEYS_ONLY/INCLUDE index can serve it (see planner/compiler.py)."""
        return plan_query(self.spec, self.codec, query.where, query.order, query.index,
                          self.now() if self.ttl else None, fetch, why)

    def _responses(self, plan: Plan, start: dict[str, Any] | None = None, page_limit: int | None = None,
                   **extra: Any) -> Pages:
        """The response pages of a Query/Scan, following LastEvaluatedKey to the end (one operation per page)."""
        return Pages(self, plan, start, page_limit, extra)

    def _matching(self, plan: Plan, query: QuerySpec, start: dict[str, Any] | None = None) -> Matches:
        """(item, doc) pairs that match, after the client filter, page by page; offset and limit applied."""
        return Matches(self, plan, query, start)

    def find_op(self, query: QuerySpec) -> Op[None]:
        matches = self._matching(self.plan(query, query.only), query)
        while True:
            batch = yield from matches.next_op()
            if batch is None:
                return
            if batch:
                yield Emit([doc for _, doc in batch])

    def count_by_op(self, query: QuerySpec, path: Path) -> Op[dict[Any, int]]:
        """Streamed: the matches page by page, each item cut down to that one attribute
        (a ProjectionExpression), counted on the client by decoded value.

        Where a client-side filter or a window is applied, the generic way reads the matches with
        just that attribute (and whatever the filter reads).
        """
        plan = self.plan(query, path.parts[:1], "count_by()/distinct()")
        if plan.residual is not None or query.limit is not None or query.offset or path.field is None:
            # Read just that attribute (not an only() of the query's): the same plan, the values counted.
            return (yield from super().count_by_op(query.but(only=path.parts[:1], only_fields=None), path))
        names = dict(plan.request(self.table).get("ExpressionAttributeNames", {}))
        refs = []
        for i, part in enumerate(path.parts):
            names[f"#dv{i}"] = part  # the planner's names are "#<n>": no clash
            refs.append(f"#dv{i}")
        pages = self._responses(plan, ProjectionExpression=".".join(refs), ExpressionAttributeNames=names)
        decode = self.value_decoder(path)
        counts: dict[Any, int] = {}
        while (resp := (yield from pages.next_op())) is not None:
            for item in resp.get("Items", []):
                value = decode(dig(self._doc(item), path.parts))
                counts[value] = counts.get(value, 0) + 1
        return counts

    def update_where_op(self, query: QuerySpec, sets: dict[str, Any], incs: dict[str, Any],
                        unsets: Sequence[str], actions: Sequence[UpdateAction] = ()) -> Op[int]:
        """The generic way, reading only each match's key (each update is conditioned on the query
        again), so a KEYS_ONLY/INCLUDE index the filter fits can serve the read."""
        keys = tuple(p.parts[0] for p in self.spec.key_paths)
        return (yield from super().update_where_op(query.but(only=keys, only_fields=None), sets, incs, unsets, actions))

    def count_op(self, query: QuerySpec) -> Op[int]:
        plan = self.plan(query, ())  # nothing read of a match but what the filter reads
        total = 0
        if plan.residual is not None:
            matches = self._matching(plan, query)
            while (batch := (yield from matches.next_op())) is not None:
                total += len(batch)
            return total
        pages = self._responses(plan, Select="COUNT")
        while (resp := (yield from pages.next_op())) is not None:
            total += resp.get("Count", 0)
        total = max(0, total - query.offset)
        return total if query.limit is None else min(total, query.limit)

    def delete_where_op(self, query: QuerySpec) -> Op[int]:
        plan = self.plan(query, ())  # the key of each match (a guarded delete reads the whole item again)
        if self.guards:  # guards are judged on whole items, whatever only() the query has
            return (yield from self._guarded_delete_where(plan, query.but(only=None, only_fields=None)))
        query = query.but(only=tuple(p.parts[0] for p in self.spec.key_paths), only_fields=None)
        deleted = 0
        batch: list[dict[str, Any]] = []
        matches = self._matching(plan, query)
        while (found := (yield from matches.next_op())) is not None:
            for item, _ in found:
                key = {self.hash_name: item[self.hash_name]}
                if self.range_name is not None:
                    key[self.range_name] = item[self.range_name]
                batch.append({"DeleteRequest": {"Key": key}})
                if len(batch) == WRITE_BATCH:
                    yield from self._delete_batch(batch, deleted, more=True)
                    deleted += len(batch)
                    batch = []
        if batch:
            yield from self._delete_batch(batch, deleted, more=False)
            deleted += len(batch)
        return deleted

    def _delete_batch(self, batch: list[dict[str, Any]], deleted: int, more: bool) -> Op[None]:
        try:
            yield from self._batch_write_op(batch)
        except BackendUnavailable as exc:
            rest = " Later matches of the query were not deleted either." if more else ""
            raise BackendUnavailable(f"{exc} {deleted} item(s) were deleted before.{rest}") from exc

    def _guarded_delete_where(self, plan: Plan, query: QuerySpec) -> Op[int]:
        """Each match is deleted with its guards (transactions of up to 100 actions).

        Each delete is conditioned on the item still matching the query (see _still_matching). A
        match that changed since it was read (or whose guard is someone else's by now) is read
        again and deleted on its own only if it still matches.
        """
        deleted = 0
        batch: list[Unit] = []

        def flush() -> Op[None]:
            nonlocal deleted, batch
            out = yield from run_many(self.backend, batch)
            deleted += len(out.written)
            for refusal in out.refused:
                deleted += yield from self._delete_if_matching(refusal.unit.key, query.where)
            batch = []
            if out.error is not None:
                raise BackendUnavailable(f"delete_many on '{self.spec.name}' stopped after deleting {deleted} "
                                         f"item(s): {out.error}") from out.error

        matches = self._matching(plan, query)
        while (found := (yield from matches.next_op())) is not None:
            for item, doc in found:
                key = self.spec.key_of(doc)
                if not plan.access.projection_all:  # the index holds part of the item: guards need all of it
                    fetched = yield from self._raw(key)
                    if fetched is None:
                        continue
                    item = fetched
                ctx = Context()
                terms = [self.guards.unchanged(ctx, self.hash_name, item), *self._still_matching(ctx, query.where, item)]
                request = {"TableName": self.table, "Key": self.key_av(key), "ConditionExpression": conj(terms)[0],
                           **ctx.attributes()}
                batch.append(Unit(key, [Write("Delete", request), *self.guards.swap(key, item, None)]))
                if len(batch) == GET_BATCH:
                    yield from flush()
        if batch:
            yield from flush()
        return deleted

    def _still_matching(self, ctx: Context, where: Node | None, item: dict[str, Any]) -> list[Term]:
        """Conditions that hold while ``item`` (read as a match of ``where``) still matches it.

        DynamoDB judges the filter itself; the few LIKE patterns it cannot judge exactly were
        judged here on ``item``, so the fields they read must be unchanged.
        """
        parts = conjuncts(where)
        exact = [c for c in parts if server_exact(c)]
        terms = [self._condition(ctx, And.of(*exact))] if exact else []
        for names in sorted({p for c in parts if not server_exact(c) for p in read_paths(c)}):
            name, got = ctx.path(names), av_at(item, Path(names))
            terms.append((f"attribute_not_exists({name})", ATOM) if got is None else (f"{name} = {ctx.value(got)}", ATOM))
        return terms

    def _delete_if_matching(self, key: tuple[Any, ...], where: Node | None) -> Op[int]:
        """delete_many's second try at one match, from a fresh read: 1 if deleted, 0 if it no longer matches."""
        missed = False

        def build(cur: dict[str, Any] | None, skip: set[str]) -> tuple[Write | None, None]:
            nonlocal missed
            doc = None if cur is None else self._doc(cur)
            if cur is None or doc is None or not self._live(doc) or \
                    (where is not None and not self.evaluator.matches(where, doc)):
                missed = True
                return None, None
            ctx = Context()
            terms = [self.guards.unchanged(ctx, self.hash_name, cur), *self._still_matching(ctx, where, cur)]
            return self._item_write("Delete", key, terms, ctx=ctx), None

        try:
            yield from self._guarded(key, build, "delete_many")
        except ConditionFailed:  # changed between the read and the delete: no longer a match
            return 0
        return 0 if missed else 1

    def explain(self, query: QuerySpec) -> dict[str, Any]:
        out = self.plan(query, query.only).describe(self.table)
        if query.limit is not None or query.offset:
            out["limit"], out["offset"] = query.limit, query.offset
        return out

    def page_op(self, query: QuerySpec, size: int, cursor: str | None) -> Op[tuple[list[dict[str, Any]], str | None]]:
        """A page of ``size`` items; the cursor is the signed key of the last item returned."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise QueryError(f"page(size=...) must be a positive integer, not {size!r}.")
        plan = self.plan(query, query.only)
        fp = fingerprint(self.table, query.where, query.order, plan.access.name, "dynamodb")
        names = {self.hash_name, self.range_name}
        if plan.access.kind != "table":
            names |= {plan.access.hash_key.parts[0], plan.access.range_key.parts[0] if plan.access.range_key else None}
        names.discard(None)
        cursors = self.backend.cursors
        start = None
        offset = query.offset
        if cursor is not None:
            payload = cursors.unsign(cursor, fp)
            if not isinstance(payload, dict) or "k" not in payload:
                raise invalid_cursor()
            start = _untag_key(payload["k"], names)
            offset = 0
        window = query.but(limit=size + 1, offset=offset)
        got: list[tuple[dict[str, Any], dict[str, Any]]] = []
        matches = self._matching(plan, window, start)
        while (found := (yield from matches.next_op())) is not None:
            got += found
        if len(got) <= size:
            return [doc for _, doc in got], None
        got = got[:size]
        last = got[-1][0]
        key = {n: last[n] for n in names if n in last}
        return [doc for _, doc in got], cursors.sign({"k": _tag_key(key)}, fp)


class Pages:
    """The response pages of one Query/Scan: each :meth:`next_op` is an operation fetching the next
    page (None after the last), so a read streams page by page with either driver."""

    def __init__(self, repo: DynamoRepository, plan: Plan, start: dict[str, Any] | None, page_limit: int | None,
                 extra: dict[str, Any]) -> None:
        self.repo = repo
        req = plan.request(repo.table)
        req.update(extra)
        req["ReturnConsumedCapacity"] = "TOTAL"
        if plan.access.kind != "GSI":
            req["ConsistentRead"] = True
        if page_limit:
            req["Limit"] = page_limit
        self.req = req
        self.op = "query" if plan.operation == "Query" else "scan"
        self.start = start
        self.stats = repo.last_read = ReadStats(plan.operation, plan.access.name)
        self.done = plan.operation == EMPTY  # no storable item can match: no request

    def next_op(self) -> Op[dict[str, Any] | None]:
        if self.done:
            return None
        if self.start:
            self.req["ExclusiveStartKey"] = self.start
        resp = yield from self.repo.backend.call_op(self.op, **self.req)
        stats = self.stats
        stats.requests += 1
        stats.scanned += resp.get("ScannedCount", 0)
        stats.count += resp.get("Count", 0)
        stats.capacity += float(resp.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
        stats.history.append({"ScannedCount": resp.get("ScannedCount", 0), "Count": resp.get("Count", 0)})
        self.start = resp.get("LastEvaluatedKey")
        if not self.start:
            self.done = True
        return resp  # type: ignore[no-any-return]


class Matches:
    """The (item, doc) pairs of a query that match, after the client filter, one page per
    :meth:`next_op` (None when done); offset and limit applied, no page fetched past the limit."""

    def __init__(self, repo: DynamoRepository, plan: Plan, query: QuerySpec, start: dict[str, Any] | None) -> None:
        self.repo = repo
        wanted = None if query.limit is None else query.offset + query.limit
        # Limit counts items read before the filter, so it only bounds a page when nothing is filtered.
        page_limit = wanted if wanted is not None and not plan.filter and plan.residual is None else None
        self.skip, self.left = query.offset, query.limit
        self.residual = plan.residual
        extra: dict[str, Any] = {}
        if query.only is not None and plan.residual is None:  # a client-side filter needs whole items
            keys = [p.parts[0] for p in (plan.access.hash_key, plan.access.range_key) if p is not None]
            extra = repo.projection(query.only, plan.request(repo.table).get("ExpressionAttributeNames", {}), keys)
        self.pages = Pages(repo, plan, start, page_limit, extra)
        self.done = False

    def next_op(self) -> Op[list[tuple[dict[str, Any], dict[str, Any]]] | None]:
        if self.done:
            return None
        resp = yield from self.pages.next_op()
        if resp is None:
            self.done = True
            return None
        out: list[tuple[dict[str, Any], dict[str, Any]]] = []
        repo, residual = self.repo, self.residual
        for item in resp.get("Items", []):
            doc = repo._doc(item)
            if residual is not None and not repo.evaluator.matches(residual, doc):
                continue
            if self.skip:
                self.skip -= 1
                continue
            out.append((item, doc))
            if self.left is not None:
                self.left -= 1
                if self.left <= 0:
                    self.done = True
                    break
        return out


def _updated(item: dict[str, Any], sets: dict[str, Any], incs: dict[str, Any], unsets: Sequence[str],
             actions: Sequence[UpdateAction] = ()) -> dict[str, Any]:
    """The item an update makes of ``item`` (AttributeValues), computed as DynamoDB would."""
    out = dict(item)
    for name in unsets:
        out.pop(name, None)
    for name, value in sets.items():
        if value is None or (isinstance(value, (set, frozenset)) and not value):
            out.pop(name, None)
        else:
            out[name] = to_av(value)
    for name, value in incs.items():
        av, old = to_av(value), out.get(name) or {}
        if "N" in av:
            out[name] = {"N": str(WIDE.add(Decimal(old.get("N", "0")), Decimal(av["N"])))}
        else:
            (tag, members), = av.items()
            out[name] = {tag: sorted(set(old.get(tag, [])) | set(members))}
    return applied(out, actions)


def _utcnow() -> Any:
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc)


def _tag_key(key: dict[str, Any]) -> dict[str, Any]:
    """A key's AttributeValues as JSON (bytes as base64)."""
    import base64

    out = {}
    for name, av in key.items():
        (tag, value), = av.items()
        out[name] = {tag: base64.b64encode(value).decode() if tag == "B" else value}
    return out


def _untag_key(data: Any, names: set[str | None]) -> dict[str, Any]:
    """The ExclusiveStartKey a cursor holds: only this access path's key attributes, well-formed."""
    import base64
    import binascii

    if not isinstance(data, dict) or not data or not set(data) <= names:
        raise invalid_cursor()
    out = {}
    for name, av in data.items():
        if not isinstance(av, dict) or len(av) != 1:
            raise invalid_cursor()
        (tag, value), = av.items()
        if tag not in ("S", "N", "B") or not isinstance(value, str):
            raise invalid_cursor()
        if tag == "B":
            try:
                value = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise invalid_cursor() from exc
        out[name] = {tag: value}
    return out
