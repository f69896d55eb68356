"""What a SQL backend adds to the shared repository: connections, transactions, catalog.

Every operation (odm.ops) runs on one session: a connection borrowed for the operation,
which carries out its requests (odm.backends.sql.requests), commits when the operation
returns and rolls back when it raises or is closed early (a stream abandoned by its reader).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

from ... import ops
from ...ops import Op
from ..base import Backend, Features
from ..codec import Codec
from .dialect import Dialect
from .repository import SQLRepository
from .requests import Execute, ExecuteMany

T = TypeVar("T")


class SQLFeatures(Features):
    atomic_insert_many = True


class Session:
    """One operation's connection (sync): ``send`` a request, then ``finish`` or ``abort``."""

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

    async def send(self, request: Any) -> Any:
        raise NotImplementedError

    async def finish(self) -> None:
        raise NotImplementedError

    async def abort(self, exc: BaseException) -> None:
        raise NotImplementedError


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

    def run(self, op: Op[T]) -> T:
        return self.run_sync(op)

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
        session = self.session()
        try:
            yield from ops.stream(op, session.send)
        except BaseException as exc:  # GeneratorExit too: the reader stopped early
            session.abort(exc)
            raise
        session.finish()

    async def arun(self, op: Op[T]) -> T:
        session = self.asession()
        try:
            result = await ops.arun(op, session.send)
        except BaseException as exc:
            await session.abort(exc)
            raise
        await session.finish()
        return result

    async def aiterate(self, op: Op[Any]) -> AsyncIterator[Any]:  # type: ignore[override]
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
