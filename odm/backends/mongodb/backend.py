"""The MongoDB backend: a pymongo client built from ``uri`` or host/database/user/pass."""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from time import perf_counter
from typing import Any, TypeVar

import pymongo
from bson.errors import BSONError, InvalidDocument
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
)
from pymongo.read_concern import ReadConcern

from ... import logs, ops
from ...config import redact_url
from ...errors import BackendUnavailable, ConcurrentModification, ConfigError, DuplicateKey, ODMError, QueryError, ValidationError
from ...ops import Op
from ...redaction import mask_secrets, watch
from ...transaction import TransactionState, joined
from ..base import Backend, Features, require, transaction_stream
from ..names import TableNameRule
from .codec import CODEC_OPTIONS, MAX_DECIMAL_DIGITS, MongoCodec
from .repository import MongoRepository
from .requests import Call, Close, Find, More
from .sync import SCHEMA_COLLECTION

T = TypeVar("T")
_REQUESTS = logs.requests_logger("mongodb")
#: The cursors one run of an operation opened and has not finished reading, by id().
Cursors = dict[int, Any]

#: Server error codes meaning "who you are was refused", reported as BackendUnavailable.
AUTH_CODES = {13, 18}
#: The server no longer knows a cursor (CursorNotFound).
CURSOR_NOT_FOUND = 43
#: WriteConflict: two transactions wrote one document; the server aborts the later one.
WRITE_CONFLICT = 112
#: Seconds close() waits for an async client to close on its event loop's own thread.
CLOSE_WAIT = 10
#: Longest "<database>.<collection>" namespace, in bytes (MongoDB 4.4 and later).
MAX_NAMESPACE_BYTES = 255


class MongoFeatures(Features):
    # insert_many is unordered: items without a conflict are written, the others are reported.
    atomic_insert_many = False
    max_decimal_digits = MAX_DECIMAL_DIGITS  # 34, Decimal128's
    max_item_bytes = 16 * 1024 * 1024  # a BSON document's; pymongo, or the server for its last 16 KB, refuses more
    # A client session's transaction, where the server has them (a replica set or a sharded cluster:
    # probed when a transaction opens; a standalone server is a QueryError saying so).
    transactions = True
    reads_see_own_writes_in_transaction = True
    # MongoDB aborts the whole transaction when a write in it fails (a duplicate key, say).
    transaction_survives_errors = False
    snapshot_transactions = True  # read concern "snapshot"


