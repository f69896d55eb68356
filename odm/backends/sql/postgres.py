"""PostgreSQL: the shared SQL repository over a JSONB document column, on psycopg 3.

Typed operands make comparisons correct: a field's kind decides whether its
path is read as text (``COLLATE "C"``, binary order like MongoDB and SQLite),
as ``numeric`` or as ``boolean``; untyped paths (the Go layer) compare as
``jsonb``. Meta indexes are expression indexes on exactly those operands, so
the planner uses them. See docs/backends/postgres.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import select
import threading
import uuid
from collections.abc import Sequence
from decimal import Decimal
from time import monotonic
from typing import Any, ClassVar

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout

from ... import logs
from ...config import redact_url
from ...errors import BackendUnavailable, ConcurrentModification, ConfigError, ODMError, QueryError
from ...expressions.nodes import render_like
from ...fields import Field
from ...ops import Op
from ...redaction import mask_secrets, watch
from ...updates import UpdateAction
from ..base import chunks
from ..names import TableNameRule
from .backend import AsyncSession, LoggedAsyncSession, LoggedSession, Session, SQLBackend, SQLFeatures
from .dialect import Dialect
from .repository import dumps
from .requests import Begin, Copy, Execute, ExecuteMany, Fetch, Rollback, Stream, answer

_REQUESTS = logs.requests_logger("postgres")
_RETRIES = logs.retries_logger("postgres")
_TEXT_KINDS = frozenset({"str", "uuid", "date", "datetime", "bytes"})
_NUMERIC_KINDS = frozenset({"int", "float", "decimal"})
_COLLATE = ' COLLATE "C"'
#: PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
_MAX_IDENT = 63


def _identity(text: Any) -> Any:
    return text


def operand_class(field: Field | None) -> str:
    """How a path is read for comparison: 'text', 'numeric', 'bool' or 'jsonb' (untyped or structured)."""
    kind = getattr(field, "kind", None)
    if kind in _TEXT_KINDS:
        return "text"
    if kind in _NUMERIC_KINDS:
        return "numeric"
    if kind == "bool":
        return "bool"
    if kind == "enum":
        members = getattr(field, "enum", None)
        if members is not None and all(isinstance(m.value, str) for m in members):
            return "text"
    return "jsonb"


def to_numeric(value: Any) -> Any:
    """A number as Decimal, so it binds as ``numeric`` (a float8 parameter would defeat numeric indexes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def normalise_like(pattern: str) -> str:
    """The API's LIKE pattern for PostgreSQL: a lone trailing backslash is a literal backslash."""
    return render_like(pattern, "%", "_", escape_like)


class PostgresDialect(Dialect):
    name = "postgres"
    ph = "%s"
    KEY_TYPES: ClassVar[dict[str, str]] = {
        **{kind: 'text COLLATE "C"' for kind in (*_TEXT_KINDS, "enum")},
        **{kind: "numeric" for kind in _NUMERIC_KINDS},
    }
    DOC_TYPE = "jsonb"
    EXP_TYPE = "double precision"
    explicit_nulls_order = True

    # Every literal and identifier is escaped for psycopg's %-placeholders as well.
    def quote(self, name: str) -> str:
        return super().quote(name).replace("%", "%%")

    def literal(self, text: str) -> str:
        if "\x00" in text:
            raise QueryError(f"The name {text!r} contains a NUL character and cannot be used.")
        return super().literal(text).replace("%", "%%")

    def key_type(self, kind: str) -> str:
        return self.KEY_TYPES.get(kind, 'text COLLATE "C"')

    # -- operands and parameters ---------------------------------------------------
    def json_path(self, parts: Sequence[str], as_text: bool) -> str:
        keys = [self.literal(p) for p in parts]
        if not as_text:
            return '"doc"' + "".join(f"->{k}" for k in keys)
        return '"doc"' + "".join(f"->{k}" for k in keys[:-1]) + f"->>{keys[-1]}"

    def json_text(self, parts: Sequence[str]) -> tuple[str, bool]:
        return f"({self.json_path(parts, False)})::text", False

    def json_operand(self, parts: Sequence[str], field: Field | None) -> str:
        cls = operand_class(field)
        if cls == "jsonb":
            return f"({self.json_path(parts, False)})"
        text = f"({self.json_path(parts, True)})"
        if cls == "numeric":
            return f"{text}::numeric"
        if cls == "bool":
            return f"{text}::boolean"
        return text + _COLLATE

    def json_param(self, value: Any, field: Field | None) -> Any:
        if value is None:
            return None
        cls = operand_class(field)
        if cls == "text":
            return value if isinstance(value, str) else str(value)
        if cls == "numeric":
            return to_numeric(value)
        if cls == "bool":
            return value
        return Jsonb(value, dumps=dumps)

    def column_param(self, value: Any) -> Any:
        return Decimal(repr(value)) if isinstance(value, float) else value

    def set_params(self, sets: dict[str, str]) -> list[Any]:
        """One jsonb object of the new values, merged into the document with ``||``."""
        if not sets:
            return []
        return [Jsonb("{" + ",".join(f"{dumps(name)}:{text}" for name, text in sets.items()) + "}", dumps=_identity)]

    def explain_param(self, param: Any) -> Any:
        if isinstance(param, Jsonb):
            obj = param.obj
            return json.loads(obj) if param.dumps is _identity else obj
        return param

    def is_jsonb(self, operand: str) -> bool:
        # Operands are classified by their ending, which no attribute name can forge:
        # jsonb ones end in the quoted key and ")", the others in COLLATE/::numeric/::boolean.
        return operand.startswith('("doc"') and operand.endswith("')")

    def text_of(self, operand: str) -> str:
        """A string-only text form of an operand (NULL for anything that is not a string)."""
        if operand.endswith(_COLLATE) or operand in ('"_hk"', '"_rk"'):
            return operand
        if operand.endswith(("::numeric", "::boolean")):
            return "NULL::text"
        return f"(CASE WHEN jsonb_typeof({operand}) = 'string' THEN {operand} #>> '{{}}' END){_COLLATE}"

    def order_term(self, operand: str, descending: bool) -> str:
        if not self.is_jsonb(operand):
            return super().order_term(operand, descending)
        # jsonb orders types as null < string < number and strings by the database's collation
        # (maybe a locale): use the one JSON order of every backend instead.
        rank, value = self._jsonb_rank(operand)
        return ", ".join(super(PostgresDialect, self).order_term(term, descending)
                         for term in (rank, value, self.text_of(operand)))

    def _jsonb_rank(self, operand: str) -> tuple[str, str]:
        rank = (f"(CASE jsonb_typeof({operand}) WHEN 'number' THEN 1 WHEN 'string' THEN 2 WHEN 'object' THEN 3 "
                f"WHEN 'array' THEN 4 WHEN 'boolean' THEN 5 ELSE 0 END)")
        # Numbers and booleans by their jsonb value; strings by the next term (bytes); objects
        # and arrays not at all (they tie, and the key decides).
        value = f"(CASE WHEN jsonb_typeof({operand}) IN ('number', 'boolean') THEN {operand} END)"
        return rank, value

    def json_order_term(self, parts: Sequence[str], descending: bool) -> str:
        return self.order_term(self.json_operand(parts, None), descending)

    # -- predicates ------------------------------------------------------------------
    def prefix_sql(self, operand: str, ph: str) -> str:
        # LIKE 'abc%' under the "C" collation can use a btree index; starts_with() cannot.
        return f"{self.text_of(operand)} LIKE {ph}"

    def prefix_param(self, prefix: str) -> Any:
        return escape_like(prefix) + "%"

    def like_sql(self, operand: str, ph: str) -> str:
        return f"{self.text_of(operand)} LIKE {ph}"

    def like_param(self, pattern: str) -> Any:
        return normalise_like(pattern)

    def contains_list_sql(self, parts: Sequence[str], ph: str) -> str:
        # Containment of a one-element array: served by a GIN (jsonb_path_ops) index.
        return f"({self.json_path(parts, False)}) @> {ph}"

    def contains_list_param(self, value: Any) -> Any:
        return Jsonb([value], dumps=dumps)

    def contains_str_sql(self, operand: str, ph: str) -> str:
        return f"strpos({self.text_of(operand)}, {ph}) > 0"

    # -- schema ----------------------------------------------------------------------
    def index_name(self, name: str) -> str:
        raw = name.encode()
        if len(raw) <= _MAX_IDENT:
            return name
        digest = hashlib.blake2b(raw, digest_size=4).hexdigest()
        suffix = "_uniq" if name.endswith("_uniq") else ""
        keep = raw[:_MAX_IDENT - len(suffix) - len(digest) - 1].decode(errors="ignore")
        return f"{keep}_{digest}{suffix}"

    def create_index_sql(self, name: str, table: str, operands: Sequence[tuple[str, Field | None]], unique: bool) -> str:
        if len(operands) == 1 and not unique and getattr(operands[0][1], "kind", None) in ("list", "set"):
            return f"CREATE INDEX {self.quote(name)} ON {table} USING GIN (({operands[0][0]}) jsonb_path_ops)"
        exprs = ", ".join(f"({op})" for op, _ in operands)
        return f"CREATE {'UNIQUE ' if unique else ''}INDEX {self.quote(name)} ON {table} ({exprs})"

    # -- documents and writes ------------------------------------------------------------
    def dumps_param(self, text: str) -> Any:
        return Jsonb(text, dumps=_identity)

    def doc_select(self, only: Sequence[str] | None = None) -> str:
        # As text, so the repository's loads (exact Decimals when asked) parses it.
        return '"doc"::text' if only is None else self.project_sql(only)

    def project_sql(self, only: Sequence[str]) -> str:
        # jsonb_build_object takes at most 100 arguments: 50 attributes an object, joined by ||.
        parts = [", ".join(f"{self.literal(n)}, {self.json_path([n], False)}" for n in chunk)
                 for chunk in chunks(list(only), 50)]
        return "(" + " || ".join(f"jsonb_build_object({p})" for p in parts) + ")::text"

    def empty_row(self, key_columns: Sequence[str], table: str = "") -> str:
        # Key columns come from the table (LEFT JOIN ... ON FALSE): NULL, but typed like the keys,
        # so a condition comparing a numeric key still type-checks.
        cols = ", ".join(f"k.{c}" for c in key_columns)
        return f"(SELECT '{{}}'::jsonb AS \"doc\", {cols} FROM (SELECT 1) AS one LEFT JOIN {table} AS k ON FALSE) AS t"

    def update_doc_sql(self, sets: dict[str, str], incs: dict[str, Any], unsets: Sequence[str],
                       params: list[Any], actions: Sequence[UpdateAction] = ()) -> str:
        doc = '"doc"'
        for name in unsets:
            doc = f"{doc} - {self.literal(name)}"
        if unsets:
            doc = f"({doc})"
        if sets:
            doc = f"{doc} || {self.ph}"
            params += self.set_params(sets)
        if incs:
            pieces = []
            for name, amount in incs.items():
                num = "float8" if isinstance(amount, float) else "numeric"  # a Float adds as IEEE doubles, as Python does
                pieces.append(f"{self.literal(name)}, COALESCE(({self.json_path([name], True)})::{num}, 0) + {self.ph}::{num}")
                params.append(amount if num == "float8" else to_numeric(amount))
            doc = f"{doc} || jsonb_build_object({', '.join(pieces)})"
        for action in actions:
            doc = self.action_sql(doc, action, params)
        return doc

    def action_sql(self, doc: str, action: UpdateAction, params: list[Any]) -> str:
        """``doc`` after one action, in jsonb functions; the action's path is read from the row's "doc".

        A Set's elements are ordered as Python orders the stored values (numbers by value, strings
        by code point: COLLATE "C"), so the stored array is the one the codec writes.
        """
        ph = self.ph
        params.append(list(action.path))
        path = f"{ph}::text[]"
        op = action.op
        if op == "unset":
            return f"({doc} #- {path})"
        if op == "set":
            params.append(Jsonb(dumps(action.value), dumps=_identity))
            return f"jsonb_set({doc}, {path}, {ph})"
        # The path again, for reading the current value (placeholders are positional).
        params.append(list(action.path))
        current = f'("doc" #> {ph}::text[])'
        if op == "inc":
            num = "float8" if isinstance(action.value, float) else "numeric"
            params.append(action.value if num == "float8" else to_numeric(action.value))
            return f"jsonb_set({doc}, {path}, to_jsonb(COALESCE(({current} #>> '{{}}')::{num}, 0) + {ph}::{num}))"
        params.append(Jsonb(dumps(list(action.value)), dumps=_identity))
        if op == "append":
            return f"jsonb_set({doc}, {path}, COALESCE({current}, '[]'::jsonb) || {ph})"
        if op == "add":
            order = "jsonb_typeof(u.e), (CASE WHEN jsonb_typeof(u.e) = 'string' THEN u.e #>> '{}' END) COLLATE \"C\", u.e"
            merged = (f"(SELECT COALESCE(jsonb_agg(u.e ORDER BY {order}), '[]'::jsonb) FROM "
                      f"(SELECT jsonb_array_elements(COALESCE({current}, '[]'::jsonb)) AS e "
                      f"UNION SELECT jsonb_array_elements({ph})) AS u)")
            return f"jsonb_set({doc}, {path}, {merged})"
        # remove, discard: every occurrence, the order kept; a missing array stays missing (create_missing false)
        kept = (f"(SELECT COALESCE(jsonb_agg(t.e ORDER BY t.i), '[]'::jsonb) FROM jsonb_array_elements({current}) "
                f"WITH ORDINALITY AS t(e, i) WHERE t.e NOT IN (SELECT jsonb_array_elements({ph})))")
        return f"jsonb_set({doc}, {path}, {kept}, false)"


class PostgresFeatures(SQLFeatures):
    # insert_many runs in one transaction (multi-row INSERTs): all or nothing.
    atomic_insert_many = True


class _Cursor(psycopg.Cursor[Any]):
    """Always passes parameters, so the %% escapes in generated SQL are read the same way everywhere."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(query, () if params is None else params, **kwargs)


class _AsyncCursor(psycopg.AsyncCursor[Any]):
    """The async twin of _Cursor."""

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return await super().execute(query, () if params is None else params, **kwargs)


class PostgresBackend(SQLBackend):
    """A lazily opened psycopg_pool.ConnectionPool; each operation borrows one connection."""

    name = "postgres"
    dialect = PostgresDialect()
    features = PostgresFeatures
    info_keys = {"dsn": "text", "uri": "text", "host": "text", "port": "port", "database": "text", "user": "text",
                 "pass": "text", "password": "text", "poolSize": "count", "pool_size": "count", "timeout": "seconds"}
    table_names = TableNameRule(
        f"a PostgreSQL table name holds no NUL character, is at most {_MAX_IDENT} bytes (the server would cut a "
        "longer one short) and is not '_odm_schema' (the ODM's catalog)",
        max_bytes=_MAX_IDENT, reserved=(SQLBackend.META_TABLE,))
    integrity_errors = (psycopg.errors.UniqueViolation,)
    no_limit = None
    #: Rows fetched per round trip when streaming through a server-side cursor.
    batch_size: int = 500
    #: A sweep is a round trip: at most one a minute (an expired item in a write's way is swept then).
    sweep_interval: ClassVar[float] = 60.0
    #: Under READ COMMITTED a transaction around a conditional write and its existence check would
    #: hold no lock the statements do not take themselves (each reads its own snapshot): it would
    #: only add BEGIN and COMMIT, two round trips.
    guarded_writes_in_transaction: ClassVar[bool] = False
    #: Sent right after BEGIN by ``registry.transaction(snapshot=True)``: every read sees one snapshot.
    snapshot_sql: ClassVar[str | None] = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
    #: Advisory lock key that serialises concurrent sync() calls (services starting together).
    SYNC_LOCK = 0x6F646D73796E63

    def ensure_meta_op(self) -> Op[None]:
        # Two services creating the same table at once would otherwise clash in the catalog.
        yield Execute("SELECT pg_advisory_xact_lock(%s)", [self.SYNC_LOCK])
        yield from super().ensure_meta_op()

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info)
        params = self._params(info)
        params.setdefault("connect_timeout", 10)
        self.password = str(params.get("password") or "")
        watch(("odm",), [self.password])  # masked in the ODM's own records too, should one quote it
        self.conninfo = make_conninfo(**params)
        host, port, db = params.get("host") or "localhost", params.get("port") or 5432, params.get("dbname") or ""
        user = params.get("user")
        self.label = f"{user + '@' if user else ''}{host}:{port}/{db}"
        try:
            self.pool_size = int(info.get("poolSize", info.get("pool_size", 10)))
            self.timeout = float(info.get("timeout", 30))
        except (TypeError, ValueError):
            raise ConfigError("The postgres backend's dbInfo keys 'poolSize' and 'timeout' must be numbers.") from None
        self._pool: ConnectionPool[Any] | None = None
        self._apool: AsyncConnectionPool[Any] | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._aopening: asyncio.Task[AsyncConnectionPool[Any]] | None = None
        self._aguard: asyncio.Task[None] | None = None
        self._closed = False
        self._lock = threading.Lock()
        # Connections borrowed from the pool and idle again, kept out of it (see _getconn).
        self._idle: list[psycopg.Connection[Any]] = []
        self._waiters = 0  # threads inside pool.getconn(): returns go to the pool meanwhile
        self._idle_lock = threading.Lock()

    @staticmethod
    def _params(info: dict[str, Any]) -> dict[str, Any]:
        dsn = info.get("dsn") or info.get("uri")
        if dsn:
            if not isinstance(dsn, str):
                raise ConfigError("The postgres backend's dbInfo key 'dsn' must be a string.")
            try:
                return dict(conninfo_to_dict(dsn))
            except psycopg.Error:
                raise ConfigError(f"The postgres backend's dbInfo 'dsn' is not a valid connection string: "
                                  f"{redact_url(dsn)}.") from None
        for key in ("host", "database"):
            if not info.get(key):
                raise ConfigError(f"The postgres backend needs dbInfo key '{key}' (or 'dsn').")
        host = str(info["host"])
        params: dict[str, Any] = {"host": host, "dbname": info["database"]}
        if ":" in host and not host.startswith("/") and host.count(":") == 1:
            params["host"], params["port"] = host.split(":")
        if info.get("port"):
            params["port"] = info["port"]
        if info.get("user"):
            params["user"] = info["user"]
        password = info.get("pass", info.get("password"))
        if password:
            params["password"] = password
        return params

    # -- errors ------------------------------------------------------------------------
    def _safe(self, text: str) -> str:
        return mask_secrets(text, [self.password])

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        reason = self._safe(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return BackendUnavailable(f"Cannot reach PostgreSQL at {self.label}: {reason}.")

    def _rolled_back(self, exc: BaseException) -> ODMError:
        """A serialization failure or a deadlock (an OperationalError, yet the server is fine): retry the transaction."""
        reason = self._safe(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return ConcurrentModification(f"PostgreSQL cancelled the transaction: a concurrent transaction changed the same "
                                      f"rows ({reason}); nothing of it was written. Run the transaction again.")

    def translate(self, exc: BaseException) -> ODMError:
        """A driver error as the public error (UniqueViolation is left to the repository)."""
        if isinstance(exc, psycopg.errors.TransactionRollback):
            return self._rolled_back(exc)
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, PoolClosed)):
            return self._unavailable(exc)
        message = self._safe(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        if isinstance(exc, psycopg.errors.UndefinedTable):
            return QueryError(f"{message}: call registry.sync() to create the tables first.")
        if isinstance(exc, psycopg.DataError):
            return QueryError(f"PostgreSQL refused a value: {message}. A stored value may not have the type "
                              "its field declares, or a string holds a NUL character (jsonb cannot store it).")
        return QueryError(f"PostgreSQL refused the query: {message}.")

    # -- connections ------------------------------------------------------------------------
    @property
    def pool(self) -> ConnectionPool[Any]:
        current = self._pool
        if current is not None:
            return current
        with self._lock:
            if self._closed:
                raise BackendUnavailable(f"The PostgreSQL backend for {self.label} has been closed.")
            pool = self._pool
            if pool is None:
                # One direct connection first: a refused, unknown or unauthorised server is
                # reported at once with its reason, instead of a pool timeout later.
                try:
                    psycopg.connect(self.conninfo, autocommit=True).close()
                except psycopg.Error as exc:
                    raise self._unavailable(exc) from exc
                pool = ConnectionPool(
                    self.conninfo, min_size=1, max_size=max(1, self.pool_size), open=False, timeout=self.timeout,
                    kwargs={"autocommit": True, "cursor_factory": _Cursor},
                    name=f"odm-{self.label}")
                pool.open(wait=False)
                self._pool = pool
            return pool

    def _getconn(self, pool: ConnectionPool[Any]) -> psycopg.Connection[Any]:
        """A connection of ``pool``: the last one returned, if idle here, else the pool's.

        Why (issue 11): psycopg_pool's ``getconn`` and ``putconn`` (its lock, logging, statistics,
        reset and expiry checks) were a tenth of the client's CPU per ``get``. A connection returned
        healthy (idle, not expired) while no thread waits in ``pool.getconn`` is kept in a list of
        our own instead (:meth:`_putconn`); the next borrow takes it back under one lock. To the
        pool it is still lent out, so the number of connections stays within ``max_size``; a thread
        that finds the list empty counts itself in ``_waiters`` (in the same critical section)
        before it may block in ``pool.getconn``, and while it is there every return goes to the
        pool, which hands it over: no thread waits on the pool while a connection sits idle here.
        """
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
            self._waiters += 1
        try:
            return pool.getconn()
        finally:
            with self._idle_lock:
                self._waiters -= 1

    def _putconn(self, pool: ConnectionPool[Any], conn: psycopg.Connection[Any]) -> None:
        """Give a borrowed connection back: kept idle here when healthy, else to the pool (see _getconn).

        The pool gets the rest: a closed or broken connection (it replaces it), one not idle (it
        rolls back), one past its ``max_lifetime`` (it replaces it), and every one while a thread
        waits for it or after ``close()`` (it closes them).
        """
        if not conn.closed and conn.pgconn.transaction_status == _IDLE \
                and getattr(conn, "_expire_at", 0.0) > monotonic():
            with self._idle_lock:
                if not self._waiters and self._pool is pool:
                    self._idle.append(conn)
                    return
        pool.putconn(conn)

    def _live_connection(self, pool: ConnectionPool[Any]) -> psycopg.Connection[Any]:
        """A pooled connection that is not known to be dead; dead ones are handed back for replacement.

        No check query on every borrow (a round trip per operation): an idle connection has
        nothing to read, so one the server has ended (a restart, a failover,
        pg_terminate_backend: the server says so before closing it) shows data or EOF on its
        socket, and only such a one is checked with an empty query. A connection lost silently
        fails its statement with BackendUnavailable, and the pool replaces it. Not the pool's own
        ``check`` either: after each failed check it sleeps with exponential backoff (1 s, 2 s,
        4 s, ...), so once the server had dropped every session the next calls waited up to the
        pool timeout.
        """
        for _ in range(pool.max_size):
            conn = self._getconn(pool)
            try:
                if _quiet(conn):
                    return conn
                conn.execute("")
                return conn
            except psycopg.Error:
                _RETRIES.info("postgres: a pooled connection had been ended by the server; taking another")
                pool.putconn(conn)
            except BaseException:
                pool.putconn(conn)
                raise
        return self._getconn(pool)  # every idle one was dead: this one is new (or fails with the server's reason)

    @staticmethod
    def _end_quietly(conn: psycopg.Connection[Any]) -> None:
        """Roll back after a failure; a connection that cannot is closed (the pool replaces it).

        Closing also lets its server-side cursor close without a round trip that would fail.
        """
        try:
            conn.rollback()
        except psycopg.Error:
            conn.close()

    def insert_rows_op(self, table: str, cols: str, rows: list[list[Any]]) -> Op[None]:
        """``COPY ... FROM STDIN``: the server's bulk path (10,000 small rows: 85 ms against 134 ms
        for multi-row INSERTs of 1,000, ours included). Not ``executemany``: psycopg pipelines it,
        and a failed row's pipeline teardown logs to stderr. A clashing row fails the whole COPY, as
        ``insert_many`` is all or nothing here anyway; the repository then names the clashing keys.
        The async driver sends the same rows as multi-row INSERTs instead (see _AsyncSession)."""
        yield Copy(table, cols, rows)

    def plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        rows = self.run(_one(Execute("EXPLAIN (FORMAT TEXT) " + sql, params, "all")))
        return [row[0] for row in rows]

    def constraint_name(self, exc: BaseException) -> str | None:
        diag = getattr(exc, "diag", None)
        return getattr(diag, "constraint_name", None)

    # -- catalog --------------------------------------------------------------------------
    def table_exists_op(self, name: str) -> Op[bool]:
        # Any relation (table, view, sequence) of that name blocks CREATE TABLE; ::name truncates like the server.
        row = yield Execute("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = current_schema() AND c.relname = %s::name", [name], "one")
        return row is not None

    def index_names_op(self, table: str) -> Op[set[str]]:
        rows = yield Execute("SELECT indexname FROM pg_catalog.pg_indexes WHERE schemaname = current_schema() "
                             "AND tablename = %s::name", [table], "all")
        return {r[0] for r in rows}

    # -- sessions: one pooled connection per operation ----------------------------------------
    def session(self) -> _Session:
        if _REQUESTS.isEnabledFor(logs.DEBUG):
            return _LoggedSession(self)
        return _Session(self)

    def asession(self) -> _AsyncSession:
        if _REQUESTS.isEnabledFor(logs.DEBUG):
            return _LoggedAsyncSession(self)
        return _AsyncSession(self)

    async def apool(self) -> AsyncConnectionPool[Any]:
        """The async pool of the running event loop, opened on first use (inside that loop)."""
        loop = asyncio.get_running_loop()
        pool = self._apool
        if pool is not None and self._aloop is loop:
            return pool
        opening = self._aopening
        if opening is None or opening.get_loop() is not loop:
            opening = self._aopening = loop.create_task(self._open_apool(loop))
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done() and self._aopening is opening:
                self._aopening = None  # opened (or failed: the next call tries again)

    async def _open_apool(self, loop: asyncio.AbstractEventLoop) -> AsyncConnectionPool[Any]:
        if self._closed:
            raise BackendUnavailable(f"The PostgreSQL backend for {self.label} has been closed.")
        # One direct connection first, as for the sync pool: a refused, unknown or unauthorised
        # server is reported at once with its reason, instead of a pool timeout later.
        try:
            conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        await conn.close()
        if self._closed:
            raise BackendUnavailable(f"The PostgreSQL backend for {self.label} has been closed.")
        self._drop_apool()  # a pool of an event loop that has ended (another asyncio.run)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.conninfo, min_size=1, max_size=max(1, self.pool_size), open=False, timeout=self.timeout,
            kwargs={"autocommit": True, "cursor_factory": _AsyncCursor}, name=f"odm-async-{self.label}")
        await pool.open(wait=False)
        self._apool, self._aloop = pool, loop
        self._aguard = loop.create_task(self._guard(pool, loop.create_future()), name=f"odm-async-{self.label}-guard")
        return pool

    async def _guard(self, pool: AsyncConnectionPool[Any], forever: asyncio.Future[None]) -> None:
        """Closes the async pool when its event loop ends without aclose().

        ``asyncio.run`` cancels every task when its coroutine returns. psycopg_pool's workers
        survive a cancellation that arrives while they open a connection, and the loop would
        then wait for them forever; closing the pool stops them.
        """
        try:
            await forever
        finally:
            if self._apool is pool:
                self._apool = self._aloop = None
            await pool.close()

    def _drop_apool(self) -> None:
        """Let go of the async pool from outside its event loop (its loop ended, or close() is sync)."""
        pool, loop, guard = self._apool, self._aloop, self._aguard
        self._apool = self._aloop = self._aguard = None
        if pool is None or loop is None:
            return
        if not loop.is_closed():
            if loop.is_running():
                if _running_loop() is loop and guard is not None:
                    guard.cancel()  # close() called inside the loop: the guard closes the pool soon
                    return
            else:
                loop.run_until_complete(pool.close())
                return
        # The loop is gone with the pool's tasks: close its idle connections directly.
        idle = list(pool._pool)
        pool._pool.clear()
        pool._closed = True
        for conn in idle:
            conn.pgconn.finish()

    async def aclose(self) -> None:
        pool, loop, guard = self._apool, self._aloop, self._aguard
        if pool is not None and loop is asyncio.get_running_loop():
            self._apool = self._aloop = self._aguard = None
            if guard is not None:
                guard.cancel()  # it closes the pool
                with contextlib.suppress(asyncio.CancelledError):
                    await guard
            await pool.close()
        await asyncio.to_thread(self.close)

    @staticmethod
    async def _alive_aconnection(pool: AsyncConnectionPool[Any]) -> psycopg.AsyncConnection[Any]:
        """As _live_connection, on the async pool."""
        for _ in range(pool.max_size):
            conn = await pool.getconn()
            try:
                if _quiet(conn):
                    return conn
                await conn.execute("")
                return conn
            except psycopg.Error:
                _RETRIES.info("postgres: a pooled connection had been ended by the server; taking another")
                await pool.putconn(conn)
            except BaseException:
                await pool.putconn(conn)
                raise
        return await pool.getconn()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        with self._idle_lock:  # after self._pool is None, nothing more is kept idle here
            idle, self._idle = self._idle, []
        if self._apool is not None:
            self._drop_apool()
        if pool is not None:
            for conn in idle:
                pool.putconn(conn)
            pool.close()

    def __repr__(self) -> str:
        return f"<PostgresBackend {self.label}>"


#: Rows per multi-row INSERT of the async insert_many (4 parameters a row; PostgreSQL allows 65535).
ASYNC_INSERT_ROWS = 1000
_IDLE = psycopg.pq.TransactionStatus.IDLE
_POLL = getattr(select, "poll", None)  # not on Windows: select there


def _one(request: Any) -> Op[Any]:
    return (yield request)


def _quiet(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection has nothing to read (a system call, no round trip).

    The server writes to an idle session only to end it (a FATAL message, then EOF).
    """
    if conn.closed or conn.pgconn.transaction_status != _IDLE:
        return False
    try:
        if _POLL is None:
            readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
            return not readable
        # A poll object per connection (its socket is fixed for its life): half the cost of select.
        # Any event (data, hang-up, error) means "not quiet".
        poller = conn.__dict__.get("_odm_poll")
        if poller is None:
            poller = conn.__dict__["_odm_poll"] = _POLL()
            poller.register(conn.pgconn.socket, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError, psycopg.Error):
        return False


