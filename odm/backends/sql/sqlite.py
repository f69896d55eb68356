"""SQLite: the embedded default, on the standard library's sqlite3 and JSON1."""

from __future__ import annotations

import asyncio
import contextvars
import math
import os
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from time import perf_counter
from typing import Any, ClassVar, TypeVar
from urllib.request import pathname2url

from ... import logs
from ...errors import BackendUnavailable, ConfigError, ODMError, QueryError
from ...expressions.nodes import render_like
from ...fields import Field
from ...ops import Emit, Op, collect
from ...transaction import TransactionState, joined
from ...updates import UpdateAction
from ..base import chunks
from ..names import TableNameRule
from .backend import LoggedSession, Session, SQLBackend, SQLFeatures, SQLTransaction
from .dialect import Dialect
from .jsonfast import dumps, loads_exact
from .requests import Begin, Execute, ExecuteMany, Fetch, Rollback, Stream, answer

T = TypeVar("T")

_REQUESTS = logs.requests_logger("sqlite")
DEBUG = logs.DEBUG
_CONTROL = re.compile(r"[\x00-\x1f]")

#: The SQL function (registered on every connection) mapping a number to its order key.
DECIMAL_KEY_FUNCTION = "odm_dec"
#: The SQL function (registered on every connection) applying one update action: see apply_action.
UPDATE_FUNCTION = "odm_update"
#: ``doc -> path`` (SQLite 3.38+) yields a number's JSON text exactly as stored; older versions
#: get the same text from json_extract with the path twice (a one-element-per-path JSON array).
_ARROW = sqlite3.sqlite_version_info >= (3, 38)
_EXP_BIAS = 50_000
_EXP_MAX = 99_999
_NINES = str.maketrans("0123456789", "9876543210")


def decimal_key(value: Decimal) -> str:
    """Text whose binary order is the number's order, exact for any number of digits.

    SQLite reads JSON numbers as doubles (15-17 digits), so Decimal comparisons, ORDER BY and
    indexes run on this key instead: a sign class ("1" negative, "2" zero, "3" positive), the
    biased decimal exponent in 5 digits (complemented when negative) and the significant digits
    without trailing zeros (nines' complement plus ":" when negative, so -1.2 > -1.23).
    Exponents beyond ±49999 (no backend stores them) order as the widest.
    """
    mantissa, _, exp = format(value, "e").partition("e")  # exact: "-1.2345e+19", "0e-3"
    negative = mantissa[0] == "-"
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0")
    if not digits:
        return "2"
    exponent = min(max(int(exp) + _EXP_BIAS, 0), _EXP_MAX)
    if not negative:
        return f"3{exponent:05d}{digits}"
    return f"1{_EXP_MAX - exponent:05d}{digits.translate(_NINES)}:"


def text_key(text: str) -> str | None:
    """``decimal_key`` of a number's JSON text; None for any other JSON (a string, array, object, literal)."""
    if text[:1] == "[":  # an array; or, before SQLite 3.38, json_extract(doc, path, path): "[value,value]"
        comma = text.find(",")
        if _ARROW or comma < 0:
            return None
        text = text[1:comma]
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None  # '"1"' (a JSON string), 'true', 'null', '{...}'
    return decimal_key(value) if value.is_finite() else None


