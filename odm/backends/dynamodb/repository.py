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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import botocore.exceptions as bexc

from ...errors import BackendUnavailable, ConditionFailed, DuplicateKey, QueryError, ValidationError
from ...expressions.nodes import Node
from ...pagination import fingerprint, invalid_cursor
from ...schema import TableSpec
from ..base import Action, QuerySpec, Repository, chunks
from ..codec import parse_iso_utc
from .codec import MAX_ITEM_BYTES, DynamoCodec, epoch_of, item_from_av, item_size, item_to_av, owner_name, to_av
from .planner.compiler import ATOM, Context, Plan, Term, compile_condition, conj, disj, expired_term, live_term, plan_query
from .planner.evaluate import Evaluator
from .retry import may_have_landed
from .sync import TableSync

if TYPE_CHECKING:
    from .backend import DynamoBackend

#: BatchWriteItem and BatchGetItem limits.
WRITE_BATCH = 25
GET_BATCH = 100
#: Retries of unprocessed batch items: capped exponential backoff with full jitter.
BATCH_ATTEMPTS = 8
BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0


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

    def _label(self, key: tuple[Any, ...]) -> str:
        return repr(key[0]) if len(key) == 1 else repr(key)

    def _key_av(self, key: tuple[Any, ...]) -> dict[str, Any]:
        out = {self.hash_name: to_av(key[0])}
        if self.range_name is not None:
            out[self.range_name] = to_av(key[1])
        return out

    def _item(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A stored document as an AttributeValue item, refused before any request if DynamoDB would."""
        try:
            item = item_to_av(doc)
        except ValidationError as exc:
            raise ValidationError(exc.messages, self.model_name) from None
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise ValidationError({"_schema": [
                f"The item {self._label(self.spec.key_of(doc))} is {size} bytes; DynamoDB refuses items over 400 KB "
                f"({MAX_ITEM_BYTES} bytes), so nothing was written."]}, self.model_name)
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
    def sync(self) -> list[Action]:
        return TableSync(self).run()

    # -- writes -------------------------------------------------------------------------------
    def insert(self, doc: dict[str, Any]) -> None:
        item = self._item(doc)
        ctx = Context()
        cond = self._absent_condition(ctx)[0]
        try:
            self.backend.call("put_item", write=True, TableName=self.table, Item=item, ConditionExpression=cond,
                              **ctx.attributes())
        except bexc.ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise DuplicateKey(f"An item with key {self._label(self.spec.key_of(doc))} already exists in "
                                   f"'{self.spec.name}'.") from exc
            raise

    def _write_condition(self, ctx: Context, condition: Node) -> Term:
        """``condition`` on the live item; an expired item counts as missing (DynamoDB judges a missing one)."""
        cond = self._condition(ctx, condition)
        if not self.ttl:
            return cond
        cond = conj([live_term(ctx, self.ttl, self.now()), cond])
        if self.evaluator.matches(condition, {}):
            cond = disj([cond, expired_term(ctx, self.ttl, self.now())])
        return cond

    def put(self, doc: dict[str, Any], condition: Node | None = None) -> None:
        item = self._item(doc)
        kwargs: dict[str, Any] = {}
        if condition is not None:
            ctx = Context()
            kwargs = {"ConditionExpression": self._write_condition(ctx, condition)[0], **ctx.attributes()}
        try:
            self.backend.call("put_item", write=True, TableName=self.table, Item=item, **kwargs)
        except bexc.ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise ConditionFailed(f"The stored item {self._label(self.spec.key_of(doc))} in '{self.spec.name}' "
                                      "does not match the save condition; nothing was written.") from exc
            raise

    def update(self, key: tuple[Any, ...], sets: dict[str, Any], incs: dict[str, Any],
               unsets: Sequence[str], condition: Node | None = None) -> dict[str, Any] | None:
        ctx = Context()
        clauses = []
        set_parts, removes = [], [ctx.name(n) for n in unsets]
        for name, value in sets.items():
            if isinstance(value, (set, frozenset)) and not value:
                removes.append(ctx.name(name))
            else:
                set_parts.append(f"{ctx.name(name)} = {ctx.value(to_av(value))}")
        if set_parts:
            clauses.append("SET " + ", ".join(set_parts))
        if incs:
            clauses.append("ADD " + ", ".join(f"{ctx.name(n)} {ctx.value(to_av(v))}" for n, v in incs.items()))
        if removes:
            clauses.append("REMOVE " + ", ".join(removes))
        conds: list[Term] = [(f"attribute_exists({ctx.name(self.hash_name)})", ATOM)]
        live = self._live_condition(ctx)
        if live:
            conds.append(live)
        if condition is not None:
            conds.append(self._condition(ctx, condition))
        try:
            out = self.backend.call("update_item", write=True, TableName=self.table, Key=self._key_av(key),
                                    UpdateExpression=" ".join(clauses), ConditionExpression=conj(conds)[0],
                                    ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
                                    **ctx.attributes())
        except bexc.ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            old: Any = exc.response.get("Item")
            if old is None or condition is None or not self._live(self._doc(old)):
                return None
            raise ConditionFailed(f"The stored item {self._label(key)} in '{self.spec.name}' does not match the "
                                  "update condition; nothing was written.") from exc
        return self._doc(out["Attributes"])

    def delete(self, key: tuple[Any, ...], condition: Node | None = None) -> bool:
        kwargs: dict[str, Any] = {}
        if condition is not None:
            ctx = Context()
            kwargs = {"ConditionExpression": self._write_condition(ctx, condition)[0], **ctx.attributes()}
        try:
            out = self.backend.call("delete_item", write=True, TableName=self.table, Key=self._key_av(key),
                                    ReturnValues="ALL_OLD", **kwargs)
        except bexc.ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise ConditionFailed(f"The stored item {self._label(key)} in '{self.spec.name}' does not match the "
                                      "delete condition; nothing was deleted.") from exc
            raise
        old = out.get("Attributes")
        return bool(old) and self._live(self._doc(old))

    def insert_many(self, docs: Sequence[dict[str, Any]]) -> None:
        """Check existence (BatchGetItem), then write the new items (BatchWriteItem); clashes are reported.

        BatchWriteItem cannot condition a put, so existing keys are found first and never written;
        see docs/backends/dynamodb.md for the (small) race this leaves and why it was chosen.
        """
        if not docs:
            return
        items = [self._item(d) for d in docs]
        keys = [self.spec.key_of(d) for d in docs]
        try:
            existing = {self.spec.key_of(d) for d in self.batch_get(list(dict.fromkeys(keys)))}
        except BackendUnavailable as exc:
            everything = [{"PutRequest": {"Item": item}} for item in items]
            raise BackendUnavailable(f"{exc} {self._unwritten(everything, [], 'Nothing was written')}") from exc
        clashes: list[tuple[Any, ...]] = []
        written: set[tuple[Any, ...]] = set()
        requests = []
        for k, item in zip(keys, items, strict=True):
            if k in existing or k in written:
                clashes.append(k)
                continue
            written.add(k)
            requests.append({"PutRequest": {"Item": item}})
        self._batch_write(requests)
        if clashes:
            shown = ", ".join(self._label(k) for k in clashes[:20]) + (" ..." if len(clashes) > 20 else "")
            raise DuplicateKey(f"insert_many into '{self.spec.name}': {len(clashes)} item(s) clash with existing keys "
                               f"or each other and were not written: {shown}; the other {len(requests)} item(s) were written.")

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem in chunks; unprocessed items are sent again while each round makes progress.

        Throttled calls are repeated by the backend; when it gives up, or a chunk stalls for
        BATCH_ATTEMPTS rounds, BackendUnavailable names every item not written (this chunk's
        remainder and all later chunks).
        """
        todo = list(chunks(requests, WRITE_BATCH))
        for n, chunk in enumerate(todo):
            pending: list[dict[str, Any]] = list(chunk)
            stalled = 0
            while pending and stalled < BATCH_ATTEMPTS:
                try:
                    out = self.backend.call("batch_write_item", write=True, RequestItems={self.table: pending})
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
                    time.sleep(backoff(stalled))
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
                out.append(self._label(self.spec.key_of(doc)))
            return out

        names = labels(pending + later)
        verb = "deleted" if all("DeleteRequest" in r for r in pending + later) else "written"
        if unsure:
            verb = f"confirmed {verb}"
        shown = ", ".join(names) if len(names) <= 50 else \
            f"{', '.join(names[:49])} and {len(names) - 50} more, up to {names[-1]}"
        return f"{len(names)} item(s) not {verb}: {shown}. {before}; retry these."

    # -- reads -----------------------------------------------------------------------------------
    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        out = self.backend.call("get_item", TableName=self.table, Key=self._key_av(key), ConsistentRead=True)
        item = out.get("Item")
        if item is None:
            return None
        doc = self._doc(item)
        return doc if self._live(doc) else None

    def batch_get(self, keys: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chunk in chunks(list(dict.fromkeys(keys)), GET_BATCH):
            pending: dict[str, Any] = {self.table: {"Keys": [self._key_av(k) for k in chunk], "ConsistentRead": True}}
            stalled = 0
            while pending and stalled < BATCH_ATTEMPTS:
                before = len(pending[self.table]["Keys"])
                resp = self.backend.call("batch_get_item", RequestItems=pending)
                for item in resp.get("Responses", {}).get(self.table, []):
                    doc = self._doc(item)
                    if self._live(doc):
                        out.append(doc)
                pending = resp.get("UnprocessedKeys") or {}
                if pending:
                    # Another round while each makes progress; only a stalled chunk gives up.
                    stalled = 0 if len(pending[self.table]["Keys"]) < before else stalled + 1
                    time.sleep(backoff(stalled))
            if pending:
                left = len(pending.get(self.table, {}).get("Keys", []))
                raise BackendUnavailable(f"DynamoDB at {self.backend.where} left {left} key(s) of a batch_get on "
                                         f"'{self.spec.name}' unprocessed for {BATCH_ATTEMPTS} rounds in a row "
                                         "(throttled).")
        return out

    def plan(self, query: QuerySpec) -> Plan:
        return plan_query(self.spec, self.codec, query.where, query.order, query.index,
                          self.now() if self.ttl else None)

    def _responses(self, plan: Plan, start: dict[str, Any] | None = None, page_limit: int | None = None,
                   **extra: Any) -> Iterator[dict[str, Any]]:
        """Every response page of a Query/Scan, following LastEvaluatedKey to the end."""
        req = plan.request(self.table)
        req.update(extra)
        req["ReturnConsumedCapacity"] = "TOTAL"
        if plan.access.kind != "GSI":
            req["ConsistentRead"] = True
        op = "query" if plan.operation == "Query" else "scan"
        stats = self.last_read = ReadStats(plan.operation, plan.access.name)
        while True:
            if start:
                req["ExclusiveStartKey"] = start
            if page_limit:
                req["Limit"] = page_limit
            resp = self.backend.call(op, **req)
            stats.requests += 1
            stats.scanned += resp.get("ScannedCount", 0)
            stats.count += resp.get("Count", 0)
            stats.capacity += float(resp.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
            stats.history.append({"ScannedCount": resp.get("ScannedCount", 0), "Count": resp.get("Count", 0)})
            yield resp
            start = resp.get("LastEvaluatedKey")
            if not start:
                return

    def _matching(self, plan: Plan, query: QuerySpec, start: dict[str, Any] | None = None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(item, doc) pairs that match, after the client filter; offset and limit applied."""
        wanted = None if query.limit is None else query.offset + query.limit
        # Limit counts items read before the filter, so it only bounds a page when nothing is filtered.
        page_limit = wanted if wanted is not None and not plan.filter and plan.residual is None else None
        skip, left = query.offset, query.limit
        residual = plan.residual
        for resp in self._responses(plan, start, page_limit):
            for item in resp.get("Items", []):
                doc = self._doc(item)
                if residual is not None and not self.evaluator.matches(residual, doc):
                    continue
                if skip:
                    skip -= 1
                    continue
                yield item, doc
                if left is not None:
                    left -= 1
                    if left <= 0:
                        return

    def find(self, query: QuerySpec) -> Iterator[dict[str, Any]]:
        plan = self.plan(query)
        for _, doc in self._matching(plan, query):
            yield doc

    def count(self, query: QuerySpec) -> int:
        plan = self.plan(query)
        if plan.residual is not None:
            return sum(1 for _ in self._matching(plan, query))
        total = sum(resp.get("Count", 0) for resp in self._responses(plan, Select="COUNT"))
        total = max(0, total - query.offset)
        return total if query.limit is None else min(total, query.limit)

    def delete_where(self, query: QuerySpec) -> int:
        plan = self.plan(query)
        deleted = 0
        batch: list[dict[str, Any]] = []
        for item, _ in self._matching(plan, query):
            key = {self.hash_name: item[self.hash_name]}
            if self.range_name is not None:
                key[self.range_name] = item[self.range_name]
            batch.append({"DeleteRequest": {"Key": key}})
            if len(batch) == WRITE_BATCH:
                self._delete_batch(batch, deleted, more=True)
                deleted += len(batch)
                batch = []
        if batch:
            self._delete_batch(batch, deleted, more=False)
            deleted += len(batch)
        return deleted

    def _delete_batch(self, batch: list[dict[str, Any]], deleted: int, more: bool) -> None:
        try:
            self._batch_write(batch)
        except BackendUnavailable as exc:
            rest = " Later matches of the query were not deleted either." if more else ""
            raise BackendUnavailable(f"{exc} {deleted} item(s) were deleted before.{rest}") from exc

    def explain(self, query: QuerySpec) -> dict[str, Any]:
        out = self.plan(query).describe(self.table)
        if query.limit is not None or query.offset:
            out["limit"], out["offset"] = query.limit, query.offset
        return out

    def page(self, query: QuerySpec, size: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """A page of ``size`` items; the cursor is the signed key of the last item returned."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise QueryError(f"page(size=...) must be a positive integer, not {size!r}.")
        plan = self.plan(query)
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
        got = list(self._matching(plan, window, start))
        if len(got) <= size:
            return [doc for _, doc in got], None
        got = got[:size]
        last = got[-1][0]
        key = {n: last[n] for n in names if n in last}
        return [doc for _, doc in got], cursors.sign({"k": _tag_key(key)}, fp)


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