def _retries(pool: ConnectionPool[Any] | AsyncConnectionPool[Any] | None) -> int:
    """How often a read meeting a connection the server had ended is run again (see _Session.send)."""
    return pool.max_size if pool is not None else 1


def _log_retry(request: Any, tried: int, pool: ConnectionPool[Any] | AsyncConnectionPool[Any] | None) -> None:
    """A WARNING on ``odm.retries.postgres``: a read is run again on another connection, at once."""
    if _RETRIES.isEnabledFor(logs.WARNING):
        logs.retry(_RETRIES, "postgres", logs.sql_request_op(request), logs.sql_table(request.sql, True),
                   "the server ended the connection (a restart, a failover, pg_terminate_backend)", tried + 1,
                   _retries(pool) + 1, 0.0)


def _is_read(request: Any) -> bool:
    """Whether a request only reads (so running it again changes nothing)."""
    kind = type(request)
    return kind is Stream or (kind is Execute and request.sql.startswith("SELECT "))


def _probe(sql: str, params: Sequence[Any], size: int) -> tuple[str, list[Any]]:
    """The query limited to ``size + 1`` rows: whether its result fits in one batch, in one round trip."""
    if sql.endswith(" LIMIT %s OFFSET %s"):
        limit = params[-2]
        if limit is not None and limit <= size:
            return sql, list(params)  # fits already
        return sql, [*params[:-2], size + 1, params[-1]]
    return sql + " LIMIT %s", [*params, size + 1]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_DRIVER_ERRORS = (psycopg.Error, PoolTimeout, PoolClosed)