def number_key(value: Any) -> str | None:
    """The order key of a number given as a Decimal, int, float or numeric text; None for anything else.

    Registered as the deterministic SQL function ``odm_dec``: its argument is a number's JSON text
    (strings arrive quoted and arrays bracketed, so they are not numbers) or a key column's value.
    """
    if isinstance(value, str):
        return text_key(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        return None
    return decimal_key(value)


def _widened(bound: float, direction: int) -> float:
    """A double bound moved outwards by about 2**-40 of itself (thousands of ulps; infinities stay)."""
    if math.isinf(bound):
        return bound
    return bound + direction * (abs(bound) * 2.0 ** -40 + 5e-324)


def _is_wal(path: str) -> bool:
    """Whether the file is an SQLite database in WAL mode (header bytes 18 and 19, the format versions, are 2)."""
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02"


def _register(conn: sqlite3.Connection) -> None:
    """Functions the ODM's SQL and expression indexes use: every connection needs them."""
    conn.create_function(DECIMAL_KEY_FUNCTION, 1, number_key, deterministic=True)
    conn.create_function(UPDATE_FUNCTION, 4, apply_action, deterministic=True)


def apply_action(current: str, op: str, arg: str, kind: str) -> str:
    """``odm_update``: the new JSON value at a path after one element action or increment.

    Runs inside the UPDATE statement (so atomically with it) on the stored JSON text, read with
    exact numbers: SQLite's own JSON functions would turn numbers into doubles on the way
    through, and a Set must stay sorted and free of duplicates exactly as the codec writes it.
    ``current`` is ``json_extract(doc, path, path)`` (the value twice; null when missing).
    """
    value = loads_exact(current)[0]
    given = loads_exact(arg)
    if op == "inc":
        if kind == "decimal":
            return dumps(exact_sum(Decimal(str(value or 0)), Decimal(str(given))))
        if kind == "float":  # IEEE doubles, as Python adds them (SQLite's JSON text of a REAL keeps 15 digits)
            return dumps(float(value or 0) + float(given))
        return dumps(int(value or 0) + int(given))
    items = value if isinstance(value, list) else []
    if op == "append":
        return dumps(items + given)
    if op == "add":
        return dumps(sorted({*items, *given}))  # a Set holds strings, numbers or bytes (as hex)
    return dumps([x for x in items if x not in given])  # remove, discard


#: The most digits an exact Decimal sum may take (PostgreSQL's numeric holds about as many).
MAX_SUM_DIGITS = 150_000


def exact_sum(a: Decimal, b: Decimal) -> Decimal:
    """``a + b`` with every digit (the default context rounds to 28)."""
    ends = [d.adjusted() for d in (a, b) if d] + [d.as_tuple().exponent for d in (a, b) if d.is_finite()]
    span = max(ends) - min(ends) + 2 if ends else 1  # type: ignore[operator]
    return Context(prec=min(max(28, span), MAX_SUM_DIGITS), Emax=MAX_EMAX, Emin=MIN_EMIN).add(a, b)


def _glob_escape(text: str) -> str:
    # GLOB is case-sensitive (LIKE is not, in SQLite); [x] makes x literal.
    return re.sub(r"([*?\[])", r"[\1]", text)


def like_to_glob(pattern: str) -> str:
    return render_like(pattern, "*", "?", _glob_escape)


class SQLiteDialect(Dialect):
    name = "sqlite"
    ph = "?"

    def json_path(self, parts: Sequence[str]) -> str:
        for part in parts:
            # Inside a quoted label, '"' ends the label and SQLite versions disagree on '\\'
            # escapes (3.40 compares raw text, 3.45 decodes): odm.attributes refuses these names.
            if '"' in part or "\\" in part or _CONTROL.search(part):
                raise QueryError(f"SQLite cannot address an attribute named {part!r} exactly "
                                 "(it contains '\"', '\\' or a control character).")
        return self.literal("$" + "".join(f'."{p}"' for p in parts))

    def json_operand(self, parts: Sequence[str], field: Field | None) -> str:
        if getattr(field, "kind", None) == "decimal":
            return self.exact_number_operand(parts)
        return f'json_extract("doc", {self.json_path(parts)})'

    def exact_number_operand(self, parts: Sequence[str]) -> str:
        # The number's JSON text as stored (a double would keep only 15-17 digits), as its order key.
        path = self.json_path(parts)
        raw = f'("doc" -> {path})' if _ARROW else f'json_extract("doc", {path}, {path})'
        return f"{DECIMAL_KEY_FUNCTION}({raw})"

    def exact_number_param(self, value: Any) -> Any:
        return number_key(value)

    def project_sql(self, only: Sequence[str]) -> str:
        if not _ARROW:
            return '"doc"'  # before 3.38 no '->' (JSON as is, exact numbers): whole documents, trimmed by the decode
        # At most 127 arguments a function: 60 attributes an object, merged by json_patch (which
        # drops the nulls of missing attributes: they read as None all the same).
        objects = ["json_object(" + ", ".join(f'{self.literal(n)}, "doc" -> {self.json_path([n])}' for n in chunk) + ")"
                   for chunk in chunks(list(only), 60)]
        out = objects[0]
        for more in objects[1:]:
            out = f"json_patch({out}, {more})"
        return out

    def json_text(self, parts: Sequence[str]) -> tuple[str, bool]:
        path = self.json_path(parts)
        return (f'("doc" -> {path})', False) if _ARROW else (f'json_extract("doc", {path}, {path})', True)

    def exact_column_operand(self, column: str) -> str:
        return f"{DECIMAL_KEY_FUNCTION}({column})"

    def json_param(self, value: Any, field: Field | None) -> Any:
        # json_extract yields SQL values: JSON numbers come back as INTEGER/REAL,
        # objects and arrays as minified JSON text (compared as text).
        if getattr(field, "kind", None) == "decimal":
            return number_key(value)
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, (dict, list)):
            from .repository import dumps

            return dumps(value)
        return value

    def column_param(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            # Key columns: a double where that is exact (numeric order), else exact text (no collisions).
            # The context keeps every digit (the default one rounds to 28 and made keys collide).
            as_float = float(value)
            if Decimal(repr(as_float)) == value:
                return as_float
            return str(value.normalize(Context(prec=max(28, len(value.as_tuple().digits)), Emax=MAX_EMAX, Emin=MIN_EMIN)))
        return value

    def type_guard(self, parts: Sequence[str], value: Any) -> str | None:
        # json_extract maps true to 1 and arrays/objects to JSON text: compare the JSON type too.
        if isinstance(value, bool):
            types = "'true'" if value else "'false'"
        elif isinstance(value, (int, float, Decimal)):
            types = "'integer', 'real'"
        elif isinstance(value, str):
            types = "'text'"
        elif isinstance(value, dict):
            types = "'object'"
        elif isinstance(value, list):
            types = "'array'"
        else:
            return None
        return f'json_type("doc", {self.json_path(parts)}) IN ({types})'


    def json_rank(self, parts: Sequence[str]) -> tuple[str, str]:
        # json_extract gives true/false as 1/0 and objects/arrays as text: rank by json_type first.
        path = self.json_path(parts)
        kind = f'json_type("doc", {path})'
        rank = (f"(CASE {kind} WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 WHEN 'object' THEN 3 "
                f"WHEN 'array' THEN 4 WHEN 'true' THEN 5 WHEN 'false' THEN 5 ELSE 0 END)")
        value = f"(CASE WHEN {kind} IN ('object', 'array') THEN NULL ELSE json_extract(\"doc\", {path}) END)"
        return rank, value

    def prefix_sql(self, operand: str, ph: str) -> str:
        return f"{operand} GLOB {ph}"

    def prefix_param(self, prefix: str) -> Any:
        return _glob_escape(prefix) + "*"

    def like_sql(self, operand: str, ph: str) -> str:
        return f"(typeof({operand}) = 'text' AND {operand} GLOB {ph})"

    def like_param(self, pattern: str) -> Any:
        return like_to_glob(pattern)

    def contains_list_sql(self, parts: Sequence[str], ph: str) -> str:
        path = self.json_path(parts)
        return (f"(json_type(\"doc\", {path}) = 'array' AND EXISTS "
                f"(SELECT 1 FROM json_each(\"doc\", {path}) WHERE json_each.value = {ph}))")

    def number_prefilter(self, parts: Sequence[str], field: Field | None, low: Any, high: Any) -> tuple[str, list[Any]] | None:
        # Rounding to a double is monotonic and json_extract is within an ulp or so of the stored
        # number (exact for integers): bounds widened far beyond that never drop a match.
        if getattr(field, "kind", None) != "decimal":
            return None
        operand = f'json_extract("doc", {self.json_path(parts)})'
        terms: list[str] = []
        params: list[Any] = []
        if low is not None:
            terms.append(f"{operand} >= {self.ph}")
            params.append(_widened(float(low), -1))
        if high is not None:
            terms.append(f"{operand} <= {self.ph}")
            params.append(_widened(float(high), 1))
        return (" AND ".join(terms), params) if terms else None

    def exact_contains_sql(self, parts: Sequence[str], ph: str) -> str | None:
        path = self.json_path(parts)
        raw = '("doc" -> json_each.fullkey)' if _ARROW else 'json_extract("doc", json_each.fullkey, json_each.fullkey)'
        return (f"(json_type(\"doc\", {path}) = 'array' AND EXISTS (SELECT 1 FROM json_each(\"doc\", {path}) "
                f"WHERE json_each.type IN ('integer', 'real') AND {DECIMAL_KEY_FUNCTION}({raw}) = {ph}))")

    def contains_list_param(self, value: Any) -> Any:
        return self.json_param(value, None)

    def contains_str_sql(self, operand: str, ph: str) -> str:
        return f"(typeof({operand}) = 'text' AND instr({operand}, {ph}) > 0)"

    def update_doc_sql(self, sets: dict[str, str], incs: dict[str, Any], unsets: Sequence[str],
                       params: list[Any], actions: Sequence[UpdateAction] = ()) -> str:
        doc = '"doc"'
        if unsets:
            doc = f"json_remove({doc}, {', '.join(self.json_path([u]) for u in unsets)})"
        pieces = [f"{self.json_path([name])}, json(?)" for name in sets]
        params += self.set_params(sets)
        for name, amount in incs.items():
            path = self.json_path([name])
            if isinstance(amount, int):  # exact in SQL (64-bit; the range guard keeps it so)
                pieces.append(f"{path}, coalesce(json_extract(\"doc\", {path}), 0) + ?")
                params.append(amount)
            else:  # a Float or Decimal: odm_update, since SQL would print a REAL with 15 digits
                kind = "decimal" if isinstance(amount, Decimal) else "float"
                pieces.append(f'{path}, json({UPDATE_FUNCTION}(json_extract("doc", {path}, {path}), \'inc\', ?, \'{kind}\'))')
                params.append(dumps(amount))
        if pieces:
            doc = f"json_set({doc}, {', '.join(pieces)})"
        for action in actions:
            doc = self.action_sql(doc, action, params)
        return doc

    def action_sql(self, doc: str, action: UpdateAction, params: list[Any]) -> str:
        """``doc`` after one action: JSON1 for set and unset, odm_update for the rest (exact numbers)."""
        path = self.json_path(action.path)
        if action.op == "unset":
            return f"json_remove({doc}, {path})"
        if action.op == "set":
            params.append(dumps(action.value))
            return f"json_set({doc}, {path}, json(?))"
        kind = getattr(getattr(action.field, "inner", action.field), "kind", "")
        params += [action.op, dumps(action.value if action.op == "inc" else list(action.value)), kind]
        new = f'json({UPDATE_FUNCTION}(json_extract("doc", {path}, {path}), ?, ?, ?))'
        # A missing list or set stays missing when nothing is added to it.
        writer = "json_replace" if action.op in ("remove", "discard") else "json_set"
        return f"{writer}({doc}, {path}, {new})"


class SQLiteFeatures(SQLFeatures):
    pass


class SQLiteBackend(SQLBackend):
    """One connection per backend, serialised by a lock (sqlite3 allows one writer anyway)."""

    #: Worker threads for async operations: one (they take turns on one connection under the GIL).
    WORKERS: ClassVar[int] = 1
    #: Stream connections kept open between streams.
    IDLE_READERS: ClassVar[int] = 4

    name = "sqlite"
    dialect = SQLiteDialect()
    features = SQLiteFeatures
    integrity_errors = (sqlite3.IntegrityError,)
    info_keys = {"path": "text"}
    table_names = TableNameRule(
        "an SQLite table name holds no NUL character, does not start with 'sqlite_' (SQLite's own tables) "
        "and is not '_odm_schema' (the ODM's catalog)",
        reserved_prefixes=("sqlite_",), reserved=(SQLBackend.META_TABLE,))

    @classmethod
    def inspecting(cls, info: dict[str, Any]) -> SQLiteBackend:
        """Opened read-only: a missing file is not created, nor is the journal mode set."""
        return cls(info, read_only=True)

    def __init__(self, info: dict[str, Any], *, read_only: bool = False) -> None:
        """``read_only``: set no journal mode and open the file without creating it (``odm check`` and
        ``odm sync --dry-run`` must leave the file, even its journal mode, as it was): ``mode=ro``, or
        for a WAL file ``mode=rw`` (the caller only reads), which removes the -wal and -shm files on
        close as the last connection. A missing file is not created: ``missing_database`` then names it
        and the database is an empty one in memory.
        """
        super().__init__(info)
        path = info.get("path", ":memory:")
        if not isinstance(path, str) or not path:
            raise ConfigError("The sqlite backend's dbInfo key 'path' must be a file path or ':memory:'.")
        self.path = path
        self.read_only = read_only
        self.in_memory = path == ":memory:" or "mode=memory" in path
        # "file:..." paths are SQLite URIs (e.g. a named shared in-memory database).
        self._target, self._uri = path, path.startswith("file:")
        if read_only and not self.in_memory:
            if self._uri:
                self._target = (re.sub(r"mode=\w+", "mode=ro", path) if "mode=" in path
                                else path + ("&" if "?" in path else "?") + "mode=ro")
            elif not os.path.exists(path):
                self.missing_database, self.in_memory = path, True
                self._target = ":memory:"
            else:  # a WAL file read with mode=ro would leave -wal and -shm behind: mode=rw (never creates) removes them
                mode = "rw" if _is_wal(path) else "ro"
                self._target, self._uri = f"file:{pathname2url(os.path.abspath(path))}?mode={mode}", True
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._readers: list[sqlite3.Connection] = []  # idle stream connections, reused
        try:
            self._conn = sqlite3.connect(
                self._target, isolation_level=None, check_same_thread=False, timeout=30, uri=self._uri)
            _register(self._conn)
            if read_only:
                self._conn.execute("SELECT count(*) FROM sqlite_master")  # reads the header: "not a database" now
            else:
                self._conn.execute("PRAGMA journal_mode=MEMORY" if self.in_memory else "PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            if self._conn is not None:
                self._conn.close()  # opened but unusable (not a database): do not leak it
                self._conn = None
            raise BackendUnavailable(f"Cannot open the SQLite database at {path!r}: {exc}.") from exc

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BackendUnavailable(f"The SQLite database {self.path!r} has been closed.")
        return self._conn

    # -- running operations: one session per operation, async ones on worker threads ------------
    def execute_one(self, request: Execute) -> Any:
        """One statement on its own (autocommit), under the lock for just that statement.

        An IntegrityError is left to the repository (it knows the key); other errors are translated.
        Logged here at DEBUG (the fast paths call this directly): with DEBUG off, the one level check.
        """
        start = perf_counter() if _REQUESTS.isEnabledFor(DEBUG) else None
        try:
            with self._lock:
                cur = self.conn.execute(request.sql, request.params)
                try:
                    result = answer(cur, request.fetch)
                finally:
                    cur.close()
        except sqlite3.Error as exc:
            if start is not None:
                logs.sql_request(_REQUESTS, "sqlite", request, None, start, exc)
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            raise self.translate(exc) from exc
        if start is not None:
            logs.sql_request(_REQUESTS, "sqlite", request, result, start)
        return result

    def session(self) -> _SQLiteSession:
        if _REQUESTS.isEnabledFor(DEBUG):
            return _LoggedSQLiteSession(self)
        return _SQLiteSession(self)

    def _executor(self) -> ThreadPoolExecutor:
        """The worker threads async operations run on (SQLite has no network to wait on)."""
        executor = self._workers
        if executor is None:
            with self._lock:
                executor = self._workers
                if executor is None:
                    executor = self._workers = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="odm-sqlite")
        return executor

    async def arun(self, op: Op[T]) -> T:
        """The operation, run whole on a worker thread: the same connection and lock as sync calls.

        A cancelled caller stops waiting; an operation already running finishes (commits or rolls
        back) on its thread, so a write happens completely or not at all.
        """
        tx = joined(self, True)
        if tx is not None:
            return await tx.arun(op)
        job = self._executor().submit(contextvars.copy_context().run, self.run_sync, op)
        return await asyncio.wrap_future(job)

    def transaction_state(self, is_async: bool, snapshot: bool = False) -> TransactionState:
        return SQLiteTransaction(self, is_async, snapshot)

    async def aiterate(self, op: Op[Any]) -> AsyncIterator[Any]:  # type: ignore[override]
        """The emitted items, each batch read on a worker thread; closing ends the stream there too."""
        tx = joined(self, True)
        if tx is not None:
            for item in await tx.arun(collect(op)):
                yield item
            return
        batches = self._batches(op)
        executor = self._executor()
        job: Future[list[Any] | None] | None = None
        try:
            while True:
                job = executor.submit(next, batches, None)
                batch = await asyncio.wrap_future(job)
                job = None
                if batch is None:
                    return
                for item in batch:
                    yield item
        finally:
            if job is not None and not job.done():
                job.add_done_callback(lambda _job: _close_quietly(batches))  # when the worker lets go of it
            else:
                _close_quietly(batches)

    def _batches(self, op: Op[Any]) -> Iterator[list[Any]]:
        session = self.session()
        try:
            request = next(op)
            while True:
                if isinstance(request, Emit):
                    yield request.items
                    request = op.send(None)
                    continue
                try:
                    response = session.send(request)
                except BaseException as exc:
                    request = op.throw(exc)
                else:
                    request = op.send(response)
        except StopIteration:
            session.finish()
        except BaseException as exc:
            session.abort(exc)
            raise
        finally:
            op.close()

    def translate(self, exc: sqlite3.Error) -> ODMError:
        """A driver error as the public error: locked/unreadable files are BackendUnavailable."""
        if isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc):
            return QueryError(f"{exc}: call registry.sync() to create the tables first.")
        if isinstance(exc, (sqlite3.OperationalError, sqlite3.DatabaseError)):
            return BackendUnavailable(f"The SQLite database {self.path!r} failed: {exc}.")
        return ODMError(f"SQLite error on {self.path!r}: {exc}.")

    def reader(self) -> sqlite3.Connection:
        """A connection of its own for one stream: an idle one if any (opening one costs more than a query)."""
        try:
            return self._readers.pop()
        except IndexError:
            pass
        reader = sqlite3.connect(self._target, isolation_level=None, check_same_thread=False, timeout=30,
                                 uri=self._uri)
        _register(reader)
        return reader

    def release_reader(self, reader: sqlite3.Connection) -> None:
        """A stream's connection, done with (its statement closed): kept for the next stream."""
        if self._conn is None or reader.in_transaction or len(self._readers) >= self.IDLE_READERS:
            reader.close()
        else:
            self._readers.append(reader)

    def plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        with self._lock:
            return [row[3] for row in self.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

    def constraint_name(self, exc: BaseException) -> str | None:
        # "UNIQUE constraint failed: index 'users__ix_email_uniq'"
        match = re.search(r"index '([^']+)'", str(exc))
        return match.group(1) if match else None

    def table_exists_op(self, name: str) -> Op[bool]:
        row = yield Execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name], "one")
        return row is not None

    def index_names_op(self, table: str) -> Op[set[str]]:
        rows = yield Execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", [table], "all")
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            readers, self._readers = self._readers, []
            workers, self._workers = self._workers, None
        for reader in readers:
            reader.close()
        if workers is not None:
            workers.shutdown(wait=False)

    def __repr__(self) -> str:
        return f"<SQLiteBackend path={self.path!r}>"


