"""Transactions: ``with registry.transaction() as tx:`` and ``async with registry.atransaction() as tx:``.

As with Django's ``atomic``, the ordinary model calls made inside the block join it: the open
transaction lives in a :class:`contextvars.ContextVar`, and ``Backend.run/arun/iterate/aiterate``
hand an operation of that backend to the transaction's state (:class:`TransactionState`) instead
of running it on its own. Only the thread (sync) or the task (async) that opened the block joins
it: a thread or a task started inside the block runs on its own, as it would outside.

What a backend does with the operations is its own (``Backend.transaction_state``): SQL runs
them on one connection in one database transaction, DynamoDB collects the writes and sends them
as one ``TransactWriteItems`` at the end, MongoDB runs them in a client session's transaction.
The capability is data on the backend's features (``transactions``, ``nested_transactions``,
``reads_see_own_writes_in_transaction``, ``max_transaction_items``, ...). See docs/transactions.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ConfigError, QueryError
from .ops import Op

if TYPE_CHECKING:
    from .backends.base import Backend
    from .expressions.nodes import Node
    from .model import Model
    from .registry import Registry

T = TypeVar("T")
M = TypeVar("M", bound="Model")

#: The transactions open in this context, innermost last (usually none or one).
_open: contextvars.ContextVar[tuple[Transaction, ...]] = contextvars.ContextVar("odm_transactions", default=())


def _task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop in this thread
        return None


def joined(backend: Backend, is_async: bool) -> TransactionState | None:
    """The state of the transaction an operation of ``backend`` run here joins (None: it runs on its own).

    ``is_async`` says how the operation is run (``arun``/``aiterate`` or ``run``/``iterate``); a
    sync call inside ``async with atransaction()`` (or the reverse) is a ConfigError rather than a
    write that silently escapes the transaction.
    """
    stack = _open.get()
    if not stack:
        return None
    for tx in reversed(stack):
        if tx.backend is backend:
            break
    else:
        return None
    if not tx.owned_here():
        return None  # another thread or task that inherited the context: not joined
    if tx.is_async != is_async:
        if tx.is_async:
            raise ConfigError("A sync call inside `async with registry.atransaction()`: use the awaitable "
                              "methods (acreate, asave, ...) so the call joins the transaction.")
        raise ConfigError("An awaited call inside `with registry.transaction()`: use the sync methods there, "
                          "or `async with registry.atransaction()` in async code.")
    assert tx.state is not None
    return tx.state


def in_transaction(backend: Backend) -> bool:
    """Whether an operation of ``backend`` run here joins an open transaction (sync or async)."""
    return open_state(backend) is not None


def open_state(backend: Backend) -> TransactionState | None:
    """The state of the innermost block of ``backend`` this thread or task runs in (sync or async), if any."""
    for tx in reversed(_open.get()):
        if tx.backend is backend and tx.owned_here():
            return tx.state
    return None


class TransactionState:
    """What a backend keeps for an open transaction; built by ``Backend.transaction_state``.

    ``run``/``arun`` carry out one operation inside the transaction (``iterate`` reads a query
    whole: see docs/transactions.md); ``commit``/``rollback`` end it. Backends with nested
    transactions (features.nested_transactions) implement the savepoint methods.
    """

    def __init__(self, backend: Backend, is_async: bool) -> None:
        self.backend = backend
        self.is_async = is_async

    def run(self, op: Op[T]) -> T:
        raise NotImplementedError

    async def arun(self, op: Op[T]) -> T:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    async def acommit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError

    async def arollback(self) -> None:
        raise NotImplementedError

    def savepoint(self) -> str:
        raise QueryError(f"Nested transactions are not supported on {self.backend.name} "
                         "(features.nested_transactions is False): open one transaction per block.")

    async def asavepoint(self) -> str:
        return self.savepoint()

    def release(self, name: str) -> None:
        raise NotImplementedError

    async def arelease(self, name: str) -> None:
        self.release(name)

    def rollback_to(self, name: str) -> None:
        raise NotImplementedError

    async def arollback_to(self, name: str) -> None:
        self.rollback_to(name)


class Transaction:
    """An open (or about to open) transaction on one registry's backend.

    Used as ``with registry.transaction() as tx:`` (sync) or ``async with registry.atransaction()
    as tx:`` (async). Inside the block every call of a model bound to this registry joins it;
    ``tx.create(User, ...)``, ``tx.save(obj)``, ``tx.update(obj, ...)``, ``tx.delete(obj)``,
    ``tx.insert_many(User, objs)`` and ``tx.get(User, key)`` (and their ``a`` twins) say so
    explicitly, and check that the model belongs to this transaction's registry.
    """

    def __init__(self, registry: Registry, is_async: bool, snapshot: bool = False) -> None:
        self.registry = registry
        self.snapshot = snapshot
        self.backend: Backend = registry.backend
        self.is_async = is_async
        self.state: TransactionState | None = None
        self.savepoint_name: str | None = None  # set when nested inside another block (a savepoint)
        self.active = False
        self.done = False
        self._thread = 0
        self._task: asyncio.Task[Any] | None = None
        self._token: contextvars.Token[tuple[Transaction, ...]] | None = None

    def owned_here(self) -> bool:
        if self.is_async:
            return _task() is self._task
        return threading.get_ident() == self._thread and (self._task is None or _task() is self._task)

    # -- entering and leaving ---------------------------------------------------------------------
    def _start(self) -> Transaction | None:
        """Checks before a block opens; the enclosing transaction of the same backend, if any."""
        if self.done or self.active:
            raise QueryError("A transaction object is used for one block only; call registry.transaction() again.")
        self.registry._open("start a transaction")
        features = self.backend.features
        if not features.transactions:
            raise QueryError(f"The {self.backend.name} backend has no transactions (features.transactions is False).")
        if self.snapshot and not features.snapshot_transactions:
            raise QueryError(f"The {self.backend.name} backend cannot give a transaction's reads one snapshot "
                             "(features.snapshot_transactions is False): use registry.transaction() without snapshot=True.")
        self._thread = threading.get_ident()
        self._task = _task()
        for outer in reversed(_open.get()):
            if outer.backend is self.backend and outer.owned_here():
                if outer.is_async != self.is_async:
                    raise ConfigError("A sync transaction cannot be nested in an async one (or the reverse).")
                return outer
        return None

    def _push(self) -> None:
        self._token = _open.set((*_open.get(), self))
        self.active = True

    def _pop(self) -> None:
        self.active = False
        self.done = True
        if self._token is not None:
            _open.reset(self._token)
            self._token = None

    def __enter__(self) -> Transaction:
        if self.is_async:
            raise ConfigError("registry.atransaction() is used with `async with`; use registry.transaction() "
                              "with a plain `with`.")
        outer = self._start()
        if outer is not None:
            assert outer.state is not None
            self.state = outer.state
            self.savepoint_name = self.state.savepoint()
        else:
            self.state = self.backend.transaction_state(False, self.snapshot)
        self._push()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self._pop()  # the ending itself runs outside the transaction
        state = self.state
        assert state is not None
        if self.savepoint_name is not None:
            if exc is None:
                state.release(self.savepoint_name)
            else:
                state.rollback_to(self.savepoint_name)
            return
        if exc is None:
            state.commit()
        else:
            state.rollback()

    async def __aenter__(self) -> Transaction:
        if not self.is_async:
            raise ConfigError("registry.transaction() is used with a plain `with`; use registry.atransaction() "
                              "with `async with`.")
        outer = self._start()
        if outer is not None:
            assert outer.state is not None
            self.state = outer.state
            self.savepoint_name = await self.state.asavepoint()
        else:
            self.state = self.backend.transaction_state(True, self.snapshot)
        self._push()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self._pop()
        state = self.state
        assert state is not None
        if self.savepoint_name is not None:
            if exc is None:
                await state.arelease(self.savepoint_name)
            else:
                await state.arollback_to(self.savepoint_name)
            return
        if exc is None:
            await state.acommit()
        else:
            await state.arollback()

    # -- explicit operations ----------------------------------------------------------------------
    def _check(self, model: type[Model] | Model) -> None:
        cls = model if isinstance(model, type) else type(model)
        if not self.active:
            raise QueryError("This transaction is not open: call tx methods inside its `with` block.")
        binding = cls._odm_binding
        if binding is None or binding.backend is not self.backend:
            raise QueryError(f"{cls.__name__} is not bound to this transaction's registry ({self.backend!r}); "
                             "a transaction covers the models of one registry.")

    def create(self, model: type[M], **data: Any) -> M:
        self._check(model)
        return model.create(**data)

    def save(self, obj: M, condition: Node | None = None) -> M:
        self._check(obj)
        return obj.save(condition)

    def update(self, obj: M, *actions: Any, **changes: Any) -> M:
        """``obj.update(...)`` in the block: the same arguments (actions, a condition, field changes)."""
        self._check(obj)
        return obj.update(*actions, **changes)

    def delete(self, obj: Model, condition: Node | None = None) -> None:
        self._check(obj)
        obj.delete(condition)

    def insert_many(self, model: type[M], objs: Iterable[M | Mapping[str, Any]]) -> list[M]:
        self._check(model)
        return model.insert_many(objs)

    def get(self, model: type[M], hash_value: Any, range_value: Any = None) -> M:
        self._check(model)
        return model.get(hash_value, range_value)

    def get_many(self, *refs: tuple[Any, ...]) -> list[Any]:
        """Items of any models of the registry read together: ``tx.get_many((User, "a"), (Event, "s", 1))``.

        One instance (or None where there is no item) per ``(Model, hash_key[, range_key])``, in
        order; read at one moment (DynamoDB's ``TransactGetItems``, at most 100 items) or, on the
        other backends, one after another in the transaction (consistent under ``snapshot=True``).
        """
        return self.backend.run(self._get_many_op(refs))

    async def aget_many(self, *refs: tuple[Any, ...]) -> list[Any]:
        return await self.backend.arun(self._get_many_op(refs))

    def _get_many_op(self, refs: tuple[tuple[Any, ...], ...]) -> Op[list[Any]]:
        wanted = []
        bindings = []
        for ref in refs:
            if not isinstance(ref, tuple) or not ref or not isinstance(ref[0], type):
                raise QueryError(f"get_many takes (Model, hash_key) or (Model, hash_key, range_key) tuples, not {ref!r}.")
            model: Any = ref[0]
            self._check(model)
            binding = model._bound()
            wanted.append((binding.repo, binding.key(*ref[1:])))
            bindings.append(binding)
        docs = yield from self.backend.get_many_op(wanted)
        return [None if doc is None else b.decode(doc) for b, doc in zip(bindings, docs, strict=True)]

    async def acreate(self, model: type[M], **data: Any) -> M:
        self._check(model)
        return await model.acreate(**data)

    async def asave(self, obj: M, condition: Node | None = None) -> M:
        self._check(obj)
        return await obj.asave(condition)

    async def aupdate(self, obj: M, *actions: Any, **changes: Any) -> M:
        self._check(obj)
        return await obj.aupdate(*actions, **changes)

    async def adelete(self, obj: Model, condition: Node | None = None) -> None:
        self._check(obj)
        await obj.adelete(condition)

    async def ainsert_many(self, model: type[M], objs: Iterable[M | Mapping[str, Any]]) -> list[M]:
        self._check(model)
        return await model.ainsert_many(objs)

    async def aget(self, model: type[M], hash_value: Any, range_value: Any = None) -> M:
        self._check(model)
        return await model.aget(hash_value, range_value)

    def __repr__(self) -> str:
        state = "open" if self.active else "done" if self.done else "new"
        return f"<Transaction {self.backend!r} {state}{' nested' if self.savepoint_name else ''}>"


def operation_name(op: Any) -> str:
    """A short name for an operation generator, for error messages: ``create``, ``save``, ``put``..."""
    name = getattr(op, "__name__", "") or "operation"
    return name.strip("_").removesuffix("_op") or "operation"


__all__ = ["Transaction", "TransactionState", "in_transaction", "joined", "open_state", "operation_name"]