class _Session(Session):
    """One operation on one pooled connection, borrowed at its first request.

    Statements run on their own (autocommit) until ``Begin`` opens the write transaction; a
    stream that does not fit in one batch reads through a server-side (named) cursor inside a
    transaction, ``batch_size`` rows per round trip.
    """

    __slots__ = ("backend", "conn", "cur", "pool", "rows", "stream", "tx")

    def __init__(self, backend: PostgresBackend) -> None:
        self.backend = backend
        self.pool: ConnectionPool[Any] | None = None
        self.conn: psycopg.Connection[Any] | None = None
        self.cur: Any = None
        self.tx = False
        self.rows: list[Any] | None = None  # a small stream's rows, fetched at once
        self.stream: psycopg.ServerCursor[Any] | None = None

    def send(self, request: Any) -> Any:
        first = self.conn is None
        # A pooled connection the server had just ended (its notice not yet arrived when it was
        # borrowed): a read is safe to run again, on another connection; every pooled one may have
        # been ended at once (a server restart), so as many times as the pool holds connections.
        tried = 0
        while True:
            try:
                return self._send(request)
            except BackendUnavailable:
                tried += 1
                if not (first and self.conn is not None and self.conn.closed and _is_read(request)) \
                        or tried > _retries(self.pool):
                    raise
                _log_retry(request, tried, self.pool)
            self._release()

    def _send(self, request: Any) -> Any:
        try:
            if self.conn is None:
                pool = self.pool = self.backend.pool
                self.conn = self.backend._live_connection(pool)
                self.cur = self.conn.cursor()
            kind = type(request)
            if kind is Execute:
                cur = self.cur
                cur.execute(request.sql, request.params)
                return answer(cur, request.fetch)
            if kind is Begin:
                if not self.tx:
                    self.cur.execute("BEGIN")
                    self.tx = True
                return None
            if kind is Fetch:
                if self.rows is not None:
                    rows, self.rows = self.rows, None
                    return rows
                return [] if self.stream is None else self.stream.fetchmany(self.backend.batch_size)
            if kind is Stream:
                self._close_stream()
                sql, params = request.sql, request.params
                size = self.backend.batch_size
                # First with a plain statement, limited to a batch and one row: a result that fits
                # in one batch (first(), a page, a small query) takes one round trip. A larger one
                # is read again through a server-side cursor, a batch per round trip.
                self.cur.execute(*_probe(sql, params, size))
                rows = self.cur.fetchall()
                if len(rows) <= size:
                    self.rows = rows
                    return None
                if not self.tx:
                    self.cur.execute("BEGIN")
                    self.tx = True
                self.stream = self.conn.cursor(name=f"odm_{uuid.uuid4().hex[:16]}")
                self.stream.execute(sql, params)
                return None
            if kind is ExecuteMany:
                if not self.tx:
                    self.cur.execute("BEGIN")
                    self.tx = True
                self.cur.executemany(request.sql, request.rows)
                return None
            if kind is Copy:
                if not self.tx:
                    self.cur.execute("BEGIN")
                    self.tx = True
                with self.cur.copy(f"COPY {request.table} ({request.cols}) FROM STDIN") as copy:
                    for row in request.rows:
                        copy.write_row(row)
                return None
            if kind is Rollback:
                self._close_stream()
                if self.tx:
                    self.tx = False
                    self.conn.rollback()
                return None
            raise TypeError(f"The postgres backend cannot carry out {request!r}.")
        except self.backend.integrity_errors:
            self._failed()
            raise  # the repository maps it to DuplicateKey with the key it was writing
        except _DRIVER_ERRORS as exc:
            self._failed()
            raise self.backend.translate(exc) from exc

    def _failed(self) -> None:
        """A statement failed: its transaction is over (PostgreSQL ignores what follows until a rollback).

        Not so in a transaction() block: it rolls back to the operation's savepoint itself.
        """
        if self.tx and self.conn is not None and not self.held:
            self.tx = False
            self.backend._end_quietly(self.conn)
            try:
                self._close_stream()
            except _DRIVER_ERRORS:
                pass

    def _close_stream(self) -> None:
        self.rows = None
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.close()  # no round trip once its transaction has ended

    def finish(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            if self.tx:
                conn.commit()
            self._close_stream()
        except _DRIVER_ERRORS as exc:
            self.backend._end_quietly(conn)
            raise self.backend.translate(exc) from exc
        finally:
            self._release()

    def abort(self, exc: BaseException) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            # Rolls back (a lost connection is closed: the pool replaces it, and its server-side
            # cursor then closes without a round trip that would fail).
            self.backend._end_quietly(conn)
            self._close_stream()
        except _DRIVER_ERRORS:
            pass  # the operation's own error (or the reader's leaving) is what counts
        finally:
            self._release()

    def _release(self) -> None:
        try:
            self._close_stream()  # still open when ending the transaction failed
        except _DRIVER_ERRORS:
            pass
        conn, self.conn = self.conn, None
        if self.cur is not None:
            self.cur.close()
        if conn is not None and self.pool is not None:
            self.backend._putconn(self.pool, conn)


class _AsyncSession(AsyncSession):
    """_Session on the async pool (psycopg's AsyncConnection)."""

    __slots__ = ("backend", "conn", "cur", "pool", "rows", "stream", "tx")

    def __init__(self, backend: PostgresBackend) -> None:
        self.backend = backend
        self.pool: AsyncConnectionPool[Any] | None = None
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.cur: Any = None
        self.tx = False
        self.rows: list[Any] | None = None
        self.stream: psycopg.AsyncServerCursor[Any] | None = None

    async def send(self, request: Any) -> Any:
        first = self.conn is None
        tried = 0
        while True:  # as _Session.send
            try:
                return await self._send(request)
            except BackendUnavailable:
                tried += 1
                if not (first and self.conn is not None and self.conn.closed and _is_read(request)) \
                        or tried > _retries(self.pool):
                    raise
                _log_retry(request, tried, self.pool)
            await self._release()

    async def _send(self, request: Any) -> Any:
        try:
            if self.conn is None:
                pool = self.pool = await self.backend.apool()
                self.conn = await self.backend._alive_aconnection(pool)
                self.cur = self.conn.cursor()
            kind = type(request)
            if kind is Execute:
                cur = self.cur
                await cur.execute(request.sql, request.params)
                return await _aanswer(cur, request.fetch)
            if kind is Begin:
                if not self.tx:
                    await self.cur.execute("BEGIN")
                    self.tx = True
                return None
            if kind is Fetch:
                if self.rows is not None:
                    rows, self.rows = self.rows, None
                    return rows
                return [] if self.stream is None else await self.stream.fetchmany(self.backend.batch_size)
            if kind is Stream:
                await self._close_stream()
                sql, params = request.sql, request.params
                size = self.backend.batch_size
                await self.cur.execute(*_probe(sql, params, size))
                rows = await self.cur.fetchall()
                if len(rows) <= size:
                    self.rows = rows
                    return None
                if not self.tx:
                    await self.cur.execute("BEGIN")
                    self.tx = True
                self.stream = self.conn.cursor(name=f"odm_{uuid.uuid4().hex[:16]}")
                await self.stream.execute(sql, params)
                return None
            if kind is ExecuteMany:
                if not self.tx:
                    await self.cur.execute("BEGIN")
                    self.tx = True
                await self.cur.executemany(request.sql, request.rows)
                return None
            if kind is Copy:
                if not self.tx:
                    await self.cur.execute("BEGIN")
                    self.tx = True
                # Not COPY here: a task cancelled in the middle of a COPY leaves the connection in
                # it, and the pool must then discard it; between two INSERTs a cancel rolls back cleanly.
                marks = "(" + ", ".join(["%s"] * len(request.rows[0])) + ")"
                for chunk in chunks(request.rows, ASYNC_INSERT_ROWS):
                    values = ", ".join([marks] * len(chunk))
                    await self.cur.execute(f"INSERT INTO {request.table} ({request.cols}) VALUES {values}",
                                           [v for row in chunk for v in row])
                return None
            if kind is Rollback:
                await self._close_stream()
                if self.tx:
                    self.tx = False
                    await self.conn.rollback()
                return None
            raise TypeError(f"The postgres backend cannot carry out {request!r}.")
        except self.backend.integrity_errors:
            await self._failed()
            raise
        except _DRIVER_ERRORS as exc:
            await self._failed()
            raise self.backend.translate(exc) from exc

    async def _failed(self) -> None:
        if self.tx and self.conn is not None and not self.held:
            self.tx = False
            await _aend_quietly(self.conn)
            try:
                await self._close_stream()
            except _DRIVER_ERRORS:
                pass

    async def _close_stream(self) -> None:
        self.rows = None
        stream, self.stream = self.stream, None
        if stream is not None:
            await stream.close()

    async def finish(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            if self.tx:
                await conn.commit()
            await self._close_stream()
        except _DRIVER_ERRORS as exc:
            await _aend_quietly(conn)
            raise self.backend.translate(exc) from exc
        finally:
            await self._release()

    async def abort(self, exc: BaseException) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            await _aend_quietly(conn)
            await self._close_stream()
        except _DRIVER_ERRORS:
            pass
        finally:
            await self._release()

    async def _release(self) -> None:
        try:
            await self._close_stream()
        except _DRIVER_ERRORS:
            pass
        conn, self.conn = self.conn, None
        if self.cur is not None:
            await self.cur.close()
        if conn is not None and self.pool is not None:
            await self.pool.putconn(conn)


async def _aanswer(cur: Any, fetch: str | None) -> Any:
    if fetch is None:
        return None
    if fetch == "one":
        return await cur.fetchone()
    if fetch == "all":
        return await cur.fetchall()
    return cur.rowcount


async def _aend_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    """Roll back after a failure; a connection that cannot is closed (the pool replaces it)."""
    try:
        await conn.rollback()
    except psycopg.Error:
        await conn.close()


class _LoggedSession(LoggedSession, _Session):
    """The session while DEBUG is on: each request logged (odm.logs)."""

    logger = _REQUESTS
    backend_name = "postgres"
    percents = True  # psycopg's placeholders: PostgresDialect doubles % in names


class _LoggedAsyncSession(LoggedAsyncSession, _AsyncSession):
    logger = _REQUESTS
    backend_name = "postgres"
    percents = True
