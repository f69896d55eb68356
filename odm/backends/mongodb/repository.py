"""One MongoDB collection: stored documents in and out, on pymongo.

Each operation is a generator (odm.ops) yielding requests (requests.py): the backend runs it
with pymongo's ``MongoClient`` or its native ``AsyncMongoClient``; what the operation decides
(filters, TTL handling, conditions, error translation) is written once, here.

The primary key is ``_id`` (the hash value, or ``{"h": hash, "r": range}``);
the key attributes are also stored as ordinary attributes, so filters and
order work on them like on any attribute. ``_id`` never leaves this module.
Expired TTL items are filtered out of every read and replaced by an insert of
the same key, so they are absent for every operation even before the server's
TTL monitor removes them.

Every single-item operation is one command (tests/backends/test_round_trips_nosql.py).
``update`` is ``findAndModify``: the model is refreshed from the stored item, which only
the server knows after an increment or a concurrent write, and findAndModify hands it back
with the write. (On mongod it is an ``_id`` point lookup like ``update``; SecantusDB, the
test server, scans the collection for it.)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DocumentTooLarge, DuplicateKeyError, WriteError

from ... import ops
from ...errors import BackendUnavailable, DuplicateKey, ODMError, QueryError, ValidationError
from ...expressions.nodes import Node, Path, holds_for_missing
from ...ops import Op
from ...updates import UpdateAction
from ..base import Action, QuerySpec, Repository, SyncPlan, chunks
from ..codec import iso_utc
from .codec import CODEC_OPTIONS, TTL_MICROS, join_micros, split_micros
from .compiler import MongoCompiler, and_filters, check_name
from .requests import Call, Find, More
from .sync import sync_op

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from ...schema import TableSpec
    from .backend import MongoBackend

UTC = _dt.timezone.utc
NO_ID = {"_id": 0}
DUPLICATE_CODES = (11000, 11001, 12582)
#: The server's "object to insert too large" (BSONObjectTooLarge). pymongo refuses a document over
#: 16 MB before sending it only past its 16 KB command allowance; within it the server refuses.
TOO_LARGE_CODE = 10334
#: Refused items named in an insert_many error's message (all of them are on its ``failed``).
SHOWN = 20


class MongoRepository(Repository):
    backend: MongoBackend

    def __init__(self, backend: MongoBackend, spec: TableSpec) -> None:
        super().__init__(backend, spec)
        self.codec = backend.codec
        self.compiler = MongoCompiler(spec, backend.codec)
        self.collection: Collection[dict[str, Any]] = backend.db.get_collection(spec.name)
        self.ttl = spec.ttl_attribute
        self.batch_size = backend.batch_size

    # -- helpers ----------------------------------------------------------------------------
    @contextmanager
    def translated(self) -> Iterator[None]:
        """Driver exceptions become public errors here, with the original chained."""
        try:
            yield
        except ODMError:
            raise
        except Exception as exc:
            public = self.backend.translate(exc, self.spec.name)
            if public is None:
                raise
            raise public from exc

    def _live(self) -> dict[str, Any]:
        """Items whose TTL has not passed (a missing TTL attribute never expires)."""
        if not self.ttl:
            return {}
        return {"$nor": [self._expired()]}

    def _expired(self) -> dict[str, Any]:
        """Exact at the microsecond, as on the other backends (the date and its remainder).

        A TTL attribute can also hold ISO text, written before TTL was enabled on it (every other
        datetime is stored so): it expires alike, as on DynamoDB.
        """
        if not self.ttl:
            return {}
        now = _dt.datetime.now(UTC)
        pair = self.compiler.ttl_compare("le", now)
        assert pair is not None  # now is a datetime
        return {"$or": [pair, {self.ttl: {"$lte": iso_utc(now)}}]}

    def _out(self, doc: dict[str, Any] | None) -> dict[str, Any] | None:
        """A read document with the TTL attribute's microseconds put back (see codec.TTL_MICROS)."""
        if doc is not None and self.ttl:
            rest = doc.pop(TTL_MICROS, None)
            if rest and self.ttl in doc:
                doc[self.ttl] = join_micros(doc[self.ttl], rest)
        return doc

    def _with_micros(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` with the TTL attribute's sub-millisecond part stored beside its BSON date."""
        value = doc.get(self.ttl) if self.ttl else None
        if isinstance(value, _dt.datetime):
            _, rest = split_micros(value)
            if rest:
                return {**doc, TTL_MICROS: rest}
        return doc

    def _id(self, key: tuple[Any, ...]) -> Any:
        return self.compiler.key_id(key)

    def _full(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The document as written: ``_id`` first, attribute names checked."""
        for name in doc:
            if not isinstance(name, str) or name.startswith("$") or name in ("_id", TTL_MICROS) or "\x00" in name:
                raise ValidationError({str(name): ["MongoDB cannot store a top-level attribute named "
                                                   f"{name!r}: '_id' and '{TTL_MICROS}' are reserved and names "
                                                   "cannot start with '$'."]},
                                      self.spec.name)
        return {"_id": self._id(self.spec.key_of(doc)), **self._with_micros(doc)}

    def _filter(self, where: Node | None) -> dict[str, Any]:
        return and_filters(self.compiler.where(where), self._live())

    def _duplicate(self, exc: BaseException, key: tuple[Any, ...] | None) -> DuplicateKey:
        details = getattr(exc, "details", None) or {}
        pattern = details.get("keyPattern") or {}
        if pattern and "_id" not in pattern:
            value = details.get("keyValue")
            return DuplicateKey(f"An item in '{self.spec.name}' already has the value {value!r} for the unique index "
                                f"on {', '.join(pattern)}.")
        if key is not None:
            return self.duplicate_key(key)
        return DuplicateKey(f"An item with key {details.get('keyValue')!r} already exists in '{self.spec.name}'.")

    def _too_large(self, doc: dict[str, Any], written: str = "") -> ValidationError:
        """Name the attribute that makes a document exceed MongoDB's 16 MB limit."""
        sizes = {name: len(bson.encode({name: value}, codec_options=CODEC_OPTIONS)) for name, value in doc.items()}
        name = max(sizes, key=sizes.__getitem__) if sizes else "_schema"
        total = len(bson.encode(doc, codec_options=CODEC_OPTIONS))
        return ValidationError({name: [f"The item {self.key_label(self.spec.key_of(doc))} is {total} bytes, over MongoDB's "
                                       f"16 MB (16777216 bytes) document limit; '{name}' holds {sizes.get(name, 0)} "
                                       f"bytes of it.{written}"]}, self.spec.label)

    def _is_key_clash(self, exc: BaseException) -> bool:
        pattern = (getattr(exc, "details", None) or {}).get("keyPattern") or {}
        return not pattern or "_id" in pattern

    # -- schema -------------------------------------------------------------------------------
    def sync_op(self, plan: SyncPlan | None = None) -> Op[list[Action]]:
        return sync_op(self, plan)

    # -- writes -----------------------------------------------------------------------------------
    def insert_op(self, doc: dict[str, Any]) -> Op[None]:
        full = self._full(doc)
        name = self.spec.name
        with self.translated():
            try:
                if self.ttl:
                    # One command: an expired item of the key is replaced; with none, the upsert
                    # inserts; a live one is left alone and the upsert's insert clashes on _id.
                    yield Call(name, "replace_one", {"_id": full["_id"], **self._expired()}, full, upsert=True)
                else:
                    yield Call(name, "insert_one", full)
            except DuplicateKeyError as exc:
                raise self._duplicate(exc, self.spec.key_of(doc)) from exc
            except (DocumentTooLarge, WriteError) as exc:
                if isinstance(exc, WriteError) and exc.code != TOO_LARGE_CODE:
                    raise
                raise self._too_large(doc) from exc

    def put_op(self, doc: dict[str, Any], condition: Node | None = None) -> Op[None]:
        full = self._full(doc)
        key = self.spec.key_of(doc)
        ident = full["_id"]
        name = self.spec.name
        with self.translated():
            try:
                if condition is None:
                    yield Call(name, "replace_one", {"_id": ident}, full, upsert=True)
                    return
                flt = and_filters({"_id": ident}, self._live(), self.compiler.compile(condition))
                if (yield Call(name, "replace_one", flt, full)).matched_count:
                    return
                if holds_for_missing(condition):
                    # Written only if no live item has the key (an expired one counts as absent).
                    if self.ttl:
                        yield Call(name, "delete_one", {"_id": ident, **self._expired()})
                    try:
                        yield Call(name, "insert_one", full)
                        return
                    except DuplicateKeyError as exc:
                        if not self._is_key_clash(exc):
                            raise
            except DuplicateKeyError as exc:
                raise self._duplicate(exc, key) from exc
            except (DocumentTooLarge, WriteError) as exc:
                if isinstance(exc, WriteError) and exc.code != TOO_LARGE_CODE:
                    raise
                raise self._too_large(doc) from exc
        raise self.condition_failed(key, "save")

    def _changes(self, sets: dict[str, Any], incs: dict[str, Any], unsets: Sequence[str],
                 actions: Sequence[UpdateAction]) -> dict[str, Any] | list[dict[str, Any]]:
        """The update document: update operators, or a pipeline where one is needed (see _pipeline)."""
        for group in (sets, incs, unsets):
            for attr in group:
                check_name(attr)
        for action in actions:
            for part in action.path:
                check_name(part)
        if self.ttl and self.ttl in sets:
            sets = self._with_micros(sets)
            if TTL_MICROS not in sets:
                unsets = [*unsets, TTL_MICROS]
        if self.ttl and self.ttl in unsets:
            unsets = [*unsets, TTL_MICROS]
        if any(a.op == "add" for a in actions):
            return _pipeline(sets, incs, unsets, actions)
        changes: dict[str, Any] = {}
        sets, incs, unsets = dict(sets), dict(incs), list(unsets)
        for action in actions:
            dotted, op = action.dotted, action.op
            if op == "set":
                sets[dotted] = action.value
            elif op == "inc":
                incs[dotted] = action.value
            elif op == "unset":
                unsets.append(dotted)
            elif op == "append":
                changes.setdefault("$push", {})[dotted] = {"$each": list(action.value)}
            else:  # remove, discard: every occurrence; a set stays sorted
                changes.setdefault("$pullAll", {})[dotted] = list(action.value)
        if sets:
            changes["$set"] = sets
        if incs:
            changes["$inc"] = incs
        if unsets:
            changes["$unset"] = {attr: "" for attr in unsets}
        return changes

    def update_op(self, key: tuple[Any, ...], sets: dict[str, Any], incs: dict[str, Any],
                  unsets: Sequence[str], condition: Node | None = None,
                  actions: Sequence[UpdateAction] = ()) -> Op[dict[str, Any] | None]:
        changes = self._changes(sets, incs, unsets, actions)
        ident = self._id(key)
        where = and_filters({"_id": ident}, self._live())
        flt = where if condition is None else and_filters(where, self.compiler.compile(condition))
        name = self.spec.name
        with self.translated():
            try:
                if changes:
                    doc = yield Call(name, "find_one_and_update", flt, changes, projection=NO_ID,
                                     return_document=ReturnDocument.AFTER)
                else:
                    doc = yield Call(name, "find_one", flt, NO_ID)
            except DuplicateKeyError as exc:
                raise self._duplicate(exc, key) from exc
            if doc is not None or condition is None:
                return self._out(doc)
            if (yield Call(name, "find_one", where, {"_id": 1})) is None:
                return None
        raise self.condition_failed(key, "update")

    def delete_op(self, key: tuple[Any, ...], condition: Node | None = None) -> Op[bool]:
        ident = self._id(key)
        where = and_filters({"_id": ident}, self._live())
        flt = where if condition is None else and_filters(where, self.compiler.compile(condition))
        name = self.spec.name
        with self.translated():
            if (yield Call(name, "delete_one", flt)).deleted_count:
                return True
            if condition is None:
                return False
            # A missing item is judged like any other: the condition must hold for it.
            if holds_for_missing(condition) and (yield Call(name, "find_one", where, {"_id": 1})) is None:
                return False
        raise self.condition_failed(key, "delete")

    def insert_many_op(self, docs: Sequence[dict[str, Any]]) -> Op[None]:
        """Unordered within a batch: every item without a conflict is written; every refused item is named.

        Batches of ``batch_size`` go one after the other, so when the server is lost midway the
        error can say exactly which items were acknowledged (every earlier batch, less its refused
        items), which batch's outcome is unknown, and which were never sent.
        """
        if not docs:
            return
        fulls = self._fulls(docs)
        name = self.spec.name
        refused: list[dict[str, Any]] = []  # the server's write errors, "index" being the position in docs
        inserted = 0
        done = 0  # items in acknowledged batches
        try:
            for chunk in chunks(fulls, self.batch_size):
                with self.translated():
                    if self.ttl:
                        yield Call(name, "delete_many", {"_id": {"$in": [f["_id"] for f in chunk]}, **self._expired()})
                    try:
                        inserted += len((yield Call(name, "insert_many", chunk, ordered=False)).inserted_ids)
                    except BulkWriteError as exc:
                        details = exc.details or {}
                        errors = details.get("writeErrors") or []
                        if not errors:
                            raise
                        inserted += int(details.get("nInserted", len(chunk) - len(errors)))
                        refused += [({**e, "index": done + e["index"]} if isinstance(e.get("index"), int) else e)
                                    for e in errors]
                done += len(chunk)
        except ODMError as exc:
            if done or refused or isinstance(exc, BackendUnavailable):
                raise self._interrupted(exc, docs, done, refused) from exc.__cause__
            raise
        if refused:
            raise self._bulk_error({"writeErrors": refused, "nInserted": inserted}, docs)

    def _fulls(self, docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``[self._full(d) for d in docs]``, with the attribute names checked once per distinct name
        rather than once per document (a bad name falls back to ``_full``, which names it)."""
        names: set[Any] = set()
        for doc in docs:
            names.update(doc)
        if any(not isinstance(n, str) or n.startswith("$") or n in ("_id", TTL_MICROS) or "\x00" in n for n in names):
            return [self._full(d) for d in docs]
        key_id, key_of = self.compiler.key_id, self.spec.key_of
        if self.ttl:
            return [{"_id": key_id(key_of(d)), **self._with_micros(d)} for d in docs]
        return [{"_id": key_id(key_of(d)), **d} for d in docs]

    def _interrupted(self, exc: ODMError, docs: Sequence[dict[str, Any]], done: int,
                     refused: list[dict[str, Any]]) -> ODMError:
        """``exc`` (the server was lost, say) with what insert_many had confirmed before it."""
        bad = {e.get("index") for e in refused}
        written = [self.spec.key_of(d) for i, d in enumerate(docs[:done]) if i not in bad]
        unknown = [self.spec.key_of(d) for d in docs[done:done + self.batch_size]]
        unsent = [self.spec.key_of(d) for d in docs[done + self.batch_size:]]
        parts = [f"{len(written)} of {len(docs)} items are confirmed written ({self._span(written, 0, done)})"]
        if refused:
            parts.append(f"{len(refused)} were refused as duplicates or invalid")
        if unknown:
            parts.append(f"the outcome of {len(unknown)} ({self._span(unknown, done, done + len(unknown))}) is unknown")
        if unsent:
            parts.append(f"{len(unsent)} were not sent ({self._span(unsent, done + len(unknown), len(docs))})")
        note = (f"insert_many into '{self.spec.name}' was interrupted: {'; '.join(parts)}. Rerun it with the "
                "items not confirmed (rerunning all of them reports the confirmed ones as DuplicateKey).")
        public: ODMError
        if isinstance(exc, ValidationError):
            public = ValidationError({**exc.messages, "_insert_many": [note]}, exc.model)
        else:
            public = type(exc)(f"{exc} {note}")
        public.written = written  # type: ignore[attr-defined]
        public.unconfirmed = unknown + unsent  # type: ignore[attr-defined]
        public.failed = [self.spec.key_of(docs[e["index"]]) if isinstance(e.get("index"), int) else None  # type: ignore[attr-defined]
                         for e in refused]
        return public

    def _span(self, keys: Sequence[tuple[Any, ...]], start: int, stop: int) -> str:
        """Keys named in a message: all of a few, or the first and last of a run of input positions."""
        if not keys:
            return "none"
        if len(keys) <= 10:
            return "keys " + ", ".join(self.key_label(k) for k in keys)
        return f"items {start}-{stop - 1} of the input, keys {self.key_label(keys[0])} to {self.key_label(keys[-1])}"

    def _bulk_error(self, details: dict[str, Any], docs: Sequence[dict[str, Any]]) -> ODMError:
        errors = details.get("writeErrors") or []
        failed = []
        labels = []
        for err in errors:
            index = err.get("index")
            key = self.spec.key_of(docs[index]) if isinstance(index, int) and 0 <= index < len(docs) else None
            failed.append(key)
            label = self.key_label(key) if key is not None else f"item {index}"
            pattern = err.get("keyPattern") or {}
            if err.get("code") in DUPLICATE_CODES and pattern and "_id" not in pattern:
                label += f" (unique {', '.join(pattern)} = {err.get('keyValue')!r})"
            elif err.get("code") not in DUPLICATE_CODES:
                label += f" ({self.backend.safe(str(err.get('errmsg', '')))})"
            labels.append(label)
        written = details.get("nInserted", len(docs) - len(errors))
        shown = ", ".join(labels[:SHOWN])
        if len(labels) > SHOWN:
            shown += f" and {len(labels) - SHOWN} more (every refused key is on the error's .failed)"
        text = (f"insert_many into '{self.spec.name}' wrote {written} of {len(docs)} items; "
                f"{len(errors)} were refused: {shown}.")
        public: ODMError
        large = [i for i, e in enumerate(errors) if "too large" in str(e.get("errmsg", ""))]
        if large and len(large) == len(errors) and isinstance(errors[large[0]].get("index"), int):
            public = self._too_large(docs[errors[large[0]]["index"]], f" {text}")
        elif errors and all(e.get("code") in DUPLICATE_CODES for e in errors):
            public = DuplicateKey(text.replace("were refused:", "were refused because their key or a unique value "
                                                                "already exists (or repeats in the batch):"))
        else:
            public = QueryError(text)
        public.failed = failed  # type: ignore[attr-defined,union-attr]
        # Every batch was answered, so each item not refused is written (docs/models.md's contract).
        refused = {e.get("index") for e in errors}
        public.written = [self.spec.key_of(d) for i, d in enumerate(docs) if i not in refused]  # type: ignore[attr-defined,union-attr]
        return public

    # -- reads ------------------------------------------------------------------------------------
    def get_op(self, key: tuple[Any, ...], only: Sequence[str] | None = None) -> Op[dict[str, Any] | None]:
        with self.translated():
            return self._out((yield Call(self.spec.name, "find_one", and_filters({"_id": self._id(key)}, self._live()),
                                         self._projection(only))))

    def _projection(self, only: Sequence[str] | None) -> dict[str, Any]:
        """``only()`` as a projection: those attributes (and the TTL's microseconds), never ``_id``."""
        if only is None:
            return NO_ID
        names = [*only, *((self.ttl, TTL_MICROS) if self.ttl else ())]
        return {"_id": 0, **{name: 1 for name in names}}

    def batch_get_op(self, keys: Sequence[tuple[Any, ...]]) -> Op[list[dict[str, Any]]]:
        out: list[dict[str, Any]] = []
        with self.translated():
            for chunk in chunks(list(keys), 500):
                flt = and_filters({"_id": {"$in": [self._id(k) for k in chunk]}}, self._live())
                _, docs = yield Find(self.spec.name, "find", None, flt, NO_ID, batch_size=self.batch_size)
                out.extend(self._out(d) for d in docs)  # type: ignore[misc]
        return out

    def _cursor_args(self, query: QuerySpec) -> dict[str, Any]:
        args: dict[str, Any] = {"filter": self._filter(query.where), "projection": self._projection(query.only)}
        if query.order:
            args["sort"] = self.compiler.sort(query.order)
        if query.offset:
            args["skip"] = query.offset
        if query.limit:
            args["limit"] = query.limit
        return args

    def find_op(self, query: QuerySpec) -> Op[None]:
        """Streams batch by batch (``batch_size`` documents a round trip), in the query's order.

        The cursor stays open between batches; an operation closed before its end (a consumer
        that stopped reading) has it closed by the backend's runner.
        """
        if query.limit == 0:
            return
        size = self.batch_size
        name = self.spec.name
        with self.translated():
            if self.compiler.ranked(query.order):
                handle, docs = yield Find(name, "aggregate", size, self._ranked_pipeline(query), batchSize=size)
            else:
                handle, docs = yield Find(name, "find", size, batch_size=size, **self._cursor_args(query))
        while True:
            if docs:
                if self.ttl:
                    docs = [self._out(d) for d in docs]
                yield ops.Emit(docs)
            if handle is None:
                return
            with self.translated():
                handle, docs = yield More(handle, size)

    def _ranked_pipeline(self, query: QuerySpec) -> list[dict[str, Any]]:
        """An untyped order (Go layer) as an aggregation: MongoDB's sort has no JSON type order."""
        window: list[dict[str, Any]] = []
        if query.offset:
            window.append({"$skip": query.offset})
        if query.limit:
            window.append({"$limit": query.limit})
        return [{"$match": self._filter(query.where)}, *self.compiler.sort_stages(query.order), *window,
                *self.compiler.unwrap_stages()]

    def count_op(self, query: QuerySpec) -> Op[int]:
        if query.limit == 0:
            return 0
        args = self._cursor_args(query)
        options = {k: args[k] for k in ("skip", "limit") if k in args}
        with self.translated():
            return (yield Call(self.spec.name, "count_documents", args["filter"], **options))  # type: ignore[no-any-return]

    def count_by_op(self, query: QuerySpec, path: Path) -> Op[dict[Any, int]]:
        """One aggregation, ``$match`` then ``$group`` on the value (a missing one groups as null).

        A window, the TTL attribute (a date plus its remainder) or an untyped path take the
        generic streamed way. Group keys are decoded and merged as the generic way does.
        """
        if query.limit is not None or query.offset or path.field is None or path.parts == (self.ttl,):
            return (yield from super().count_by_op(query, path))
        pipeline = [{"$match": self._filter(query.where)},
                    {"$group": {"_id": "$" + self.compiler.field(path), "n": {"$sum": 1}}}]
        with self.translated():
            _, rows = yield Find(self.spec.name, "aggregate", None, pipeline)
        decode = self.value_decoder(path)
        counts: dict[Any, int] = {}
        for row in rows:
            value = decode(row.get("_id"))
            counts[value] = counts.get(value, 0) + int(row["n"])
        return counts

    def delete_where_op(self, query: QuerySpec) -> Op[int]:
        flt = self._filter(query.where)
        name = self.spec.name
        with self.translated():
            if query.limit is None and not query.offset:
                return (yield Call(name, "delete_many", flt)).deleted_count  # type: ignore[no-any-return]
            deleted = 0
            for chunk in chunks((yield from self._window_ids_op(query)), 500):
                deleted += (yield Call(name, "delete_many", and_filters({"_id": {"$in": list(chunk)}}, flt))).deleted_count
            return deleted

    def _window_ids_op(self, query: QuerySpec) -> Op[list[Any]]:
        """The ``_id`` of every item in a query's window (an order, a skip or a limit): what a
        write over that window then names, since ``delete_many``/``update_many`` take no window."""
        if query.limit == 0:
            return []
        args = self._cursor_args(query)
        args["projection"] = {"_id": 1}
        _, found = yield Find(self.spec.name, "find", None, **args)
        return [d["_id"] for d in found]

    def update_where_op(self, query: QuerySpec, sets: dict[str, Any], incs: dict[str, Any],
                        unsets: Sequence[str], actions: Sequence[UpdateAction] = ()) -> Op[int]:
        """One ``update_many`` with the query's filter (a window or an order: each match by its ``_id``)."""
        changes = self._changes(sets, incs, unsets, actions)
        flt = self._filter(query.where)
        name = self.spec.name
        with self.translated():
            if query.limit is None and not query.offset:
                return (yield Call(name, "update_many", flt, changes)).matched_count  # type: ignore[no-any-return]
            done = 0
            for chunk in chunks((yield from self._window_ids_op(query)), 500):
                done += (yield Call(name, "update_many", and_filters({"_id": {"$in": list(chunk)}}, flt),
                                    changes)).matched_count
            return done

    def explain(self, query: QuerySpec) -> dict[str, Any]:
        """The filter, sort, skip and limit sent to MongoDB, and the server's winning plan."""
        args = self._cursor_args(query)
        out = {"backend": "mongodb", "collection": self.spec.name, "filter": args["filter"],
               "sort": args.get("sort", []), "skip": args.get("skip", 0), "limit": args.get("limit"),
               "projection": NO_ID}
        with self.translated():
            plan = self.collection.find(**args).explain()
        winning = (plan.get("queryPlanner") or {}).get("winningPlan", plan)
        out["plan"] = bson.decode(winning.raw, CODEC_OPTIONS) if isinstance(winning, RawBSONDocument) else winning
        return out


def _pipeline(sets: dict[str, Any], incs: dict[str, Any], unsets: Sequence[str],
              actions: Sequence[UpdateAction]) -> list[dict[str, Any]]:
    """The update as an aggregation pipeline: a set kept sorted needs ``$setUnion`` and ``$sortArray``.

    ``$addToSet`` appends in arrival order, while a Set is stored sorted on every backend (so
    equality and ``contains`` are order-free): adding to a set is one pipeline update
    (MongoDB 5.2+, for ``$sortArray``). Values are ``$literal`` so a string starting with '$'
    stays a string.
    """
    fields: dict[str, Any] = {k: {"$literal": v} for k, v in sets.items()}
    for name, amount in incs.items():
        fields[name] = {"$add": [{"$ifNull": ["$" + name, 0]}, {"$literal": amount}]}
    removed = list(unsets)
    for action in actions:
        dotted, op, ref = action.dotted, action.op, "$" + action.dotted
        values = {"$literal": list(action.value)} if op in ("append", "remove", "add", "discard") else None
        if op == "set":
            fields[dotted] = {"$literal": action.value}
        elif op == "inc":
            fields[dotted] = {"$add": [{"$ifNull": [ref, 0]}, {"$literal": action.value}]}
        elif op == "unset":
            removed.append(dotted)
        elif op == "append":
            fields[dotted] = {"$concatArrays": [{"$ifNull": [ref, []]}, values]}
        elif op == "add":
            # Sorted as {v: element} documents: BSON order whatever the element type (a scalar
            # sortBy is not BSON order on every server: SecantusDB cannot order Decimal128 so).
            union = {"$setUnion": [{"$ifNull": [ref, []]}, values]}
            boxed = {"$sortArray": {"input": {"$map": {"input": union, "in": {"v": "$$this"}}}, "sortBy": {"v": 1}}}
            fields[dotted] = {"$map": {"input": boxed, "in": "$$this.v"}}
        else:  # remove, discard: a missing array stays missing
            kept = {"$filter": {"input": ref, "cond": {"$not": [{"$in": ["$$this", values]}]}}}
            fields[dotted] = {"$cond": [{"$isArray": ref}, kept, "$$REMOVE"]}
    stages: list[dict[str, Any]] = []
    if fields:
        stages.append({"$set": fields})
    if removed:
        stages.append({"$unset": removed})
    return stages
