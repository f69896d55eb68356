"""Conditional writes that land together: one item and its unique guards, or many items at once.

A :class:`Unit` is the writes that must land together (an item and its guard items). Units run
through ``TransactWriteItems`` in chunks of up to 100 actions (4 MB); a unit of one write on its
own runs as the plain single-item call, which costs half the write capacity. A cancelled
transaction is read action by action (``CancellationReasons``): a unit whose condition failed is
refused (with the stored item DynamoDB returned), the others are sent again, so every unit that
can be written is written exactly once. Throttling and transactions cancelled only by conflicts
are repeated by ``backend.call_op`` (retry.py), with the same ``ClientRequestToken``, which
DynamoDB treats as the same request (idempotent for 10 minutes), so a transaction whose answer
was lost is not written twice nor mistaken for a clash. See docs/backends/dynamodb.md.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import botocore.exceptions as bexc

from ... import logs
from ...errors import BackendUnavailable, ConcurrentModification, ConditionFailed, DuplicateKey, ODMError, QueryError, ValidationError
from ...ops import Op
from ...ops import arun as arun_op
from ...ops import run as run_op
from ...transaction import TransactionState, operation_name
from .codec import item_size
from .retry import Call, Sleep, may_have_landed

if TYPE_CHECKING:
    from ...expressions.nodes import Node
    from .backend import DynamoBackend
    from .repository import DynamoRepository

T = TypeVar("T")

#: TransactWriteItems limits: actions per call, and a margin under the 4 MB request size.
MAX_ACTIONS = 100
MAX_BYTES = 3_500_000
#: Attempts for a single write that keeps racing a transaction: capped backoff, full jitter.
ATTEMPTS = 8
_RETRIES = logs.retries_logger("dynamodb")
BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0
#: The single-item call for each transaction action.
SINGLE = {"Put": "put_item", "Delete": "delete_item", "Update": "update_item"}


def backoff(attempt: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt)))


@dataclass
class Write:
    """One action of a transaction: ``op`` is Put, Delete, Update or ConditionCheck."""

    op: str
    request: dict[str, Any]
    role: str = "item"  # "item", "claim" (a guard taken) or "release" (a guard given back)
    index: str | None = None
    value: Any = None


@dataclass
class Unit:
    """Writes that land together or not at all, for the item with ``key``."""

    key: tuple[Any, ...]
    writes: list[Write]
    size: int = 0


@dataclass
class Refusal:
    """A unit not written because ``write``'s condition failed; ``old`` is the stored item then."""

    unit: Unit
    write: Write
    old: dict[str, Any] | None
    cause: BaseException | None = None  # the driver's error, to chain


@dataclass
class Outcome:
    """What happened to each unit of a :func:`run_many`."""

    written: list[Unit] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    unconfirmed: list[Unit] = field(default_factory=list)  # sent, answer lost: may or may not be written
    unwritten: list[Unit] = field(default_factory=list)  # never sent, or sent and certainly not written
    error: BackendUnavailable | None = None


