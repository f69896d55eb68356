"""What a SQL backend adds to the shared repository: connections, transactions, catalog.

Every operation (odm.ops) runs on one session: a connection borrowed for the operation,
which carries out its requests (odm.backends.sql.requests), commits when the operation
returns and rolls back when it raises or is closed early (a stream abandoned by its reader).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from time import perf_counter
from typing import Any, ClassVar, TypeVar

from ... import logs, ops
from ...ops import Op
from ...transaction import TransactionState, joined
from ..base import Backend, Features
from ..codec import Codec
from .dialect import Dialect
from .repository import SQLRepository
from .requests import BEGIN, Begin, Execute, ExecuteMany, Rollback

T = TypeVar("T")


class SQLFeatures(Features):
    atomic_insert_many = True
    transactions = True
    reads_see_own_writes_in_transaction = True
    nested_transactions = True  # savepoints
    transaction_survives_errors = True  # each operation in a savepoint of its own
    snapshot_transactions = True


class Session:
    """One operation's connection (sync): ``send`` a request, then ``finish`` or ``abort``.

    A session held by a transaction (``held``) leaves a failed statement to the transaction (it
    rolls back to the operation's savepoint) instead of ending the transaction itself.
    """

    held = False

    def send(self, request: Any) -> Any:
        raise NotImplementedError

    def finish(self) -> None:
        """The operation returned: commit and hand the connection back."""
        raise NotImplementedError

    def abort(self, exc: BaseException) -> None:
        """The operation raised or was closed: roll back quietly and hand the connection back."""
        raise NotImplementedError


class AsyncSession:
    """The same with the async driver."""

    held = False

    async def send(self, request: Any) -> Any:
        raise NotImplementedError

    async def finish(self) -> None:
        raise NotImplementedError

    async def abort(self, exc: BaseException) -> None:
        raise NotImplementedError


class RequestLog:
    """What the logged sessions share: the logger, and one DEBUG record per request (odm.logs)."""

    logger: ClassVar[logging.Logger]
    backend_name: ClassVar[str]
    #: The driver doubles ``%`` in statements (psycopg's placeholders): table names are read undoubled.
    percents: ClassVar[bool] = False
    #: The table of the open stream (its Fetches name it).
    stream_table: str | None = None

    def log_request(self, request: Any, response: Any, start: float, error: BaseException | None = None) -> None:
        self.stream_table = logs.sql_request(self.logger, self.backend_name, request, response, start, error,
                                             self.stream_table, percents=self.percents)


class LoggedSession(RequestLog, Session):
    """A session that logs each request at DEBUG (odm.logs), put first in a backend session's bases.

    A backend hands one out instead of its plain session while ``odm.requests.<backend>`` is at
    DEBUG: the level is checked once per session (per operation), and the plain session has no
    logging code at all.
    """

    def logged(self, request: Any) -> bool:
        """Whether this session logs ``request`` (not where another layer does)."""
        return True

    def send(self, request: Any) -> Any:
        if not self.logged(request):
            return super().send(request)
        start = perf_counter()
        try:
            response = super().send(request)
        except BaseException as exc:
            self.log_request(request, None, start, exc)
            raise
        self.log_request(request, response, start)
        return response


class LoggedAsyncSession(RequestLog, AsyncSession):
    """LoggedSession for the async driver."""

    async def send(self, request: Any) -> Any:
        start = perf_counter()
        try:
            response = await super().send(request)
        except BaseException as exc:
            self.log_request(request, None, start, exc)
            raise
        self.log_request(request, response, start)
        return response


class SQLBackend(Backend):
    features = SQLFeatures
    repository_class = SQLRepository
    dialect: ClassVar[Dialect]
    codec: ClassVar[Codec] = Codec()
    #: Exception classes that mean a key or unique index clash.
    integrity_errors: tuple[type[BaseException], ...] = ()
    #: A LIMIT value meaning "no limit" (for LIMIT ? OFFSET ?).
    no_limit: ClassVar[Any] = -1
    #: The catalog table every SQL backend keeps for itself (see ensure_meta).
    META_TABLE: ClassVar[str] = "_odm_schema"
    #: Seconds between sweeps of a TTL table's expired items before writes (0: before every write).
    sweep_interval: ClassVar[float] = 0.0
    #: Whether a conditional write, whose refusal is told apart from a missing item by a second
    #: statement, runs in a transaction: where it holds the write lock (SQLite) that makes the two
    #: atomic; a write that is one statement (no condition) always runs on its own.
    guarded_writes_in_transaction: ClassVar[bool] = True
    #: Sent right after BEGIN by ``registry.transaction(snapshot=True)`` (None: every transaction reads
    #: one snapshot already; SQLite's holds the database's write lock from its first statement).
    snapshot_sql: ClassVar[str | None] = None

    # -- running operations: one session (one transaction at most) per operation ----------------
    def session(self) -> Session:
        raise NotImplementedError

    def asession(self) -> AsyncSession:
        raise NotImplementedError

    def send(self, request: Any) -> Any:
        """One request on a session of its own (outside any operation)."""
        return self.run(_single(request))

    async def asend(self, request: Any) -> Any:
        return await self.arun(_single(request))

    def execute_one(self, request: Execute) -> Any:
        """One statement on its own (autocommit), outside any operation: what ``run`` does with an
        operation yielding just ``request`` (the same session, errors and round trip), for the fast plans."""
        session = self.session()
        try:
            result = session.send(request)
        except BaseException as exc:
            session.abort(exc)
            raise
        session.finish()
        return result

    def fast_plan(self, model: type[Any], binding: Any) -> Any | None:
        from .fast import FastPlan

        return FastPlan.build(model, binding)

    def run(self, op: Op[T]) -> T:
        tx = joined(self, False)
        if tx is not None:
            return tx.run(op)
        return self.run_sync(op)

    def transaction_state(self, is_async: bool, snapshot: bool = False) -> TransactionState:
        return SQLTransaction(self, is_async, snapshot)

    def run_sync(self, op: Op[T]) -> T:
        """``run`` itself (what a worker thread calls for an async run: ``run`` may be wrapped)."""
        session = self.session()
        try:
            result = ops.run(op, session.send)
        except BaseException as exc:
            session.abort(exc)
            raise
        session.finish()
        return result

    def iterate(self, op: Op[Any]) -> Iterator[Any]:
        tx = joined(self, False)
        if tx is not None:  # read whole: a save inside the loop must not close the query's stream
            yield from tx.run(ops.collect(op))
            return
        session = self.session()
        try:
            yield from ops.stream(op, session.send)
        except BaseException as exc:  # GeneratorExit too: the reader stopped early
            session.abort(exc)
            raise
        session.finish()

    async def arun(self, op: Op[T]) -> T:
        tx = joined(self, True)
        if tx is not None:
            return await tx.arun(op)
        session = self.asession()
        try:
            result = await ops.arun(op, session.send)
        except BaseException as exc:
            await session.abort(exc)
            raise
        await session.finish()
        return result

    async def aiterate(self, op: Op[Any]) -> AsyncIterator[Any]:  # type: ignore[override]
        tx = joined(self, True)
        if tx is not None:
            for item in await tx.arun(ops.collect(op)):
                yield item
            return
        session = self.asession()
        inner = ops.astream(op, session.send)
        try:
            async for item in inner:
                yield item
        except BaseException as exc:  # GeneratorExit (aclose) and cancellation too
            await inner.aclose()  # type: ignore[attr-defined]  # closes the operation now
            await session.abort(exc)
            raise
        await session.finish()

    def ping(self) -> None:
        """``SELECT 1`` on a connection of this backend: a real round trip."""
        self.run(_single(Execute("SELECT 1", (), "one")))

    def insert_rows_op(self, table: str, cols: str, rows: list[list[Any]]) -> Op[None]:
        marks = ", ".join([self.dialect.ph] * len(rows[0]))
        yield ExecuteMany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    def plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        raise NotImplementedError

    def constraint_name(self, exc: BaseException) -> str | None:
        return None

    # -- catalog (parts of a write operation) --------------------------------------------------
    def ensure_meta_op(self) -> Op[None]:
        yield Execute('CREATE TABLE IF NOT EXISTS "_odm_schema" ("name" TEXT PRIMARY KEY, "keys" TEXT NOT NULL)')

    def stored_key_schema_op(self, name: str) -> Op[dict[str, Any] | None]:
        row = yield Execute(f'SELECT "keys" FROM "_odm_schema" WHERE "name" = {self.dialect.ph}', [name], "one")
        return None if row is None else json.loads(row[0])  # type: ignore[no-any-return]

    def store_key_schema_op(self, name: str, schema: dict[str, Any]) -> Op[None]:
        yield Execute(f'INSERT INTO "_odm_schema" ("name", "keys") VALUES ({self.dialect.ph}, {self.dialect.ph})',
                      [name, json.dumps(schema)])

    def table_exists_op(self, name: str) -> Op[bool]:
        raise NotImplementedError

    def index_names_op(self, table: str) -> Op[set[str]]:
        raise NotImplementedError


def _single(request: Any) -> Op[Any]:
    return (yield request)


class SQLTransaction(TransactionState):
    """A SQL transaction: one session (one connection) held for the block.

    BEGIN goes out with the block's first operation, COMMIT at its end, ROLLBACK when it raises.
    Each operation runs in a savepoint of its own, so one that fails (a DuplicateKey the caller
    catches inside the block) is undone alone and the transaction goes on (PostgreSQL would
    otherwise refuse every later statement); its ``Begin`` is the transaction already open, its
    ``Rollback`` a rollback to its savepoint. A nested block is a savepoint too.
    """

    def __init__(self, backend: SQLBackend, is_async: bool, snapshot: bool = False) -> None:
        super().__init__(backend, is_async)
        self.sql = backend
        self.snapshot = snapshot
        self.session: Session | None = None
        self.asession: AsyncSession | None = None
        self.begun = False
        self.count = 0
        self.current: list[str] = []  # the savepoints of the operations running, innermost last

    # -- sync ---------------------------------------------------------------------------------
    def _held(self) -> Session:
        session = self.session
        if session is None:
            session = self.session = self.sql.session()
            session.held = True
        if not self.begun:
            session.send(BEGIN)
            self.begun = True
            if self.snapshot and self.sql.snapshot_sql:
                session.send(Execute(self.sql.snapshot_sql))
        return session

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"odm_{kind}_{self.count}"

    def _send(self, request: Any) -> Any:
        kind = type(request)
        if kind is Begin:
            return None
        session = self.session
        assert session is not None
        if kind is Rollback:
            session.send(Execute(f"ROLLBACK TO SAVEPOINT {self.current[-1]}"))
            return None
        try:
            return session.send(request)
        except BaseException:
            self._undo(session, self.current[-1])  # what the statement's own transaction would have done
            raise

    def _undo(self, session: Session, name: str) -> None:
        try:
            session.send(Execute(f"ROLLBACK TO SAVEPOINT {name}"))
        except Exception:  # noqa: BLE001 - a lost connection: COMMIT reports it
            pass

    def run(self, op: Op[T]) -> T:
        session = self._held()
        name = self._name("op")
        session.send(Execute(f"SAVEPOINT {name}"))
        self.current.append(name)
        try:
            result = ops.run(op, self._send)
        except BaseException:
            self._undo(session, name)
            raise
        finally:
            self.current.pop()
            self._close_stream(session)
        session.send(Execute(f"RELEASE SAVEPOINT {name}"))
        return result

    @staticmethod
    def _close_stream(session: Any) -> None:
        close = getattr(session, "_close_stream", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - a stream of a failed operation; the transaction goes on
                pass

    def savepoint(self) -> str:
        session = self._held()
        name = self._name("tx")
        session.send(Execute(f"SAVEPOINT {name}"))
        return name

    def release(self, name: str) -> None:
        assert self.session is not None
        self.session.send(Execute(f"RELEASE SAVEPOINT {name}"))

    def rollback_to(self, name: str) -> None:
        assert self.session is not None
        self.session.send(Execute(f"ROLLBACK TO SAVEPOINT {name}"))
        self.session.send(Execute(f"RELEASE SAVEPOINT {name}"))

    def commit(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.finish()

    def rollback(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.abort(Exception("transaction rolled back"))

    # -- async --------------------------------------------------------------------------------
    async def _aheld(self) -> AsyncSession:
        session = self.asession
        if session is None:
            session = self.asession = self.sql.asession()
            session.held = True
        if not self.begun:
            await session.send(BEGIN)
            self.begun = True
            if self.snapshot and self.sql.snapshot_sql:
                await session.send(Execute(self.sql.snapshot_sql))
        return session

    async def _asend(self, request: Any) -> Any:
        kind = type(request)
        if kind is Begin:
            return None
        session = self.asession
        assert session is not None
        if kind is Rollback:
            await session.send(Execute(f"ROLLBACK TO SAVEPOINT {self.current[-1]}"))
            return None
        try:
            return await session.send(request)
        except BaseException:
            await self._aundo(session, self.current[-1])
            raise

    async def _aundo(self, session: AsyncSession, name: str) -> None:
        try:
            await session.send(Execute(f"ROLLBACK TO SAVEPOINT {name}"))
        except Exception:  # noqa: BLE001
            pass

    async def arun(self, op: Op[T]) -> T:
        session = await self._aheld()
        name = self._name("op")
        await session.send(Execute(f"SAVEPOINT {name}"))
        self.current.append(name)
        try:
            result = await ops.arun(op, self._asend)
        except BaseException:
            await self._aundo(session, name)
            raise
        finally:
            self.current.pop()
            close = getattr(session, "_close_stream", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # noqa: BLE001
                    pass
        await session.send(Execute(f"RELEASE SAVEPOINT {name}"))
        return result

    async def asavepoint(self) -> str:
        session = await self._aheld()
        name = self._name("tx")
        await session.send(Execute(f"SAVEPOINT {name}"))
        return name

    async def arelease(self, name: str) -> None:
        assert self.asession is not None
        await self.asession.send(Execute(f"RELEASE SAVEPOINT {name}"))

    async def arollback_to(self, name: str) -> None:
        assert self.asession is not None
        await self.asession.send(Execute(f"ROLLBACK TO SAVEPOINT {name}"))
        await self.asession.send(Execute(f"RELEASE SAVEPOINT {name}"))

    async def acommit(self) -> None:
        session, self.asession = self.asession, None
        if session is not None:
            await session.finish()

    async def arollback(self) -> None:
        session, self.asession = self.asession, None
        if session is not None:
            await session.abort(Exception("transaction rolled back"))
