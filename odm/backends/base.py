"""What every backend provides: capability flags, a Backend and its Repositories.

Repositories work on stored documents (dicts in the backend's stored form) and
on the shared expression tree; models and the Go-style layer both sit on top,
so each backend has one implementation for both.
"""

from __future__ import annotations

import datetime as _dt
import enum
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from .. import ops
from ..errors import ConditionFailed, ConfigError, DuplicateKey, QueryError
from ..expressions.nodes import Node, Path
from ..fields import SortKey
from ..ops import Op
from ..pagination import Cursors
from ..schema import TableSpec
from ..transaction import TransactionState, joined
from ..updates import UpdateAction
from .codec import Codec
from .names import ANY, TableNameRule

T = TypeVar("T")


class _Miss:
    def __repr__(self) -> str:
        return "<MISS: run the operation>"


#: A fast plan's answer (``Backend.fast_plan``) meaning "run the call's operation instead".
MISS: Any = _Miss()


class Features:
    """Capability flags; a backend overrides only what differs (Django-style)."""

    # Can the backend enforce unique secondary indexes?
    supports_unique_indexes: ClassVar[bool] = True
    # Can it order by any attribute (not only an index's range key)?
    supports_arbitrary_order: ClassVar[bool] = True
    # Does insert_many run as one transaction (all or nothing)?
    atomic_insert_many: ClassVar[bool] = False
    # How fine is a stored DateTime? One microsecond everywhere (Python's own), MongoDB included:
    # it stores ISO strings, and its TTL attribute a BSON date plus the remainder.
    datetime_resolution: ClassVar[_dt.timedelta] = _dt.timedelta(microseconds=1)
    # Largest number magnitude the backend stores (DynamoDB's N stops below 1e126).
    max_number: ClassVar[float] = sys.float_info.max
    # Smallest non-zero number magnitude it stores (0.0: no limit beyond the field types'; DynamoDB's is 1e-130).
    min_number: ClassVar[float] = 0.0
    # Most significant digits a stored Decimal (or a query value) may have; None: no limit beyond
    # the field's exponent range. More is refused before any request (ValidationError/QueryError).
    max_decimal_digits: ClassVar[int | None] = None
    # Does the server add a Float increment as decimals (the two numbers' shortest spellings, summed
    # exactly, then read as the nearest double)? Elsewhere it is the IEEE sum Python computes; the two
    # can differ by one unit in the last place (0.1 + 0.2: 0.3 against 0.30000000000000004).
    float_increments_in_decimal: ClassVar[bool] = False
    # Can a String attribute that keys a secondary index hold ""? (DynamoDB refuses it: ValidationError.)
    empty_string_index_keys: ClassVar[bool] = True
    # Largest item (document) the backend stores, in bytes; None: no limit the ODM knows of. A larger
    # one is refused with ValidationError naming the limit, and nothing is written.
    max_item_bytes: ClassVar[int | None] = None
    # Does `registry.transaction()` exist here (docs/transactions.md)? MongoDB's also needs a server
    # that supports it (a replica set or a sharded cluster): probed when a transaction opens.
    transactions: ClassVar[bool] = False
    # Do reads inside a transaction see its own writes (SQL, MongoDB)? DynamoDB's writes are sent
    # at the end of the block, so reads inside it see the stored items as they were.
    reads_see_own_writes_in_transaction: ClassVar[bool] = False
    # Most write actions (items, and the guard items of unique indexes) one transaction may hold;
    # None: no limit the ODM knows of. More is a QueryError naming the limit, before any request.
    max_transaction_items: ClassVar[int | None] = None
    # Can a transaction() block be nested in another (a savepoint: the inner block's writes undone alone)?
    nested_transactions: ClassVar[bool] = False
    # Does the transaction go on after an operation inside it failed (a DuplicateKey caught in the
    # block)? SQL undoes the failed operation alone (a savepoint); MongoDB aborts the whole transaction.
    transaction_survives_errors: ClassVar[bool] = False
    # Can `registry.transaction(snapshot=True)` give every read of the block one consistent snapshot?
    snapshot_transactions: ClassVar[bool] = False
    # Does a secondary index hold only its declared projection (DynamoDB's KEYS_ONLY/INCLUDE)? Then a
    # query runs on it only when all it reads (only(), filter, order) lies there; use_index refuses more.
    index_projections: ClassVar[bool] = False