class Cancelled(Exception):
    """A transaction was cancelled; ``reasons`` align with its actions."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons


def _code(exc: BaseException) -> str:
    if isinstance(exc, bexc.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


#: A single write racing a transaction: the backend reports it as a plain ODMError, not retried.
CONFLICT = frozenset({"TransactionConflictException"})


def _code_of(exc: ODMError, codes: frozenset[str]) -> bool:
    """The backend translated a driver error with one of ``codes`` (kept as the cause)."""
    return exc.__cause__ is not None and _code(exc.__cause__) in codes


def _transact(backend: DynamoBackend, writes: Sequence[Write], token: str) -> Op[None]:
    items = [{w.op: w.request} for w in writes]
    try:
        yield from backend.call_op("transact_write_items", write=True, TransactItems=items, ClientRequestToken=token)
    except bexc.ClientError as exc:
        if _code(exc) != "TransactionCanceledException":
            raise
        reasons = exc.response.get("CancellationReasons") or []
        if len(reasons) != len(writes):  # DynamoDB always sends one per action; never guess
            raise ODMError(f"DynamoDB at {backend.where} cancelled a transaction without saying why "
                           f"({exc.response.get('Error', {}).get('Message', '')}).") from exc
        raise Cancelled(reasons) from exc


def _single(backend: DynamoBackend, write: Write, key: tuple[Any, ...]) -> Op[None]:
    try:
        # The write may already ask for the old item (repository._item_write does): once is enough.
        yield from backend.call_op(SINGLE[write.op], write=True, key=key,
                                   **{"ReturnValuesOnConditionCheckFailure": "ALL_OLD", **write.request})
    except bexc.ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
        raise Cancelled([{"Code": "ConditionalCheckFailed", "Item": exc.response.get("Item")}]) from exc


def _refusal(unit: Unit, reasons: list[dict[str, Any]], cause: BaseException | None) -> Refusal | None:
    for write, reason in zip(unit.writes, reasons, strict=True):
        if reason.get("Code") == "ConditionalCheckFailed":
            return Refusal(unit, write, reason.get("Item"), cause)
    return None


def _unexpected(backend: DynamoBackend, reasons: list[dict[str, Any]]) -> ODMError:
    """A cancellation that is neither a failed condition nor one backend.call_op repeats."""
    shown = sorted({f"{r.get('Code') or 'None'}: {r.get('Message', '')}" for r in reasons if r.get("Code") != "None"})
    return ODMError(f"DynamoDB at {backend.where} cancelled a write: {'; '.join(shown) or 'no reason given'}.")


def run_one(backend: DynamoBackend, unit: Unit) -> Op[Refusal | None]:
    """Write one unit (an operation); a failed condition is returned, not raised.

    Throttling and transactions cancelled only by conflicts are repeated by ``backend.call_op``
    (retry.py); here only a single write racing a transaction (TransactionConflictException,
    which the backend reports as is) is repeated.
    """
    token = str(uuid.uuid4())
    for attempt in range(ATTEMPTS):
        try:
            if len(unit.writes) == 1 and unit.writes[0].op in SINGLE:
                yield from _single(backend, unit.writes[0], unit.key)
            else:
                yield from _transact(backend, unit.writes, token)
            return None
        except Cancelled as exc:
            refusal = _refusal(unit, exc.reasons, exc.__cause__)
            if refusal is not None:
                return refusal
            raise _unexpected(backend, exc.reasons) from exc
        except ODMError as exc:
            if isinstance(exc, BackendUnavailable) or not _code_of(exc, CONFLICT) or attempt == ATTEMPTS - 1:
                raise
        wait = backoff(attempt)
        logs.retry(_RETRIES, "dynamodb", "write", unit.writes[0].request.get("TableName"),
                   "a transaction holds the item (TransactionConflictException)", attempt + 2, ATTEMPTS, wait)
        yield Sleep(wait)
    raise AssertionError("unreachable")  # the last attempt returns or raises


def chunk_units(units: Sequence[Unit]) -> list[list[Unit]]:
    """Consecutive units packed into transactions of at most 100 actions and ~3.5 MB."""
    out: list[list[Unit]] = []
    current: list[Unit] = []
    actions = size = 0
    for unit in units:
        if current and (actions + len(unit.writes) > MAX_ACTIONS or size + unit.size > MAX_BYTES):
            out.append(current)
            current, actions, size = [], 0, 0
        current.append(unit)
        actions += len(unit.writes)
        size += unit.size
    if current:
        out.append(current)
    return out


def run_many(backend: DynamoBackend, units: Sequence[Unit]) -> Op[Outcome]:
    """Write every unit that can be (an operation); refused units are reported, nothing is written twice.

    A cancelled chunk loses its refused units and is sent again at once with the rest. When
    ``backend.call_op`` gives up (its retry budget spent, or the server gone) the run stops: that
    chunk is ``unconfirmed`` if its last request may have landed unseen, else ``unwritten``,
    and later chunks are ``unwritten``.
    """
    out = Outcome()
    chunks = chunk_units(units)
    for number, chunk in enumerate(chunks):
        pending = list(chunk)
        while pending:
            token = str(uuid.uuid4())  # one per distinct request; backend.call_op reuses it when it repeats one
            try:
                yield from _transact(backend, [w for u in pending for w in u.writes], token)
                out.written += pending
                pending = []
            except Cancelled as exc:
                reasons = iter(exc.reasons)
                kept: list[Unit] = []
                for unit in pending:
                    refusal = _refusal(unit, [next(reasons) for _ in unit.writes], exc.__cause__)
                    if refusal is None:
                        kept.append(unit)
                    else:
                        out.refused.append(refusal)
                if len(kept) == len(pending):
                    raise _unexpected(backend, exc.reasons) from exc
                pending = kept
            except BackendUnavailable as exc:
                (out.unconfirmed if may_have_landed(exc.__cause__) else out.unwritten).extend(pending)
                for later in chunks[number + 1:]:
                    out.unwritten += later
                out.error = exc
                return out
    return out


# -- registry.transaction() on DynamoDB: the block's writes, sent as one TransactWriteItems ---------

#: The single-item write calls a repository makes, and the transaction action each becomes.
ACTIONS = {"put_item": "Put", "update_item": "Update", "delete_item": "Delete"}
#: What a transaction action's body may hold (ReturnValues and the like are single-call options).
ACTION_KEYS = frozenset({"TableName", "Item", "Key", "UpdateExpression", "ConditionExpression",
                         "ExpressionAttributeNames", "ExpressionAttributeValues",
                         "ReturnValuesOnConditionCheckFailure"})
#: TransactWriteItems' limit on the items' total size.
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024


@dataclass
class Pending:
    """One action collected in a transaction block: which operation of the block made it, on what."""

    index: int  # the operation's position in the block, from 1
    operation: str  # create, save, update, delete, insert_many, ...
    action: dict[str, Any]  # {"Put": {...}}
    table: str
    key: dict[str, Any]  # the written item's key, as AttributeValues
    first: str = ""  # the kind of the item's first action in the block (Put, Update, Delete, ...)
    folded: tuple[str, ...] = ()  # later operations folded into this action: "#3 update"

    @property
    def kind(self) -> str:
        return next(iter(self.action))

    @property
    def exact(self) -> bool:
        """Whether the block knows the item this action leaves (a Put's item, or none after a Delete)."""
        return self.kind in ("Put", "Delete")

    @property
    def state(self) -> dict[str, Any] | None:
        return self.action["Put"]["Item"] if self.kind == "Put" else None

    def shown(self) -> str:
        """``#2 (create)``, with the operations folded into it."""
        return f"#{self.index} ({self.operation}{''.join(f', then {f}' for f in self.folded)})"


#: What a folded action keeps of the item's first action: its condition.
CONDITION_KEYS = ("ConditionExpression", "ExpressionAttributeNames", "ExpressionAttributeValues",
                  "ReturnValuesOnConditionCheckFailure")


@dataclass
class Folded:
    """What a write folded into the block's earlier write of the same item returns to its repository."""

    result: Any = None


def _size(value: Any) -> int:
    """About what DynamoDB counts of a request: names and values, UTF-8."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return sum(_size(k) + _size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_size(v) for v in value)
    return 8


def fold(repo: DynamoRepository, key: tuple[Any, ...], what: str, condition: Node | None,
         make: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> Folded | None:
    """A write of an item the open block has already written, folded into that write; None otherwise.

    ``what`` is create, save, update or delete; ``make(live)`` the item the write leaves (None:
    deleted) from the item the block left (None: none). When the block's earlier write left a
    known item (a Put, or a Delete), this write is judged here against it, as SQL judges it
    inside its transaction: existence, ``condition`` (the caller's, the version check, range and
    type guards): a failure raises now (DuplicateKey, ConditionFailed, or the update finds no
    item). Then the two become one action, the later item with the earlier condition, plus the
    unique-value guard writes between the two items. After an Update (whose result only the
    server knows) it is a QueryError naming both operations.
    """
    from ...transaction import open_state

    state = open_state(repo.backend)
    if not isinstance(state, DynamoTransaction):
        return None
    key_av = repo.key_av(key)
    earlier = state.view(repo.table, key_av)
    if earlier is None:
        return None  # the block's first write of this item: collected as it is
    index, operation = state.current
    label = f"{repo.key_label(key)} in '{repo.spec.name}'"
    if not earlier.exact:
        raise state._unfoldable(earlier, index, operation, label)
    cur = earlier.state
    live = cur if cur is not None and repo._live(repo._doc(cur)) else None
    if what == "create" and live is not None:
        raise DuplicateKey(f"An item with key {repo.key_label(key)} already exists in '{repo.spec.name}': operation "
                           f"{earlier.shown()} of this transaction writes it. Nothing was written.")
    if what == "update" and live is None:
        return Folded(None)  # as an update of a missing item: NotFound
    if condition is not None:
        try:
            holds = repo.evaluator.matches(condition, repo._doc(live) if live is not None else {})
        except TypeError as exc:
            raise QueryError(f"Operation #{index} ({operation}) of {label} has a condition that cannot be judged "
                             f"against the item operation {earlier.shown()} of this DynamoDB transaction writes "
                             f"({exc}); write the item once in the block. Nothing was written.") from None
        if not holds:
            # The caller explains the refusal from a read of the item (a version, a range): it is
            # answered, within this operation only, with the item the condition was judged against.
            state.judged[state._ident(repo.table, key_av)] = live
            raise repo.condition_failed(key, what)
    if what == "delete" and live is None:
        return Folded(False)  # deleting what the block already deleted: nothing more to write
    new = make(live)
    if new is not None:
        size, limit = item_size(new), repo.max_item_bytes
        if limit is not None and size > limit:
            raise ValidationError({"_schema": [
                f"The item {repo.key_label(key)} would be {size} bytes; DynamoDB refuses items over {limit // 1024} KB "
                f"({limit} bytes), so nothing was written."]}, repo.model_name)
    writes = [Write("Put", {"TableName": repo.table, "Item": new}) if new is not None
              else Write("Delete", {"TableName": repo.table, "Key": key_av})]
    if repo.guards:
        writes += [w for w in repo.guards.swap(key, cur, new) if state.claimable(w, repo.guards.owner(key))]
    for write in writes:
        state._add(index, operation, write.op, write.request, fold=True)
    if what == "update":
        return Folded(repo._doc(new) if new is not None else None)
    return Folded(what == "delete" or None)


class DynamoTransaction(TransactionState):
    """A DynamoDB transaction block: writes collected, sent at the end as one ``TransactWriteItems``.

    Each operation of the block runs as it would on its own, except that its write requests (the
    single-item calls, its guard transactions, batch writes) are collected instead of sent, with
    their conditions, unique-value guards and version checks; reads are sent at once and see the
    stored items as they were before the block. The limits (100 actions, 4 MB, one action per
    item) are checked as actions are collected, so a block that cannot be sent fails at the
    operation that overflows it, before any request. A write of an item the block already wrote
    is folded into that action by the repository (:func:`fold`; ``items`` is the block's view of
    each item it writes). At the end, a cancelled transaction is ConditionFailed (DuplicateKey for
    a create's key or a unique value) naming the operation and those folded into it.
    """

    def __init__(self, backend: DynamoBackend, is_async: bool) -> None:
        super().__init__(backend, is_async)
        self.dynamo = backend
        self.pending: list[Pending] = []
        self.count = 0
        self.size = 0
        self.items: dict[tuple[str, str], Pending] = {}
        #: Actions replaced by a fold (position, the action before), to restore when the operation fails.
        self.journal: list[tuple[int, Pending]] = []
        self.current = (0, "operation")  # the operation being collected: index and name
        #: Items a fold judged a refused condition against, for the refused operation's own re-read.
        self.judged: dict[tuple[str, str], dict[str, Any] | None] = {}

    # -- collecting ------------------------------------------------------------------------------
    def _names(self, table: str) -> tuple[str, ...]:
        from .guards import GUARD, SUFFIX

        if table.endswith(SUFFIX):
            return (GUARD,)
        for repo in self.dynamo.repositories.values():
            if repo.table == table:  # type: ignore[attr-defined]
                return tuple(n for n in (repo.hash_name, repo.range_name) if n)  # type: ignore[attr-defined]
        return ()

    @staticmethod
    def _ident(table: str, key: dict[str, Any]) -> tuple[str, str]:
        return table, json.dumps(key, sort_keys=True, default=str)

    @staticmethod
    def _is_guard(table: str) -> bool:
        from .guards import SUFFIX

        return table.endswith(SUFFIX)

    def view(self, table: str, key: dict[str, Any]) -> Pending | None:
        """The block's pending action on the item with ``key`` (AttributeValues) in ``table``, if any."""
        return self.items.get(self._ident(table, key))

    def claimable(self, write: Write, owner: str) -> bool:
        """Whether a guard write of ``owner`` goes on; DuplicateKey when the block gave its value to another item.

        A release of a guard another item claimed in the block is dropped (it is not ours to give back).
        """
        from .guards import GUARD, OWNER

        body = write.request
        key = {GUARD: (body.get("Item") or body.get("Key") or {}).get(GUARD)}
        earlier = self.view(body["TableName"], key)
        if earlier is None or (earlier.state or {}).get(OWNER, {"S": owner}) == {"S": owner}:
            return True
        if write.op == "Put":
            index, operation = self.current
            raise DuplicateKey(f"Operation #{index} ({operation}) needs {self._label(earlier)}, which operation "
                               f"{earlier.shown()} of this transaction gives to another item. Nothing was written.")
        return False

    def _add(self, index: int, operation: str, kind: str, body: dict[str, Any], fold: bool = False) -> None:
        body = {k: v for k, v in body.items() if k in ACTION_KEYS}
        if "ConditionExpression" in body:  # a refusal then says what was stored (see _stale)
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        table = body.get("TableName", "?")
        source = body.get("Item") if kind == "Put" else body.get("Key")
        key = {n: source[n] for n in self._names(table) if source and n in source}
        pending = Pending(index, operation, {kind: body}, table, key, kind)
        ident = self._ident(table, key)
        earlier = self.items.get(ident)
        if earlier is not None and fold:
            self._fold_into(earlier, pending)
            return
        limit = self.dynamo.features.max_transaction_items
        if limit is not None and len(self.pending) >= limit:
            raise QueryError(f"A DynamoDB transaction holds at most {limit} write actions (TransactWriteItems' "
                             f"limit; an item with unique indexes takes one more per unique value): operation "
                             f"#{index} ({operation}) would add the {len(self.pending) + 1}th. Nothing was written; "
                             "split the block.")
        size = _size(body)
        if self.size + size > MAX_TRANSACTION_BYTES:
            raise QueryError(f"A DynamoDB transaction holds at most 4 MB (TransactWriteItems' limit): operation "
                             f"#{index} ({operation}) would bring it to about {self.size + size} bytes. Nothing was "
                             "written; split the block.")
        if earlier is not None and kind == "Put" and earlier.kind == "Put" and self._is_guard(table):
            from .guards import OWNER

            if earlier.action["Put"]["Item"].get(OWNER) != body["Item"].get(OWNER):
                raise DuplicateKey(f"Operation #{index} ({operation}) needs {self._label(pending)}, which operation "
                                   f"{earlier.shown()} of this transaction gives to another item. Nothing was written.")
        if earlier is not None:  # a write the repository did not fold (insert_many, Query.delete(), ...)
            raise QueryError(f"A DynamoDB transaction writes each item at most once (TransactWriteItems' limit): "
                             f"operation #{index} ({operation}) writes {self._label(pending)} again, which operation "
                             f"{earlier.shown()} already writes, and a {operation} is not folded into an earlier "
                             "write (docs/transactions.md, \"Writing an item twice\"). Nothing was written.")
        self.items[ident] = pending
        self.size += size
        self.pending.append(pending)

    def _collect(self, request: Call, index: int, operation: str) -> Any:
        """The answer to a write request, collected instead of sent; None for a request to send."""
        if request.op == "get_item" and self.judged and "ProjectionExpression" not in request.kwargs:
            ident = self._ident(request.kwargs["TableName"], request.kwargs["Key"])
            if ident in self.judged:
                item = self.judged[ident]
                return {} if item is None else {"Item": item}
        kind = ACTIONS.get(request.op)
        if kind is not None:
            self._add(index, operation, kind, request.kwargs)
            return {}
        if request.op == "transact_write_items":
            for action in request.kwargs["TransactItems"]:
                (kind, body), = action.items()
                self._add(index, operation, kind, body)
            return {}
        if request.op == "batch_write_item":
            for table, requests in request.kwargs["RequestItems"].items():
                for one in requests:
                    if "PutRequest" in one:
                        self._add(index, operation, "Put", {"TableName": table, **one["PutRequest"]})
                    else:
                        self._add(index, operation, "Delete", {"TableName": table, **one["DeleteRequest"]})
            return {"UnprocessedItems": {}}
        return None

    def _fold_into(self, earlier: Pending, later: Pending) -> None:
        """``later`` (a Put or Delete judged against ``earlier``'s item) and ``earlier`` as one action.

        The result is ``later``'s write with ``earlier``'s condition, which DynamoDB judges against
        the item as stored before the block; ``later``'s own condition was judged against the item
        ``earlier`` leaves (see :func:`fold`).
        """
        if not earlier.exact:
            raise self._unfoldable(earlier, later.index, later.operation, self._label(later))
        (kind, body), = later.action.items()
        body = {k: v for k, v in body.items() if k not in CONDITION_KEYS}
        body.update({k: v for k, v in earlier.action[earlier.kind].items() if k in CONDITION_KEYS})
        merged = Pending(earlier.index, earlier.operation, {kind: body}, earlier.table, earlier.key, earlier.first,
                         (*earlier.folded, f"#{later.index} {later.operation}"))
        position = self.pending.index(earlier)
        self.journal.append((position, earlier))
        self.pending[position] = merged
        self.items[self._ident(earlier.table, earlier.key)] = merged
        self.size += _size(body) - _size(earlier.action[earlier.kind])

    def _unfoldable(self, earlier: Pending, index: int, operation: str, label: str) -> QueryError:
        return QueryError(
            f"Operation #{index} ({operation}) writes {label} after operation {earlier.shown()} "
            f"{'updated' if earlier.kind == 'Update' else 'checked'} it in this DynamoDB transaction. TransactWriteItems "
            "writes an item once, and an update's result is known only when DynamoDB applies it (increments and "
            "appends add to what is stored then), so the two cannot be folded into one action: give both changes "
            "to one update() call, or save() the instance once. This operation was not collected; nothing was written.")

    def _carrier(self, op: Any) -> tuple[int, str, tuple[int, int]]:
        self.count += 1
        return self.count, operation_name(op), (len(self.pending), len(self.journal))

    def _forget(self, mark: tuple[int, int]) -> None:
        """A failed operation's actions are dropped (its folds undone): it wrote nothing, and the block may go on."""
        count, folds = mark
        for pending in self.pending[count:]:
            self.items.pop(self._ident(pending.table, pending.key), None)
            self.size -= _size(next(iter(pending.action.values())))
        del self.pending[count:]
        while len(self.journal) > folds:
            position, before = self.journal.pop()
            self.size += _size(before.action[before.kind]) - _size(self.pending[position].action[self.pending[position].kind])
            self.pending[position] = before
            self.items[self._ident(before.table, before.key)] = before

    def run(self, op: Op[T]) -> T:
        index, operation, mark = self._carrier(op)
        send = self.dynamo.send

        def carry(request: Any) -> Any:
            if type(request) is Call:
                answer = self._collect(request, index, operation)
                if answer is not None:
                    return answer
            return send(request)

        outer, self.current = self.current, (index, operation)
        try:
            return run_op(op, carry)
        except BaseException:
            self._forget(mark)
            raise
        finally:
            self.current = outer
            self.judged.clear()

    async def arun(self, op: Op[T]) -> T:
        index, operation, mark = self._carrier(op)
        asend = self.dynamo.asend

        async def carry(request: Any) -> Any:
            if type(request) is Call:
                answer = self._collect(request, index, operation)
                if answer is not None:
                    return answer
            return await asend(request)

        outer, self.current = self.current, (index, operation)
        try:
            return await arun_op(op, carry)
        except BaseException:
            self._forget(mark)
            raise
        finally:
            self.current = outer
            self.judged.clear()

    # -- ending ----------------------------------------------------------------------------------
    def _label(self, pending: Pending) -> str:
        from .guards import GUARD, SUFFIX

        if pending.table.endswith(SUFFIX):
            guard = pending.key.get(GUARD, {}).get("S", "?")
            return f"the unique-value guard {guard!r} of '{pending.table[:-len(SUFFIX)]}'"
        for repo in self.dynamo.repositories.values():
            if repo.table == pending.table:  # type: ignore[attr-defined]
                doc = repo._doc(pending.key)  # type: ignore[attr-defined]
                return f"{repo.key_label(repo.spec.key_of(doc))} in '{repo.spec.name}'"
        return f"{pending.key!r} in '{pending.table}'"

    def _refused(self, pending: Pending, cause: BaseException) -> ConditionFailed | DuplicateKey:
        from .guards import SUFFIX

        kind = pending.first  # a folded action carries the condition of the item's first write
        folded = "".join(f", then {f}" for f in pending.folded)
        what = (f"Transaction operation #{pending.index} ({pending.operation} of {self._label(pending)}{folded}) failed "
                "its condition")
        if pending.table.endswith(SUFFIX) and kind == "Put":
            error: ConditionFailed | DuplicateKey = DuplicateKey(
                f"{what}: the unique value is already held by another item. The transaction was cancelled; "
                "nothing of it was written.")
        elif kind == "Put" and pending.operation in ("create", "insert", "insert_many"):
            error = DuplicateKey(f"{what}: an item with that key already exists. The transaction was cancelled; "
                                 "nothing of it was written.")
        else:
            error = ConditionFailed(f"{what}: the stored item does not match (its condition, version or existence). "
                                    "The transaction was cancelled; nothing of it was written.")
        # Which operation of the block (from 1), what it was, and the item's key and table.
        for name, value in (("index", pending.index), ("operation", pending.operation), ("table", pending.table),
                            ("key", self._key(pending))):
            setattr(error, name, value)
        return error

    def _stale(self, pending: Pending, old: dict[str, Any] | None) -> ConcurrentModification | None:
        """A save or update of a versioned model refused because the stored version moved: the
        ConcurrentModification the same call raises outside a block (and on the other backends).

        The version the write expected is in its own condition (``#v = :v``, odm's own expression;
        a folded action keeps its first write's condition), or none for a fresh instance's Put of
        version 1. ``old`` is the stored item DynamoDB returned with the cancellation
        (ReturnValuesOnConditionCheckFailure).
        """
        spec = next((r.spec for r in self.dynamo.repositories.values() if r.table == pending.table), None)  # type: ignore[attr-defined]
        version = spec.version_key if spec is not None else None
        body = pending.action[pending.kind]
        if not version or pending.kind not in ("Put", "Update") or pending.first not in ("Put", "Update") \
                or body.get("ReturnValuesOnConditionCheckFailure") != "ALL_OLD":
            return None
        names = {v: k for k, v in (body.get("ExpressionAttributeNames") or {}).items()}
        match = re.search(rf"{re.escape(names.get(version, '#?'))} = (:\w+)", body.get("ConditionExpression", ""))
        if match:
            expected = int((body.get("ExpressionAttributeValues") or {}).get(match.group(1), {}).get("N", -1))
        elif pending.kind == "Put" and body["Item"].get(version, {}).get("N") == "1":
            expected = 0  # a fresh instance: no stored item was expected
        else:
            return None
        stored_av = (old or {}).get(version, {}).get("N")
        stored = int(stored_av) if stored_av is not None else None
        if (stored == expected and old is not None) or (expected == 0 and old is None):
            return None  # the version held: another part of the condition failed
        what = f"Transaction operation {pending.shown()} of {self._label(pending)}"
        if old is None:
            error = ConcurrentModification(f"{what}: the item no longer exists (version {expected} was expected). The "
                                           "transaction was cancelled; nothing of it was written.")
        elif expected == 0:
            error = ConcurrentModification(f"{what}: the item already exists; load it before saving over it. The "
                                           "transaction was cancelled; nothing of it was written.")
        else:
            error = ConcurrentModification(f"{what} was modified concurrently: version {expected} was expected, the "
                                           f"stored version is {stored}; reload and retry. The transaction was "
                                           "cancelled; nothing of it was written.")
        for name, value in (("index", pending.index), ("operation", pending.operation), ("table", pending.table),
                            ("key", self._key(pending))):
            setattr(error, name, value)
        return error

    def _key(self, pending: Pending) -> Any:
        for repo in self.dynamo.repositories.values():
            if repo.table == pending.table:  # type: ignore[attr-defined]
                return repo.spec.key_of(repo._doc(pending.key))  # type: ignore[attr-defined]
        return pending.key

    def commit_op(self) -> Op[None]:
        pending, self.pending = self.pending, []
        self.items, self.journal = {}, []
        if not pending:
            return
        try:
            yield from self.dynamo.call_op("transact_write_items", write=True,
                                           TransactItems=[p.action for p in pending],
                                           ClientRequestToken=str(uuid.uuid4()))
        except bexc.ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            for one, reason in zip(pending, reasons, strict=False):
                if reason.get("Code") == "ConditionalCheckFailed":
                    raise (self._stale(one, reason.get("Item")) or self._refused(one, exc)) from exc
            raise _unexpected(self.dynamo, reasons) from exc

    def commit(self) -> None:
        self.dynamo.run(self.commit_op())

    async def acommit(self) -> None:
        await self.dynamo.arun(self.commit_op())

    def rollback(self) -> None:
        self.pending, self.items, self.journal = [], {}, []

    async def arollback(self) -> None:
        self.rollback()
