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

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import botocore.exceptions as bexc

from ...errors import BackendUnavailable, ODMError
from ...ops import Op
from .retry import Sleep, may_have_landed

if TYPE_CHECKING:
    from .backend import DynamoBackend

#: TransactWriteItems limits: actions per call, and a margin under the 4 MB request size.
MAX_ACTIONS = 100
MAX_BYTES = 3_500_000
#: Attempts for a single write that keeps racing a transaction: capped backoff, full jitter.
ATTEMPTS = 8
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
        yield Sleep(backoff(attempt))
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