@dataclass(frozen=True)
class Action:
    """One thing ``sync`` did, printable as a sentence."""

    verb: str
    target: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.verb} {self.target}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class SyncPlan:
    """What ``sync_op(plan)`` fills in, for ``odm sync`` to show before it changes anything.

    ``exists`` collects what is already in place (as Actions whose verb says so, e.g.
    ``table exists``); with ``dry_run`` the sync only reads, and answers the actions a real
    sync would take, so a user can review them first.
    """

    dry_run: bool = False
    exists: list[Action] = field(default_factory=list)
    #: The table (collection) of the plan, and what a sync would do there (``Registry.plan``).
    table: str = ""
    todo: list[Action] = field(default_factory=list)

    def have(self, verb: str, target: str, detail: str = "") -> None:
        self.exists.append(Action(verb, target, detail))


@dataclass(frozen=True)
class QuerySpec:
    """A compiled-agnostic query: filter, order, window and index hint."""

    where: Node | None = None
    order: tuple[SortKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    index: str | None = None
    #: ``only()``: the stored top-level attributes to fetch (key, version and type included);
    #: None reads whole items. A backend that cannot project returns more; the decode trims it.
    only: tuple[str, ...] | None = None
    #: ... and the fields the partial instances hold (the decode's side of ``only``).
    only_fields: frozenset[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def but(self, **changes: Any) -> QuerySpec:
        """A copy with ``changes`` (``dataclasses.replace``, without its per-call field walk: a
        query is built with a few of these per call)."""
        if type(self) is not QuerySpec or not _SPEC_FIELDS.issuperset(changes):
            return replace(self, **changes)  # a subclass, or an unknown name (replace's TypeError)
        new = object.__new__(QuerySpec)
        values = new.__dict__
        values.update(self.__dict__)
        values.update(changes)
        return new


_SPEC_FIELDS = frozenset(QuerySpec.__dataclass_fields__)


@dataclass
class Page:
    """One page of results: ``items`` and an opaque ``next_cursor`` (None on the last page)."""

    items: list[Any]
    next_cursor: str | None


class Repository:
    """One table/collection: stored documents in, stored documents out.

    Each operation is written once, as a generator (``<name>_op``, see odm.ops) that yields
    the backend's requests and returns the result; the plain method runs it with the sync
    driver and the ``a``-prefixed one awaits it with the async driver. A backend implements
    only the ``*_op`` generators (and ``find_op``, which emits items as it pages).
    """

    codec: Codec

    def __init__(self, backend: Backend, spec: TableSpec) -> None:
        self.backend = backend
        self.spec = spec

    def use_exact_decimals(self) -> None:
        """The bound model has Decimal fields: read numbers back exactly (a no-op where they always are)."""

    # -- what every backend says the same way ------------------------------------------
    @staticmethod
    def key_label(key: tuple[Any, ...]) -> str:
        """A key as error messages show it: the hash value alone, or the (hash, range) pair."""
        return repr(key[0]) if len(key) == 1 else repr(key)

    def duplicate_key(self, key: tuple[Any, ...]) -> DuplicateKey:
        return DuplicateKey(f"An item with key {self.key_label(key)} already exists in '{self.spec.name}'.")

    def condition_failed(self, key: tuple[Any, ...], action: str) -> ConditionFailed:
        """A conditional ``save``/``update``/``delete`` refused because the stored item does not match."""
        outcome = "nothing was deleted" if action.startswith("delete") else "nothing was written"
        return ConditionFailed(f"The stored item {self.key_label(key)} in '{self.spec.name}' does not match the "
                               f"{action} condition; {outcome}.")

    # -- the operations every backend implements ----------------------------------------
    def sync_op(self, plan: SyncPlan | None = None) -> Op[list[Action]]:
        """Create what is missing; with ``plan`` also record what exists (and, dry, change nothing)."""
        raise NotImplementedError

    def insert_op(self, doc: dict[str, Any]) -> Op[None]:
        raise NotImplementedError

    def put_op(self, doc: dict[str, Any], condition: Node | None = None) -> Op[None]:
        raise NotImplementedError

    def get_op(self, key: tuple[Any, ...], only: Sequence[str] | None = None) -> Op[dict[str, Any] | None]:
        """The stored item with this key (None if absent); ``only``: just these top-level attributes
        (QuerySpec.only), or more where the backend cannot project."""
        raise NotImplementedError

    def batch_get_op(self, keys: Sequence[tuple[Any, ...]]) -> Op[list[dict[str, Any]]]:
        raise NotImplementedError

    def update_op(self, key: tuple[Any, ...], sets: dict[str, Any], incs: dict[str, Any],
                  unsets: Sequence[str], condition: Node | None = None,
                  actions: Sequence[UpdateAction] = ()) -> Op[dict[str, Any] | None]:
        """Top-level sets, increments and removals plus other ``actions`` (odm.updates), atomically."""
        raise NotImplementedError

    def update_where_op(self, query: QuerySpec, sets: dict[str, Any], incs: dict[str, Any],
                        unsets: Sequence[str], actions: Sequence[UpdateAction] = ()) -> Op[int]:
        """``Query.update``: each match updated on its own, conditioned on still matching the query.

        A backend with a server-side multi-item update overrides this; here an item changed
        meanwhile so that it no longer matches is left alone (and not counted).
        """
        keys = [self.spec.key_of(doc) for doc in (yield from ops.collect(self.find_op(query)))]
        count = 0
        for key in keys:
            try:
                done = yield from self.update_op(key, sets, incs, unsets, query.where, actions=actions)
            except ConditionFailed:
                continue
            count += done is not None
        return count

    def delete_op(self, key: tuple[Any, ...], condition: Node | None = None) -> Op[bool]:
        raise NotImplementedError

    def insert_many_op(self, docs: Sequence[dict[str, Any]]) -> Op[None]:
        raise NotImplementedError

    def find_op(self, query: QuerySpec) -> Op[None]:
        """Yields requests and ``Emit(docs)`` batches, in the query's order."""
        raise NotImplementedError

    def count_op(self, query: QuerySpec) -> Op[int]:
        raise NotImplementedError

    def delete_where_op(self, query: QuerySpec) -> Op[int]:
        raise NotImplementedError

    def explain(self, query: QuerySpec) -> dict[str, Any]:
        raise NotImplementedError

    # -- distinct values and counts per value (Query.distinct / Query.count_by) ----------
    def value_decoder(self, path: Path) -> Callable[[Any], Any]:
        """A stored scalar at ``path`` as its field's Python value (None stays None)."""
        ttl = len(path.parts) == 1 and path.parts[0] == self.spec.ttl_attribute
        fn = self.codec.field_decoder(path.field, ttl) if path.field is not None else None
        if fn is None:
            return lambda v: v
        return lambda v: None if v is None else fn(v)

    def count_by_op(self, query: QuerySpec, path: Path) -> Op[dict[Any, int]]:
        """How many matches hold each value at ``path`` (decoded; missing/None under None).

        The generic way, which every backend can fall back on: the matches are read batch by
        batch (never all held at once) and counted in Python on their decoded values, so values
        equal in Python (``Decimal("1.0")`` and ``Decimal("1.00")``) are one group everywhere.
        """
        decode = self.value_decoder(path)
        counts: dict[Any, int] = {}

        def count(docs: list[dict[str, Any]]) -> None:
            for doc in docs:
                value = decode(dig(doc, path.parts))
                counts[value] = counts.get(value, 0) + 1

        yield from ops.consume(self.find_op(query), count)
        return counts

    def distinct_op(self, query: QuerySpec, path: Path) -> Op[list[Any]]:
        """The distinct non-missing values at ``path`` among the matches, decoded and sorted."""
        counts = yield from self.count_by_op(query, path)
        return sorted_values(counts)

    def page_op(self, query: QuerySpec, size: int, cursor: str | None) -> Op[tuple[list[dict[str, Any]], str | None]]:
        from ..pagination import keyset_page_op

        return keyset_page_op(self, query, size, cursor)

    # -- sync and async runs of the same operations -------------------------------------
    def sync(self, plan: SyncPlan | None = None) -> list[Action]:
        return self.backend.run(self.sync_op(plan))

    async def async_sync(self, plan: SyncPlan | None = None) -> list[Action]:
        return await self.backend.arun(self.sync_op(plan))

    def insert(self, doc: dict[str, Any]) -> None:
        self.backend.run(self.insert_op(doc))

    async def ainsert(self, doc: dict[str, Any]) -> None:
        await self.backend.arun(self.insert_op(doc))

    def put(self, doc: dict[str, Any], condition: Node | None = None) -> None:
        self.backend.run(self.put_op(doc, condition))

    async def aput(self, doc: dict[str, Any], condition: Node | None = None) -> None:
        await self.backend.arun(self.put_op(doc, condition))

    def get(self, key: tuple[Any, ...], only: Sequence[str] | None = None) -> dict[str, Any] | None:
        return self.backend.run(self.get_op(key, only))

    async def aget(self, key: tuple[Any, ...], only: Sequence[str] | None = None) -> dict[str, Any] | None:
        return await self.backend.arun(self.get_op(key, only))

    def batch_get(self, keys: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return self.backend.run(self.batch_get_op(keys))

    async def abatch_get(self, keys: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return await self.backend.arun(self.batch_get_op(keys))

    def update_where(self, query: QuerySpec, sets: dict[str, Any], incs: dict[str, Any],
                     unsets: Sequence[str], actions: Sequence[UpdateAction] = ()) -> int:
        return self.backend.run(self.update_where_op(query, sets, incs, unsets, actions))

    async def aupdate_where(self, query: QuerySpec, sets: dict[str, Any], incs: dict[str, Any],
                            unsets: Sequence[str], actions: Sequence[UpdateAction] = ()) -> int:
        return await self.backend.arun(self.update_where_op(query, sets, incs, unsets, actions))

    def update(self, key: tuple[Any, ...], sets: dict[str, Any], incs: dict[str, Any],
               unsets: Sequence[str], condition: Node | None = None) -> dict[str, Any] | None:
        return self.backend.run(self.update_op(key, sets, incs, unsets, condition))

    async def aupdate(self, key: tuple[Any, ...], sets: dict[str, Any], incs: dict[str, Any],
                      unsets: Sequence[str], condition: Node | None = None) -> dict[str, Any] | None:
        return await self.backend.arun(self.update_op(key, sets, incs, unsets, condition))

    def delete(self, key: tuple[Any, ...], condition: Node | None = None) -> bool:
        return self.backend.run(self.delete_op(key, condition))

    async def adelete(self, key: tuple[Any, ...], condition: Node | None = None) -> bool:
        return await self.backend.arun(self.delete_op(key, condition))

    def insert_many(self, docs: Sequence[dict[str, Any]]) -> None:
        self.backend.run(self.insert_many_op(docs))

    async def ainsert_many(self, docs: Sequence[dict[str, Any]]) -> None:
        await self.backend.arun(self.insert_many_op(docs))

    def find(self, query: QuerySpec) -> Iterator[dict[str, Any]]:
        return self.backend.iterate(self.find_op(query))

    def afind(self, query: QuerySpec) -> AsyncIterator[dict[str, Any]]:
        return self.backend.aiterate(self.find_op(query))

    def count(self, query: QuerySpec) -> int:
        return self.backend.run(self.count_op(query))

    async def acount(self, query: QuerySpec) -> int:
        return await self.backend.arun(self.count_op(query))

    def delete_where(self, query: QuerySpec) -> int:
        return self.backend.run(self.delete_where_op(query))

    async def adelete_where(self, query: QuerySpec) -> int:
        return await self.backend.arun(self.delete_where_op(query))

    def distinct(self, query: QuerySpec, path: Path) -> list[Any]:
        return self.backend.run(self.distinct_op(query, path))

    async def adistinct(self, query: QuerySpec, path: Path) -> list[Any]:
        return await self.backend.arun(self.distinct_op(query, path))

    def count_by(self, query: QuerySpec, path: Path) -> dict[Any, int]:
        return self.backend.run(self.count_by_op(query, path))

    async def acount_by(self, query: QuerySpec, path: Path) -> dict[Any, int]:
        return await self.backend.arun(self.count_by_op(query, path))

    def page(self, query: QuerySpec, size: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return self.backend.run(self.page_op(query, size, cursor))

    async def apage(self, query: QuerySpec, size: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return await self.backend.arun(self.page_op(query, size, cursor))


class Backend:
    """A configured connection; builds one repository per table spec."""

    name: ClassVar[str] = "backend"
    features: ClassVar[type[Features]] = Features
    repository_class: ClassVar[type[Repository]] = Repository
    #: The dbInfo keys this backend reads, each with the kind of value it takes
    #: (a name in ``odm.config.KINDS``); any other key is a ConfigError naming the close match.
    info_keys: ClassVar[Mapping[str, str]] = {}
    #: Keys of the seed's single shared dbInfo that only the other Go-era backend reads
    #: (one dbInfo serves both MongoDB and DynamoDB there): accepted and not used.
    shared_info_keys: ClassVar[frozenset[str]] = frozenset()
    #: Which table names the server can hold (checked when a repository is defined).
    table_names: ClassVar[TableNameRule] = ANY
    #: Whether model calls may take the backend's per-model fast plans (``fast_plan``) instead of
    #: running their operation through ``run``/``iterate``; off, every call runs its operation.
    fast_paths: ClassVar[bool] = True

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.repositories: dict[str, Repository] = {}
        #: Signs page cursors; a Registry replaces it when a cursor secret is configured.
        self.cursors = Cursors()
        #: The database the config names, where it does not exist yet and an ``inspecting`` backend
        #: left it so (``odm check`` reports it, ``odm sync --dry-run`` plans its creation).
        self.missing_database: str | None = None

    @classmethod
    def inspecting(cls, info: dict[str, Any]) -> Backend:
        """A backend for reading only (``odm check``, ``odm sync --dry-run``): opening it changes
        nothing. Most backends open without side effects; one whose opening writes (SQLite creates
        its file and sets its journal mode) opens differently here."""
        return cls(info)

    def stored_table_name(self, name: str) -> str:
        """The name the server sees for a table spec's ``name`` (DynamoDB adds its tablePrefix)."""
        return name

    def check_table_name(self, name: str) -> None:
        """ConfigError, naming the name and the rule, when the server cannot hold this table name."""
        if not isinstance(name, str):
            raise ConfigError(f"A table name must be a string, not {type(name).__name__} ({name!r}).")
        problem = ANY.problem(name) or self.table_names.problem(self.stored_table_name(name))
        if problem is not None:
            raise ConfigError(f"The table name {name!r} cannot be used on {self.name}: {problem}; "
                              f"{self.table_names.summary}.")

    def ping(self) -> None:
        """One real round trip to the server (``odm check``); BackendUnavailable or ConfigError when it fails."""
        raise NotImplementedError

    def repository(self, spec: TableSpec) -> Repository:
        self.check_table_name(spec.name)
        existing = self.repositories.get(spec.name)
        if existing is not None:
            if existing.spec != spec:
                raise ConfigError(f"The table '{spec.name}' is already defined differently on this backend.")
            return existing
        repo = self.repositories[spec.name] = self.repository_class(self, spec)
        return repo

    def fast_plan(self, model: type[Any], binding: Any) -> Any | None:
        """The prepared plan of ``model``'s usual single-item calls on this backend, made once per
        binding (None: every call runs its operation). See odm/backends/sql/fast.py."""
        return None

    # -- running operations (odm.ops): a backend provides send and asend ----------------
    def send(self, request: Any) -> Any:
        """Carry out one request of an operation with the sync driver; the driver's response."""
        raise NotImplementedError

    async def asend(self, request: Any) -> Any:
        """The same with the native async driver (opened on first use)."""
        raise NotImplementedError

    def run(self, op: Op[T]) -> T:
        tx = joined(self, False)
        if tx is not None:
            return tx.run(op)
        return ops.run(op, self.send)

    async def arun(self, op: Op[T]) -> T:
        tx = joined(self, True)
        if tx is not None:
            return await tx.arun(op)
        return await ops.arun(op, self.asend)

    def iterate(self, op: Op[Any]) -> Iterator[Any]:
        """The items a streaming operation emits (sync)."""
        tx = joined(self, False)
        if tx is not None:
            return iter(tx.run(ops.collect(op)))
        return ops.stream(op, self.send)

    def aiterate(self, op: Op[Any]) -> AsyncIterator[Any]:
        if joined(self, True) is not None:
            return transaction_stream(self, op)
        return ops.astream(op, self.asend)

    # -- transactions (odm.transaction) -----------------------------------------------------------
    def get_many_op(self, wanted: Sequence[tuple[Repository, tuple[Any, ...]]]) -> Op[list[dict[str, Any] | None]]:
        """The stored documents of items of several tables read together (``tx.get_many``), None where missing.

        Here one read after another, which a transaction's snapshot makes consistent; DynamoDB reads
        them in one ``TransactGetItems``.
        """
        out: list[dict[str, Any] | None] = []
        for repo, key in wanted:
            out.append((yield from repo.get_op(key)))
        return out

    def transaction_state(self, is_async: bool, snapshot: bool = False) -> TransactionState:
        """A new transaction's state (features.transactions); QueryError naming the limit where there is none."""
        raise QueryError(f"The {self.name} backend has no transactions (features.transactions is False).")

    def close(self) -> None:
        """Release connections; safe to call twice."""

    async def aclose(self) -> None:
        """Release the async connections too (and the sync ones); safe to call twice."""
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


async def transaction_stream(backend: Backend, op: Op[Any]) -> AsyncIterator[Any]:
    """A query inside an async transaction: read whole on the transaction's session, then yielded."""
    tx = joined(backend, True)
    assert tx is not None
    for item in await tx.arun(ops.collect(op)):
        yield item


def require(info: dict[str, Any], key: str, backend: str) -> Any:
    if key not in info or info[key] in (None, ""):
        raise ConfigError(f"The {backend} backend needs dbInfo key '{key}'.")
    return info[key]


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def dig(doc: Mapping[str, Any], parts: Sequence[str]) -> Any:
    """The stored value at a path of stored names; None where any step is missing or not a map."""
    value: Any = doc
    for part in parts:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _sort_key(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def sorted_values(counts: Iterable[Any]) -> list[Any]:
    """Distinct values in the query language's ascending order (None, i.e. missing, left out).

    The values are one field's decoded scalars, so Python's order is that order: numbers by
    value, strings by code point, datetimes in time; an enum by its stored value.
    """
    return sorted((v for v in counts if v is not None), key=_sort_key)