class SQLiteTransaction(SQLTransaction):
    """A SQLite transaction; an async one runs on a thread of its own.

    The transaction holds the backend's lock (a reentrant lock, owned by a thread) from its first
    statement to its end, so an async transaction cannot share the worker threads other tasks'
    operations run on: its operations, COMMIT and ROLLBACK run on one thread kept for the block,
    with the sync session (the same connection as every other call).
    """

    def __init__(self, backend: SQLiteBackend, is_async: bool, snapshot: bool = False) -> None:
        super().__init__(backend, is_async, snapshot)
        self.thread: ThreadPoolExecutor | None = None

    async def _on_thread(self, call: Any, *args: Any) -> Any:
        if self.thread is None:
            self.thread = ThreadPoolExecutor(1, thread_name_prefix="odm-sqlite-tx")
        return await asyncio.wrap_future(self.thread.submit(call, *args))

    async def arun(self, op: Op[T]) -> T:
        return await self._on_thread(self.run, op)  # type: ignore[no-any-return]

    async def asavepoint(self) -> str:
        return await self._on_thread(self.savepoint)  # type: ignore[no-any-return]

    async def arelease(self, name: str) -> None:
        await self._on_thread(self.release, name)

    async def arollback_to(self, name: str) -> None:
        await self._on_thread(self.rollback_to, name)

    async def _end(self, call: Any) -> None:
        try:
            await self._on_thread(call)
        finally:
            thread, self.thread = self.thread, None
            if thread is not None:
                thread.shutdown(wait=False)

    async def acommit(self) -> None:
        await self._end(self.commit)

    async def arollback(self) -> None:
        await self._end(self.rollback)