class MongoBackend(Backend):
    """One ``MongoClient`` (its own pool and retries) per backend; one database.

    The async driver is pymongo's native ``AsyncMongoClient``, built with the same URI and
    options on the first async call, inside the running event loop (it is bound to that loop),
    and closed by ``aclose()``.
    """

    name = "mongodb"
    features = MongoFeatures
    repository_class = MongoRepository
    codec = MongoCodec()
    info_keys = {"uri": "text", "host": "text", "database": "text", "user": "text", "username": "text", "pass": "text",
                 "password": "text", "authSource": "text", "timeout": "seconds", "batchSize": "count"}
    #: The seed's one dbInfo also carries DynamoDB's keys (docs/configuration.md).
    shared_info_keys = frozenset({"credentials", "endpoint", "awsRegion", "awsSecretKeyId", "awsSecretAccessKey",
                                  "awsSessionToken"})
    table_names = TableNameRule(
        "a MongoDB collection name is non-empty, holds no '$' or NUL, does not start or end with '.', holds no '..', "
        "does not start with 'system.' (the server's own) and is not '_odm_schema' (the ODM's catalog)",
        forbidden="\x00$", no_edges=".", no_runs=("..",), reserved_prefixes=("system.",), reserved=(SCHEMA_COLLECTION,))

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info)
        try:
            timeout_ms = max(1, int(float(info.get("timeout", 5)) * 1000))
            self.batch_size = int(info.get("batchSize", 500))
        except (TypeError, ValueError):
            raise ConfigError("The mongodb backend's dbInfo keys 'timeout' (seconds) and 'batchSize' must be numbers.") from None
        options: dict[str, Any] = {
            "tz_aware": True, "tzinfo": CODEC_OPTIONS.tzinfo, "type_registry": CODEC_OPTIONS.type_registry,
            "serverSelectionTimeoutMS": timeout_ms, "connectTimeoutMS": timeout_ms, "appname": "microkubes-odm",
        }
        uri = info.get("uri")
        self._secrets: list[str] = []
        try:
            if uri:
                if not isinstance(uri, str):
                    raise ConfigError("The mongodb backend's dbInfo key 'uri' must be a string.")
                match = re.match(r"^mongodb(?:\+srv)?://(?:([^@/]*)@)?([^/?]*)", uri)
                if match is None:
                    raise ConfigError(f"The mongodb backend's dbInfo 'uri' must start with mongodb:// or "
                                      f"mongodb+srv://, not {redact_url(uri)!r}.")
                if match.group(1) and ":" in match.group(1):
                    raw = match.group(1).split(":", 1)[1]
                    self._secrets += [raw, urllib.parse.unquote(raw)]
                hosts = match.group(2)
                self._target: Any = uri
                self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, **options)
                database = info.get("database") or self.client.get_default_database(default="odm").name
            else:
                hosts = str(require(info, "host", "mongodb"))
                database = info.get("database") or "odm"
                user = info.get("user") or info.get("username")
                password = info.get("pass", info.get("password"))
                if password:
                    self._secrets.append(str(password))
                if user:
                    options.update(username=user, password=password,
                                   authSource=info.get("authSource") or database)
                self._target = [h.strip() for h in hosts.split(",")]
                self.client = pymongo.MongoClient(self._target, **options)
        except ConfigError:
            raise
        except (PyMongoError, TypeError, ValueError) as exc:
            raise ConfigError(f"The mongodb backend's dbInfo is not usable: {self.safe(str(exc))}.") from None
        if not isinstance(database, str) or not database:
            raise ConfigError("The mongodb backend's dbInfo key 'database' must be a non-empty string.")
        watch(("odm",), self._secrets)  # masked in the ODM's own records too, should one quote them
        self.label = f"{hosts}/{database}"
        self.db = self.client.get_database(database)
        self._options = options
        self._collections: dict[str, Any] = {}
        self._closed = False
        self._transactions: bool | None = None  # does the server run transactions (probed once)?
        # The async client, its database and collections, and the event loop it belongs to.
        self._aclient: pymongo.AsyncMongoClient[dict[str, Any]] | None = None
        self._adb: Any = None
        self._acollections: dict[str, Any] = {}
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._guard: asyncio.Task[None] | None = None

    # -- errors ----------------------------------------------------------------------------
    def safe(self, text: str) -> str:
        """Text with any password removed (the host stays: it is what the reader needs)."""
        return mask_secrets(text, self._secrets)

    def _reason(self, exc: BaseException) -> str:
        text = str(exc).split(", Timeout:")[0].split(", full error:")[0].strip()
        return self.safe(text or type(exc).__name__)

    def translate(self, exc: BaseException, collection: str) -> ODMError | None:
        """A driver exception as the public error (None: not a driver error, let it through)."""
        if isinstance(exc, DuplicateKeyError):
            return DuplicateKey(f"A key or unique index value already exists in '{collection}': {self._reason(exc)}.")
        if isinstance(exc, ConnectionFailure):
            return BackendUnavailable(f"Cannot reach MongoDB at {self.label}: {self._reason(exc)}.")
        if isinstance(exc, InvalidOperation) and self._closed:
            return BackendUnavailable(f"The MongoDB backend for {self.label} has been closed.")
        if isinstance(exc, OperationFailure) and exc.code == CURSOR_NOT_FOUND:
            # The server restarted or failed over between two batches (or the cursor idled out):
            # the stream is cut as by a lost connection, and running the query again works.
            return BackendUnavailable(f"MongoDB at {self.label} lost the query's cursor on '{collection}' (the server "
                                      "restarted or failed over, or the cursor idled out): run the query again.")
        if isinstance(exc, OperationFailure) and exc.code in AUTH_CODES:
            return BackendUnavailable(f"MongoDB at {self.label} refused the credentials or the operation "
                                      f"({exc.code}: {self._reason(exc)}); check user, pass and authSource.")
        if isinstance(exc, DocumentTooLarge):
            return ValidationError({"_schema": [f"The document is over MongoDB's 16 MB document limit: "
                                                f"{self._reason(exc)}."]}, collection)
        if isinstance(exc, OverflowError):  # pymongo: "MongoDB can only handle up to 8-byte ints"
            return ValidationError({"_schema": [f"MongoDB cannot store this number: {exc}."]}, collection)
        if isinstance(exc, (InvalidDocument, BSONError)):
            return ValidationError({"_schema": [f"MongoDB cannot store this value: {self._reason(exc)}."]}, collection)
        if isinstance(exc, OperationFailure) and (exc.code == WRITE_CONFLICT
                                                  or exc.has_error_label("TransientTransactionError")):
            # Inside a transaction the server aborts it rather than wait: another writer got there first.
            return ConcurrentModification(f"MongoDB aborted the transaction: a concurrent write changed the same "
                                          f"document in '{collection}' ({exc.code}: {self._reason(exc)}); nothing "
                                          "of the block was written: run it again.")
        if isinstance(exc, OperationFailure):
            return QueryError(f"MongoDB refused the operation on '{collection}' ({exc.code}): {self._reason(exc)}.")
        if isinstance(exc, ConfigurationError):
            return ConfigError(f"MongoDB configuration error for {self.label}: {self._reason(exc)}.")
        if isinstance(exc, PyMongoError):
            return QueryError(f"MongoDB error on '{collection}': {self._reason(exc)}.")
        return None

    def check_table_name(self, name: str) -> None:
        super().check_table_name(name)
        size = len(f"{self.db.name}.{name}".encode("utf-8", "surrogatepass"))
        if size > MAX_NAMESPACE_BYTES:
            raise ConfigError(f"The table name {name!r} cannot be used on mongodb: with its database the namespace "
                              f"'{self.db.name}.<name>' is {size} bytes, over MongoDB's {MAX_NAMESPACE_BYTES}.")

    def ping(self) -> None:
        """The server's ``ping`` command (waits at most ``timeout`` seconds for a server)."""
        try:
            self.db.command("ping")
        except Exception as exc:
            translated = self.translate(exc, self.label)
            if translated is None:
                raise
            raise translated from exc

    # -- transactions (odm.transaction) ------------------------------------------------------------
    def transaction_state(self, is_async: bool, snapshot: bool = False) -> TransactionState:
        if self._transactions is None:
            try:
                hello = self.client.admin.command("hello")
            except Exception as exc:
                translated = self.translate(exc, self.label)
                if translated is None:
                    raise
                raise translated from exc
            self._transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
        if not self._transactions:
            raise QueryError(f"MongoDB at {self.label} is a standalone server: MongoDB runs transactions only on a "
                             "replica set or a sharded cluster (a one-member replica set will do). "
                             "registry.transaction() cannot be used here.")
        return MongoTransaction(self, is_async, snapshot)

    # -- carrying requests out (odm.ops; see requests.py) -------------------------------------
    def _collection(self, name: str | None) -> Any:
        if name is None:
            return self.db
        found = self._collections.get(name)
        if found is None:
            found = self._collections[name] = self.db.get_collection(name)
        return found

    def _send(self, request: Any, cursors: Cursors | None) -> Any:
        if _REQUESTS.isEnabledFor(logs.DEBUG):
            start = perf_counter()
            try:
                response = self._carry(request, cursors)
            except BaseException as exc:
                logs.mongodb_request(_REQUESTS, request, None, start, exc)
                raise
            logs.mongodb_request(_REQUESTS, request, response, start)
            return response
        return self._carry(request, cursors)

    def _carry(self, request: Any, cursors: Cursors | None) -> Any:
        kind = type(request)
        if kind is Call:
            return getattr(self._collection(request.collection), request.method)(*request.args, **request.kwargs)
        if kind is Find:
            cursor = getattr(self._collection(request.collection), request.method)(*request.args, **request.kwargs)
            return self._read(cursor, request.batch, cursors)
        if kind is More:
            return self._read(request.handle, request.batch, cursors)
        if kind is Close:
            if cursors is not None:
                cursors.pop(id(request.handle), None)
            request.handle.close()
            return None
        raise TypeError(f"Not a MongoDB request: {request!r}")

    @staticmethod
    def _read(cursor: Any, batch: int | None, cursors: Cursors | None) -> tuple[Any, list[dict[str, Any]]]:
        if cursors is not None:
            cursors[id(cursor)] = cursor  # closed by the run if the operation stops before its end
        docs = cursor.to_list(batch)
        if cursor.alive:
            return cursor, docs
        if cursors is not None:
            cursors.pop(id(cursor), None)
        return None, docs

    def send(self, request: Any) -> Any:
        return self._send(request, None)

    def run(self, op: Op[T]) -> T:
        tx = joined(self, False)
        if tx is not None:
            return tx.run(op)
        cursors: Cursors = {}
        try:
            return ops.run(op, lambda request: self._send(request, cursors))
        finally:
            if cursors:
                self._release(cursors)

    def iterate(self, op: Op[Any]) -> Iterator[Any]:
        tx = joined(self, False)
        if tx is not None:  # read whole, in the transaction's session
            yield from tx.run(ops.collect(op))
            return
        cursors: Cursors = {}
        try:
            yield from ops.stream(op, lambda request: self._send(request, cursors))
        finally:  # after the operation is closed: a consumer that stopped early leaves no cursor open
            if cursors:
                self._release(cursors)

    @staticmethod
    def _release(cursors: Cursors) -> None:
        for cursor in cursors.values():
            with contextlib.suppress(PyMongoError):  # a lost server has forgotten it already
                cursor.close()
        cursors.clear()

    # -- the async driver ------------------------------------------------------------------------
    def _adatabase(self) -> Any:
        """The async client's database, the client built on first use inside the running loop."""
        loop = asyncio.get_running_loop()
        if self._adb is not None and self._aloop is loop:
            return self._adb
        if self._closed:
            raise InvalidOperation("the backend has been closed")
        # A client is bound to the loop it was built in: a new loop (another asyncio.run) gets its own.
        old, old_loop, old_guard = self._aclient, self._aloop, self._guard
        client: pymongo.AsyncMongoClient[dict[str, Any]] = pymongo.AsyncMongoClient(self._target, **self._options)
        self._aclient = client
        self._aloop = loop
        self._adb = client.get_database(self.db.name)
        self._acollections = {}
        self._guard = loop.create_task(self._close_with_loop(client))
        if old is not None:
            self._cancel_guard(old_guard, old_loop)
            self._close_elsewhere(old, old_loop)
        return self._adb

    async def _close_with_loop(self, client: Any) -> None:
        """Waits for its loop to end (``asyncio.run`` cancels every task) and then closes the client.

        So an async client is never left open on a finished loop, even without ``aclose()``
        (its sockets could not be closed from outside that loop any more).
        """
        try:
            await asyncio.get_running_loop().create_future()  # never set
        except asyncio.CancelledError:
            ours = client is self._aclient
            if ours:  # not closed by aclose() already
                self._aclient = self._adb = self._aloop = self._guard = None
                self._acollections = {}
                with contextlib.suppress(PyMongoError):
                    await client.close()
            raise

    def _acollection(self, name: str | None) -> Any:
        db = self._adatabase()
        if name is None:
            return db
        found = self._acollections.get(name)
        if found is None:
            found = self._acollections[name] = db.get_collection(name)
        return found

    async def _asend(self, request: Any, cursors: Cursors | None) -> Any:
        if _REQUESTS.isEnabledFor(logs.DEBUG):
            start = perf_counter()
            try:
                response = await self._acarry(request, cursors)
            except BaseException as exc:
                logs.mongodb_request(_REQUESTS, request, None, start, exc)
                raise
            logs.mongodb_request(_REQUESTS, request, response, start)
            return response
        return await self._acarry(request, cursors)

    async def _acarry(self, request: Any, cursors: Cursors | None) -> Any:
        kind = type(request)
        if kind is Call:
            target = self._acollection(request.collection)
            return await getattr(target, request.method)(*request.args, **request.kwargs)
        if kind is Find:
            target = self._acollection(request.collection)
            if request.method == "find":  # the async find builds its cursor without I/O
                cursor = target.find(*request.args, **request.kwargs)
            else:
                cursor = await getattr(target, request.method)(*request.args, **request.kwargs)
            return await self._aread(cursor, request.batch, cursors)
        if kind is More:
            return await self._aread(request.handle, request.batch, cursors)
        if kind is Close:
            if cursors is not None:
                cursors.pop(id(request.handle), None)
            await request.handle.close()
            return None
        raise TypeError(f"Not a MongoDB request: {request!r}")

    @staticmethod
    async def _aread(cursor: Any, batch: int | None, cursors: Cursors | None) -> tuple[Any, list[dict[str, Any]]]:
        if cursors is not None:
            cursors[id(cursor)] = cursor
        docs = await cursor.to_list(batch)
        if cursor.alive:
            return cursor, docs
        if cursors is not None:
            cursors.pop(id(cursor), None)
        return None, docs

    async def asend(self, request: Any) -> Any:
        return await self._asend(request, None)

    async def arun(self, op: Op[T]) -> T:
        tx = joined(self, True)
        if tx is not None:
            return await tx.arun(op)
        cursors: Cursors = {}
        try:
            return await ops.arun(op, lambda request: self._asend(request, cursors))
        finally:
            if cursors:
                await self._arelease(cursors)

    async def aiterate(self, op: Op[Any]) -> AsyncIterator[Any]:
        if joined(self, True) is not None:
            async for item in transaction_stream(self, op):
                yield item
            return
        cursors: Cursors = {}
        stream: Any = ops.astream(op, lambda request: self._asend(request, cursors))  # an async generator
        try:
            async for item in stream:
                yield item
        finally:  # `break` then aclose(), or a cancelled task: the operation, then its cursor, closed
            await stream.aclose()
            if cursors:
                await self._arelease(cursors)

    @staticmethod
    async def _arelease(cursors: Cursors) -> None:
        for cursor in list(cursors.values()):
            with contextlib.suppress(PyMongoError):
                await cursor.close()
        cursors.clear()

    async def _drop_async_client(self) -> None:
        client, loop, guard = self._aclient, self._aloop, self._guard
        self._aclient = self._adb = self._aloop = self._guard = None
        self._acollections = {}
        if client is None:
            return
        self._cancel_guard(guard, loop)
        if loop is asyncio.get_running_loop():
            await client.close()
        else:
            self._close_elsewhere(client, loop)

    def _close_elsewhere(self, client: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        """Close an async client from outside its loop, as far as that loop still allows."""
        if loop is None or loop.is_closed():
            return  # nothing can run its close any more (pymongo warns of the unclosed client)
        if loop.is_running():
            try:
                current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                current = None
            if current is loop:  # close() called from a coroutine on that loop: close it there
                task = loop.create_task(client.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            else:  # the loop runs on another thread: close it there, and wait for it
                future = asyncio.run_coroutine_threadsafe(client.close(), loop)
                with contextlib.suppress(Exception):
                    future.result(CLOSE_WAIT)
            return
        with contextlib.suppress(PyMongoError):
            loop.run_until_complete(client.close())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.close()
            if self._aclient is not None:  # opened by async calls that did not end with aclose()
                client, loop, guard = self._aclient, self._aloop, self._guard
                self._aclient = self._adb = self._aloop = self._guard = None
                self._acollections = {}
                self._cancel_guard(guard, loop)
                self._close_elsewhere(client, loop)

    @staticmethod
    def _cancel_guard(guard: asyncio.Task[None] | None, loop: asyncio.AbstractEventLoop | None) -> None:
        """Stop a client's guard task (it sees the client is no longer ours and leaves it alone)."""
        if guard is not None and not guard.done() and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(guard.cancel)

    async def aclose(self) -> None:
        """Close the async client (in its own loop) and the sync one; safe to call twice."""
        if self._aclient is not None:
            with contextlib.suppress(PyMongoError):
                await self._drop_async_client()
        self.close()

    def __repr__(self) -> str:
        return f"<MongoBackend {self.label}>"


def _in_session(request: Any, session: Any) -> Any:
    """The request, run in the transaction's client session."""
    kind = type(request)
    if kind is Call:
        return Call(request.collection, request.method, *request.args, session=session, **request.kwargs)
    if kind is Find:
        return Find(request.collection, request.method, request.batch, *request.args, session=session, **request.kwargs)
    return request  # More and Close act on a cursor, which knows its session


class MongoTransaction(TransactionState):
    """A client session's transaction, started with the block's first operation.

    MongoDB aborts the whole transaction when one of its writes fails: a later operation in the
    block, and the block's end, then raise QueryError saying which error aborted it (features.
    transaction_survives_errors is False), so nothing of the block is written.
    """

    def __init__(self, backend: MongoBackend, is_async: bool, snapshot: bool = False) -> None:
        super().__init__(backend, is_async)
        self.mongo = backend
        self.options: dict[str, Any] = {"read_concern": ReadConcern("snapshot")} if snapshot else {}
        self.session: Any = None
        self.failed: BaseException | None = None

    def _check(self) -> None:
        if self.failed is not None:
            raise QueryError(f"The MongoDB transaction was aborted by an earlier error in the block ({self.failed}); "
                             "nothing of it will be written.") from self.failed

    def run(self, op: Op[T]) -> T:
        self._check()
        if self.session is None:
            self.session = self.mongo.client.start_session()
            self.session.start_transaction(**self.options)
        session = self.session
        cursors: Cursors = {}

        def carry(request: Any) -> Any:
            try:
                return self.mongo._send(_in_session(request, session), cursors)
            except BaseException as exc:
                self.failed = exc
                raise

        try:
            return ops.run(op, carry)
        finally:
            if cursors:
                self.mongo._release(cursors)

    async def arun(self, op: Op[T]) -> T:
        self._check()
        if self.session is None:
            self.mongo._adatabase()  # the loop's client, opened on first use
            client = self.mongo._aclient
            assert client is not None
            self.session = client.start_session()
            await self.session.start_transaction(**self.options)
        session = self.session
        cursors: Cursors = {}

        async def carry(request: Any) -> Any:
            try:
                return await self.mongo._asend(_in_session(request, session), cursors)
            except BaseException as exc:
                self.failed = exc
                raise

        try:
            return await ops.arun(op, carry)
        finally:
            if cursors:
                await self.mongo._arelease(cursors)

    def _error(self, exc: BaseException) -> BaseException:
        return self.mongo.translate(exc, self.mongo.label) or exc

    def commit(self) -> None:
        session, self.session = self.session, None
        if session is None:
            self._check()
            return
        try:
            if self.failed is not None:
                session.abort_transaction()
                self._check()
            session.commit_transaction()
        except PyMongoError as exc:
            raise self._error(exc) from exc
        finally:
            session.end_session()

    def rollback(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                with contextlib.suppress(PyMongoError):
                    session.abort_transaction()
            finally:
                session.end_session()

    async def acommit(self) -> None:
        session, self.session = self.session, None
        if session is None:
            self._check()
            return
        try:
            if self.failed is not None:
                await session.abort_transaction()
                self._check()
            await session.commit_transaction()
        except PyMongoError as exc:
            raise self._error(exc) from exc
        finally:
            await session.end_session()

    async def arollback(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                with contextlib.suppress(PyMongoError):
                    await session.abort_transaction()
            finally:
                await session.end_session()