def _close_quietly(gen: Iterator[Any]) -> None:
    try:
        gen.close()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - nobody is reading any more
        pass


class _SQLiteSession(Session):
    """One operation on the backend's connection: its write transaction holds the backend's lock.

    Statements outside a transaction run on their own (autocommit), under the lock for just that
    statement. A stream reads a file database on a connection of its own (reused from stream to
    stream): its one statement reads a snapshot (WAL) while the main connection writes, with no
    BEGIN/COMMIT around it; an in-memory database has no second connection to read from, and is
    in memory anyway: its rows are fetched at once.
    """

    __slots__ = ("backend", "cur", "pos", "reader", "rows", "stream")

    BATCH = 500

    def __init__(self, backend: SQLiteBackend) -> None:
        self.backend = backend
        self.cur: sqlite3.Cursor | None = None  # the write transaction's cursor
        self.rows: list[Any] | None = None  # an in-memory stream's rows
        self.pos = 0
        self.reader: sqlite3.Connection | None = None  # a file stream's connection
        self.stream: sqlite3.Cursor | None = None

    def send(self, request: Any) -> Any:
        try:
            kind = type(request)
            if kind is Execute:
                cur = self.cur
                if cur is not None:
                    cur.execute(request.sql, request.params)
                    return answer(cur, request.fetch)
                return self.backend.execute_one(request)
            if kind is Begin:
                if self.cur is None:
                    self._begin()
                return None
            if kind is Fetch:
                return self._fetch()
            if kind is Stream:
                self._close_stream()
                self._open_stream(request.sql, request.params)
                return None
            if kind is ExecuteMany:
                if self.cur is None:
                    self._begin()
                self.cur.executemany(request.sql, request.rows)  # type: ignore[union-attr]
                return None
            if kind is Rollback:
                self._end(commit=False)
                return None
            raise TypeError(f"The SQLite backend cannot carry out {request!r}.")
        except sqlite3.IntegrityError:
            self._failed()
            raise  # the repository maps it to DuplicateKey with the key it was writing
        except sqlite3.Error as exc:
            self._failed()
            raise self.backend.translate(exc) from exc

    def _failed(self) -> None:
        """A statement failed: the operation's transaction is rolled back at once (nothing was written).

        Not so in a transaction() block: it rolls back to the operation's savepoint itself.
        """
        if self.held:
            return
        try:
            self._end(commit=False)
        except sqlite3.Error:
            pass

    def _begin(self) -> None:
        backend = self.backend
        backend._lock.acquire()
        cur = None
        try:
            cur = backend.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
        except BaseException:
            if cur is not None:
                cur.close()
            backend._lock.release()
            raise
        self.cur = cur

    def _end(self, commit: bool) -> None:
        cur = self.cur
        if cur is None:
            return
        self.cur = None
        conn = self.backend._conn
        try:
            if conn is not None:
                if commit:
                    try:
                        conn.commit()
                    except BaseException:
                        if conn.in_transaction:
                            conn.rollback()
                        raise
                elif conn.in_transaction:
                    conn.rollback()
        finally:
            cur.close()
            self.backend._lock.release()

    def _open_stream(self, sql: str, params: Sequence[Any]) -> None:
        backend = self.backend
        if backend.in_memory or self.cur is not None:  # in a transaction: read what it wrote
            with backend._lock:
                cur = backend.conn.execute(sql, params)
                try:
                    self.rows, self.pos = cur.fetchall(), 0
                finally:
                    cur.close()
            return
        reader = backend.reader()
        try:
            self.stream = reader.execute(sql, params)
        except BaseException:
            backend.release_reader(reader)  # e.g. the table does not exist
            raise
        self.reader = reader

    def _fetch(self) -> list[Any]:
        if self.rows is not None:
            batch = self.rows[self.pos:self.pos + self.BATCH]
            self.pos += self.BATCH
            if not batch:
                self.rows = None
            return batch
        if self.stream is None:
            return []
        rows = self.stream.fetchmany(self.BATCH)
        if len(rows) < self.BATCH:
            self._close_stream()  # the last batch: the connection is free for the next stream now
        return rows

    def _close_stream(self) -> None:
        self.rows = None
        reader, stream, self.reader, self.stream = self.reader, self.stream, None, None
        if stream is not None:
            stream.close()  # ends the statement, and with it its read snapshot
        if reader is not None:
            self.backend.release_reader(reader)

    def finish(self) -> None:
        try:
            self._close_stream()
            self._end(commit=True)
        except sqlite3.Error as exc:
            raise self.backend.translate(exc) from exc

    def abort(self, exc: BaseException) -> None:
        try:
            self._close_stream()
        except sqlite3.Error:
            pass
        try:
            self._end(commit=False)
        except sqlite3.Error:
            pass  # the operation's own error is the one to report


class _LoggedSQLiteSession(LoggedSession, _SQLiteSession):
    """The session while DEBUG is on: each request logged (odm.logs)."""

    logger = _REQUESTS
    backend_name = "sqlite"

    def logged(self, request: Any) -> bool:
        return not (type(request) is Execute and self.cur is None)  # execute_one logs those
