"""One repository for every SQL dialect: items as JSON documents with key columns.

Table layout: ``_hk`` (and ``_rk``) hold the key, ``doc`` the whole stored
document, ``_exp`` the TTL expiry in epoch seconds (NULL without TTL). Expired
rows are filtered out of every read and swept before writes (before every write,
or at most every ``sweep_interval`` seconds where a sweep is a round trip of its own);
a write refused by an expired item's key or unique value sweeps and tries again,
so an expired item is absent for every operation, inserts included.

A write that is one statement runs on its own (autocommitted: one round trip);
one of several statements runs in the operation's transaction (BEGIN).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import ConditionFailed, DuplicateKey, SchemaMismatch
from ...expressions.nodes import Compare, In, Node, Path, holds_for_missing
from ...ops import Emit, Op, collect
from ...pagination import value_at
from ...transaction import _open
from ...updates import UpdateAction
from ..base import Action, QuerySpec, Repository, SyncPlan, chunks
from ..codec import Codec, parse_iso_utc
from .compiler import SQLCompiler
from .jsonfast import dumps
from .jsonfast import loads_exact as _loads_decimal
from .jsonfast import loads_plain as _loads_plain
from .requests import BEGIN, FETCH, ROLLBACK, Execute, Stream

#: SQLite 3.38+ has ``doc -> path`` (the value's JSON text); older ones json_extract(doc, p, p).

if TYPE_CHECKING:
    from .backend import SQLBackend




#: At most this many statements cached per kind and repository (shapes come from code, so a few).
_SHAPES = 256


def _and(*parts: str) -> str:
    kept = [p for p in parts if p != "TRUE"]
    return " AND ".join(kept) if kept else "TRUE"


class SQLRepository(Repository):
    backend: SQLBackend

    def __init__(self, backend: SQLBackend, spec: Any) -> None:
        super().__init__(backend, spec)
        self.dialect = backend.dialect
        self.codec: Codec = backend.codec
        q = self.dialect.quote
        self.table = q(spec.name)
        self.key_columns = ['"_hk"'] if spec.range_key is None else ['"_hk"', '"_rk"']
        self.key_where = " AND ".join(f"{c} = {self.dialect.ph}" for c in self.key_columns)
        self.ttl = spec.ttl_attribute
        self.loads: Any = _loads_plain
        self._last_sweep = 0.0
        cols = ", ".join([*self.key_columns, '"doc"', '"_exp"'])
        marks = ", ".join([self.dialect.ph] * (len(self.key_columns) + 2))
        self._insert_sql = f"INSERT INTO {self.table} ({cols}) VALUES ({marks})"
        self._get_sql = f"SELECT {self.dialect.doc_select()} FROM {self.table} WHERE {self.key_where} AND TRUE"
        #: SELECTs of whole items by one typed top-level equality, by (parts, field, value type): see select.
        self._eq_selects: dict[tuple[Any, ...], str] = {}
        #: UPDATEs of plain sets and removals, by their names: see update_statement.
        self._update_sqls: dict[tuple[Any, ...], str] = {}

    def use_exact_decimals(self) -> None:
        """Read JSON numbers as Decimal (for models with Decimal fields)."""
        self.loads = _loads_decimal

    # -- helpers -------------------------------------------------------------------
    def compiler(self) -> SQLCompiler:
        return SQLCompiler(self.dialect, self.spec, self.codec)

    def _key_params(self, key: tuple[Any, ...]) -> list[Any]:
        return [self.dialect.column_param(k) for k in key]

    def _row_params(self, doc: dict[str, Any]) -> list[Any]:
        params = self._key_params(self.spec.key_of(doc))
        params.append(self.dialect.dumps_param(dumps(doc)))
        params.append(self._expiry(doc))
        return params

    def _rows_params(self, docs: Sequence[dict[str, Any]]) -> list[list[Any]]:
        """``_row_params`` of many documents (insert_many): one comprehension where there is no TTL
        and one key column."""
        if self.ttl or self.spec.range_key is not None:
            return [self._row_params(d) for d in docs]
        name = self.spec.hash_key.parts[0]
        column, text = self.dialect.column_param, self.dialect.dumps_param
        return [[column(d.get(name)), text(dumps(d)), None] for d in docs]

    def _expiry(self, doc: dict[str, Any]) -> float | None:
        if not self.ttl:
            return None
        value = doc.get(self.ttl)
        if value is None:
            return None
        if isinstance(value, str):
            return parse_iso_utc(value).timestamp()
        if isinstance(value, _dt.datetime):
            return value.timestamp()
        return float(value)

    def _live(self, params: list[Any], alias: str = "") -> str:
        if not self.ttl:
            return "TRUE"
        params.append(time.time())
        return f'({alias}"_exp" IS NULL OR {alias}"_exp" > {self.dialect.ph})'

    def _sweep(self) -> Execute:
        """Delete the expired items (before writes to a table with TTL); answers how many."""
        return Execute(f'DELETE FROM {self.table} WHERE "_exp" <= {self.dialect.ph}', [time.time()], "rowcount")

    def _sweep_due(self) -> bool:
        """Whether this write sweeps first: on a TTL table, once per the backend's ``sweep_interval``."""
        if not self.ttl:
            return False
        now = time.monotonic()
        if self._last_sweep and now - self._last_sweep < self.backend.sweep_interval:
            return False
        self._last_sweep = now
        return True

    def _write_op(self, statement: Execute) -> Op[Any]:
        """One write statement, with no expired item in its way (answers what the statement does).

        On its own when no sweep is due; if then refused by a key or a unique value, expired
        items are swept and, if there were any, the statement is tried once more. It is the
        operation's first write (a refusal ends the transaction on PostgreSQL).
        """
        if self._sweep_due():
            yield BEGIN
            yield self._sweep()
            return (yield statement)
        try:
            return (yield statement)
        except self.backend.integrity_errors:
            if not self.ttl or not (yield self._sweep()):
                raise
        return (yield statement)

    # -- schema ---------------------------------------------------------------------
    def key_schema(self) -> dict[str, Any]:
        spec = self.spec
        out = {"hash": [spec.hash_key.dotted, getattr(spec.hash_key.field, "kind", spec.extra.get("hash_kind", "str"))]}
        if spec.range_key is not None:
            out["range"] = [spec.range_key.dotted, getattr(spec.range_key.field, "kind", spec.extra.get("range_kind", "str"))]
        return out

    def sync_op(self, plan: SyncPlan | None = None) -> Op[list[Action]]:
        actions: list[Action] = []
        backend = self.backend
        schema = self.key_schema()
        dry = plan is not None and plan.dry_run
        yield BEGIN
        if not dry:
            yield from backend.ensure_meta_op()
        if dry and not (yield from backend.table_exists_op("_odm_schema")):
            existing = None  # a dry run creates nothing, not even odm's own schema table
        else:
            existing = yield from backend.stored_key_schema_op(self.spec.name)
        if existing is None and (yield from backend.table_exists_op(self.spec.name)):
            raise SchemaMismatch(f"A table named '{self.spec.name}' already exists but was not created by odm; "
                                 "choose another Meta.name. Nothing was changed.")
        if existing is not None and existing != schema:
            raise SchemaMismatch(
                f"The table '{self.spec.name}' exists with key {existing}, but the definition declares "
                f"{schema}; migrate the data or use another name. Nothing was changed.")
        if existing is None:
            cols = []
            for col in self.key_columns:
                kind = schema["hash" if col == '"_hk"' else "range"][1]
                cols.append(f"{col} {self.dialect.key_type(kind)} NOT NULL".replace("  ", " "))
            ddl = (f"CREATE TABLE {self.table} ({', '.join(cols)}, \"doc\" {self.dialect.DOC_TYPE} NOT NULL, "
                   f"\"_exp\" {self.dialect.EXP_TYPE}, PRIMARY KEY ({', '.join(self.key_columns)}))")
            if not dry:
                yield Execute(ddl)
                yield from backend.store_key_schema_op(self.spec.name, schema)
            actions.append(Action("created table", self.spec.name))
        elif plan is not None:
            plan.have("table exists", self.spec.name)
        present = (yield from backend.index_names_op(self.spec.name)) if existing is not None or not dry else set()
        for ix in self.spec.all_index_specs():
            name = self.dialect.index_name(f"{self.spec.name}__{ix.name}")
            what = ", ".join(p.dotted for p in ix.paths) + (" unique" if ix.unique else "")
            if name in present:
                if plan is not None:
                    plan.have("index exists", name, what)
                continue
            if dry:
                actions.append(Action("created index", name, what))
                continue
            comp = self.compiler()
            operands = [(comp.operand(p), p.field) for p in ix.paths]
            try:
                yield Execute(self.dialect.create_index_sql(name, self.table, operands, ix.unique))
            except backend.integrity_errors as exc:
                raise SchemaMismatch(f"Cannot create the unique index {name} on '{self.spec.name}': stored items already "
                                     "share a value; remove the duplicates first. Nothing was changed.") from exc
            actions.append(Action("created index", name, what))
        if self.ttl:
            name = self.dialect.index_name(f"{self.spec.name}___exp")
            if name not in present:
                if not dry:
                    yield Execute(f'CREATE INDEX {self.dialect.quote(name)} ON {self.table} ("_exp")')
                    if existing is not None:
                        yield from self._backfill_expiry_op()
                actions.append(Action("enabled TTL", self.spec.name, f"on {self.ttl}"))
            elif plan is not None:
                plan.have("TTL enabled", self.spec.name, f"on {self.ttl}")
        return actions

    def _backfill_expiry_op(self) -> Op[None]:
        """TTL enabled on an existing table: fill ``_exp`` from each stored item's TTL attribute."""
        cols = ", ".join(self.key_columns)
        found = yield Execute(f'SELECT {cols}, {self.dialect.doc_select()} FROM {self.table} WHERE "_exp" IS NULL',
                              fetch="all")
        rows = [(row[:-1], self._expiry(self.loads(row[-1]))) for row in found]
        for key, expiry in rows:
            if expiry is not None:
                yield Execute(f'UPDATE {self.table} SET "_exp" = {self.dialect.ph} WHERE {self.key_where}', [expiry, *key])

    def _and_condition(self, condition: Node | None, params: list[Any]) -> str:
        """`` AND (<condition>)`` for a WHERE clause (its values appended to ``params``), or ""."""
        if condition is None:
            return ""
        comp = self.compiler()
        sql = f" AND ({comp.compile(condition)})"
        params += comp.params
        return sql

    def _exists_op(self, key: tuple[Any, ...]) -> Op[bool]:
        params = self._key_params(key)
        live = self._live(params)
        row = yield Execute(f"SELECT 1 FROM {self.table} WHERE {self.key_where} AND {live}", params, "one")
        return row is not None

    # -- writes -----------------------------------------------------------------------
    def _is_key_clash(self, exc: BaseException) -> bool:
        """Whether an integrity error is on the key (not on a unique index, whose names end in ``_uniq``)."""
        what = self.backend.constraint_name(exc)
        return not (what and what.endswith("_uniq"))

    def _duplicate(self, exc: BaseException, key: tuple[Any, ...]) -> DuplicateKey:
        if not self._is_key_clash(exc):
            what = self.backend.constraint_name(exc)
            return DuplicateKey(f"An item in '{self.spec.name}' already has this value for the unique index {what}.")
        return self.duplicate_key(key)

    # The statements of the single-item calls, shared by their operations and the per-model fast
    # paths (odm/backends/sql/fast.py): both send the same SQL.
    def insert_statement(self, doc: dict[str, Any]) -> Execute:
        return Execute(self._insert_sql, self._row_params(doc))

    def get_statement(self, key_params: list[Any]) -> Execute:
        """``key_params``: the key's column values (``_key_params``)."""
        if not self.ttl:
            return Execute(self._get_sql, key_params, "one")
        live = self._live(key_params)
        return Execute(f"SELECT {self.dialect.doc_select()} FROM {self.table} WHERE {self.key_where} AND {live}",
                       key_params, "one")

    def update_statement(self, key_params: list[Any], sets: dict[str, Any], incs: dict[str, Any], unsets: Sequence[str],
                         condition: Node | None = None, actions: Sequence[UpdateAction] = ()) -> Execute:
        """The one UPDATE of ``update_op``, answering the new document's row (None: no item matched).

        The statement of plain sets and removals (no increment, action, condition or TTL) depends on
        the names alone: it is made once per set of names.
        """
        plain = not incs and not actions and condition is None and not self.ttl
        if plain:
            shape = (*sets, None, *unsets)
            sql = self._update_sqls.get(shape)
            if sql is not None:
                return Execute(sql, [*self.dialect.set_params({n: dumps(v) for n, v in sets.items()}), *key_params],
                               "one")
        params: list[Any] = []
        assignments = self._assignments(sets, incs, unsets, actions, params)
        params += key_params
        live = self._live(params)
        cond = self._and_condition(condition, params)
        sql = (f"UPDATE {self.table} SET {assignments} WHERE {self.key_where} AND {live}{cond} "
               f"RETURNING {self.dialect.doc_select()}")
        if plain and len(self._update_sqls) < _SHAPES:
            self._update_sqls[shape] = sql
        return Execute(sql, params, "one")

    def insert_op(self, doc: dict[str, Any]) -> Op[None]:
        try:
            yield from self._write_op(self.insert_statement(doc))
        except self.backend.integrity_errors as exc:
            raise self._duplicate(exc, self.spec.key_of(doc)) from exc

    def put_op(self, doc: dict[str, Any], condition: Node | None = None) -> Op[None]:
        params = self._row_params(doc)
        key = self.spec.key_of(doc)
        cols = ", ".join([*self.key_columns, '"doc"', '"_exp"'])
        marks = ", ".join([self.dialect.ph] * len(params))
        try:
            if condition is None:
                keys = ", ".join(self.key_columns)
                yield from self._write_op(Execute(
                    f"INSERT INTO {self.table} ({cols}) VALUES ({marks}) ON CONFLICT ({keys}) "
                    f'DO UPDATE SET "doc" = excluded."doc", "_exp" = excluded."_exp"', params))
                return
            if self.backend.guarded_writes_in_transaction:
                yield BEGIN
            comp = self.compiler()
            cond = comp.compile(condition)
            update_params = [params[-2], params[-1], *params[:-2]]
            live = self._live(update_params)
            update_params += comp.params
            count = yield from self._write_op(Execute(
                f'UPDATE {self.table} SET "doc" = {self.dialect.ph}, "_exp" = {self.dialect.ph} '
                f"WHERE {self.key_where} AND {live} AND ({cond})", update_params, "rowcount"))
            if count == 1:
                return
            if holds_for_missing(condition) and not (yield from self._exists_op(key)):
                yield from self._write_op(Execute(f"INSERT INTO {self.table} ({cols}) VALUES ({marks})", params))
                return
            raise self.condition_failed(key, "save")
        except self.backend.integrity_errors as exc:
            if condition is not None and self._is_key_clash(exc):
                # Another writer inserted the key between our check and our INSERT: the item is no
                # longer missing, so the condition (judged on a missing item) no longer holds.
                raise ConditionFailed(f"The item {self.key_label(key)} in '{self.spec.name}' was written by "
                                      "someone else meanwhile; nothing was written.") from exc
            raise self._duplicate(exc, key) from exc

    def _assignments(self, sets: dict[str, Any], incs: dict[str, Any], unsets: Sequence[str],
                     actions: Sequence[UpdateAction], params: list[Any]) -> str:
        """The SET clause of an update: the new document (and expiry), its values appended to ``params``."""
        set_json = {name: dumps(value) for name, value in sets.items()}
        assignments = f'"doc" = {self.dialect.update_doc_sql(set_json, incs, unsets, params, actions)}'
        if self.ttl and (self.ttl in sets or self.ttl in unsets):
            assignments += f', "_exp" = {self.dialect.ph}'
            params.append(self._expiry(sets) if self.ttl in sets else None)
        return assignments

    def update_op(self, key: tuple[Any, ...], sets: dict[str, Any], incs: dict[str, Any],
                  unsets: Sequence[str], condition: Node | None = None,
                  actions: Sequence[UpdateAction] = ()) -> Op[dict[str, Any] | None]:
        try:
            if condition is not None and self.backend.guarded_writes_in_transaction:
                yield BEGIN
            row = yield from self._write_op(self.update_statement(self._key_params(key), sets, incs, unsets, condition,
                                                                   actions))
            if row is not None:
                return self.loads(row[0])  # type: ignore[no-any-return]
            if condition is None or not (yield from self._exists_op(key)):
                return None
            raise self.condition_failed(key, "update")
        except self.backend.integrity_errors as exc:
            raise self._duplicate(exc, key) from exc

    def delete_op(self, key: tuple[Any, ...], condition: Node | None = None) -> Op[bool]:
        params = self._key_params(key)
        live = self._live(params)
        cond = self._and_condition(condition, params)
        if condition is not None and self.backend.guarded_writes_in_transaction:
            yield BEGIN
        count = yield from self._write_op(
            Execute(f"DELETE FROM {self.table} WHERE {self.key_where} AND {live}{cond}", params, "rowcount"))
        if count:
            return True
        if condition is not None and (not holds_for_missing(condition) or (yield from self._exists_op(key))):
            raise self.condition_failed(key, "delete")
        return False

    def insert_many_op(self, docs: Sequence[dict[str, Any]]) -> Op[None]:
        """All or nothing, in one transaction; a conflict names every clashing key."""
        if not docs:
            return
        rows = self._rows_params(docs)
        cols = ", ".join([*self.key_columns, '"doc"', '"_exp"'])
        try:
            yield BEGIN
            if self.ttl:
                yield self._sweep()
            yield from self.backend.insert_rows_op(self.table, cols, rows)
        except self.backend.integrity_errors as exc:
            yield ROLLBACK  # nothing written; what clashes is read afterwards
            keys = [self.spec.key_of(d) for d in docs]
            clashes = (yield from self._existing_op(keys)) + [k for i, k in enumerate(keys) if k in keys[:i]]
            clashes += [k for k in (yield from self._unique_clashes_op(docs)) if k not in clashes]
            shown = ", ".join(self.key_label(k) for k in clashes[:20]) or "(a unique index value)"
            error = DuplicateKey(f"insert_many into '{self.spec.name}' wrote nothing: {len(clashes) or 'some'} "
                                 f"item(s) clash with existing keys or each other: {shown}.")
            # The contract every backend meets (docs/models.md): what was written, what was refused.
            error.written = []  # type: ignore[attr-defined]
            error.failed = clashes  # type: ignore[attr-defined]
            raise error from exc

    def _unique_clashes_op(self, docs: Sequence[dict[str, Any]]) -> Op[list[tuple[Any, ...]]]:
        """Keys of items whose single-attribute unique value is stored already or repeats in ``docs``."""
        out: list[tuple[Any, ...]] = []
        for ix in self.spec.indexes:
            if not ix.unique or len(ix.paths) != 1:
                continue
            path = Path(ix.paths[0].parts)  # stored values, compared as they are
            values = {i: value_at(d, path) for i, d in enumerate(docs)}
            values = {i: v for i, v in values.items() if isinstance(v, (str, int, float))}
            taken = set()
            for chunk in chunks(sorted(set(values.values()), key=repr), 500):
                found = yield from collect(self.find_op(QuerySpec(where=In(path, tuple(chunk)))))
                taken |= {value_at(d, path) for d in found}
            seen: set[Any] = set()
            for i, v in values.items():
                if v in taken or v in seen:
                    out.append(self.spec.key_of(docs[i]))
                seen.add(v)
        return out

    def _existing_op(self, keys: list[tuple[Any, ...]]) -> Op[list[tuple[Any, ...]]]:
        found = {self.spec.key_of(d) for d in (yield from self.batch_get_op(keys))}
        return [k for k in keys if k in found]

    # -- reads ------------------------------------------------------------------------
    def get_op(self, key: tuple[Any, ...], only: Sequence[str] | None = None) -> Op[dict[str, Any] | None]:
        if only is None:
            row = yield self.get_statement(self._key_params(key))
        else:
            params = self._key_params(key)
            live = self._live(params)
            row = yield Execute(f"SELECT {self.dialect.doc_select(only)} FROM {self.table} WHERE {self.key_where} "
                                f"AND {live}", params, "one")
        return None if row is None else self.loads(row[0])  # type: ignore[no-any-return]

    def batch_get_op(self, keys: Sequence[tuple[Any, ...]]) -> Op[list[dict[str, Any]]]:
        out: list[dict[str, Any]] = []
        width = len(self.key_columns)
        for chunk in chunks(list(keys), 400):
            params: list[Any] = []
            for k in chunk:
                params += self._key_params(k)
            row = "(" + ", ".join([self.dialect.ph] * width) + ")"
            target = self.key_columns[0] if width == 1 else "(" + ", ".join(self.key_columns) + ")"
            values = ", ".join([self.dialect.ph if width == 1 else row] * len(chunk))
            live = self._live(params)
            rows = yield Execute(f"SELECT {self.dialect.doc_select()} FROM {self.table} WHERE {target} IN ({values}) "
                                 f"AND {live}", params, "all")
            out.extend(self.loads(r[0]) for r in rows)
        return out

    def select_sql(self, query: QuerySpec, what: str) -> tuple[str, list[Any]]:
        comp = self.compiler()
        where = comp.where(query.where)
        params = comp.params
        live = self._live(params)
        sql = f"SELECT {what} FROM {self.table} WHERE {_and(where, live)}"
        if query.order and what != "COUNT(*)":
            sql += " ORDER BY " + comp.order(query.order)
        if query.limit is not None or query.offset:
            sql += f" LIMIT {self.dialect.ph} OFFSET {self.dialect.ph}"
            params += [query.limit if query.limit is not None else self.backend.no_limit, query.offset]
        return sql, params

    def _eq_param(self, field: Any, value: Any) -> Any:
        """The parameter the compiler binds for ``value`` compared with a typed, non-key path (no TTL)."""
        return self.dialect.json_param(self.codec.encode_value(value, field, False), field)

    def select(self, query: QuerySpec) -> tuple[str, list[Any]]:
        """``select_sql(query, doc_select(query.only))``; the statement of a plain equality on a typed field
        (``Model.query(field=v)``: no order, window, projection, TTL) is compiled once per shape.

        A shape is cached only when its first compilation's parameters are exactly the one value
        bound as the compiler binds it (not a key column, an untyped path or a Decimal's exact form).
        """
        where = query.where
        if (type(where) is not Compare or where.op != "eq" or query.order or query.limit is not None or query.offset
                or query.only is not None or self.ttl):
            return self.select_sql(query, self.dialect.doc_select(query.only))
        path, value = where.path, where.value
        field = path.field
        shape = (path.parts, field, type(value))
        sql = self._eq_selects.get(shape)
        if sql is not None:
            return sql, [self._eq_param(field, value)]
        sql, params = self.select_sql(query, self.dialect.doc_select())
        if (field is not None and field.kind != "decimal" and all(path.parts != p.parts for p in self.spec.key_paths)
                and params == [self._eq_param(field, value)] and len(self._eq_selects) < _SHAPES):
            self._eq_selects[shape] = sql
        return sql, params

    def find(self, query: QuerySpec) -> Iterator[dict[str, Any]]:
        """The matches; outside a transaction without the operation machinery (the query's
        statement from ``select``, read on a session of its own exactly as ``iterate`` would)."""
        if _open.get() or not self.backend.fast_paths:
            return super().find(query)
        return self._find_direct(query)

    def _find_direct(self, query: QuerySpec) -> Iterator[dict[str, Any]]:
        sql, params = self.select(query)
        loads = self.loads
        session = self.backend.session()
        try:
            session.send(Stream(sql, params))
            while rows := session.send(FETCH):
                for row in rows:
                    yield loads(row[0])
        except BaseException as exc:  # GeneratorExit too: the reader stopped early
            session.abort(exc)
            raise
        session.finish()

    def find_op(self, query: QuerySpec) -> Op[None]:
        """Rows from a snapshot, a batch per round trip, each emitted as documents."""
        sql, params = self.select(query)
        loads = self.loads
        yield Stream(sql, params)
        while rows := (yield FETCH):
            yield Emit([loads(row[0]) for row in rows])

    def count_op(self, query: QuerySpec) -> Op[int]:
        if query.limit is not None or query.offset:
            sql, params = self.select_sql(query, "1")
            sql = f"SELECT COUNT(*) FROM ({sql}) AS q"
        else:
            sql, params = self.select_sql(query, "COUNT(*)")
        row = yield Execute(sql, params, "one")
        return int(row[0])

    def count_by_op(self, query: QuerySpec, path: Path) -> Op[dict[Any, int]]:
        """``GROUP BY`` the value's stored JSON text: exact digits on both dialects (no doubles).

        A window or the TTL attribute (its expiry handling) takes the generic streamed way.
        Texts of one value ("10.5", "10.50") are merged once decoded, as the generic way does.
        """
        if query.limit is not None or query.offset or path.field is None or path.parts == (self.ttl,):
            return (yield from super().count_by_op(query, path))
        text, pair = self.dialect.json_text(path.parts)
        sql, params = self.select_sql(query.but(order=()), f"{text}, COUNT(*)")
        rows = yield Execute(f"{sql} GROUP BY {text}", params, "all")
        decode = self.value_decoder(path)
        loads = self.loads
        counts: dict[Any, int] = {}
        for raw, n in rows:
            stored = None if raw is None else loads(raw)
            if pair and isinstance(stored, list):
                stored = stored[0]  # json_extract(doc, p, p): the value twice in an array
            value = decode(stored)
            counts[value] = counts.get(value, 0) + int(n)
        return counts

    def delete_where_op(self, query: QuerySpec) -> Op[int]:
        if query.limit is not None or query.offset or query.order:
            keys = ", ".join(self.key_columns)
            inner, params = self.select_sql(query, keys)
            target = self.key_columns[0] if len(self.key_columns) == 1 else f"({keys})"
            sql = f"DELETE FROM {self.table} WHERE {target} IN ({inner})"
        else:
            comp = self.compiler()
            where = comp.where(query.where)
            params = comp.params
            sql = f"DELETE FROM {self.table} WHERE {_and(where, self._live(params))}"
        count = yield from self._write_op(Execute(sql, params, "rowcount"))
        return int(count)

    def update_where_op(self, query: QuerySpec, sets: dict[str, Any], incs: dict[str, Any],
                        unsets: Sequence[str], actions: Sequence[UpdateAction] = ()) -> Op[int]:
        """One ``UPDATE ... WHERE`` (a window or an order: ``WHERE key IN (SELECT ...)``)."""
        params: list[Any] = []
        assignments = self._assignments(sets, incs, unsets, actions, params)
        if query.limit is not None or query.offset or query.order:
            keys = ", ".join(self.key_columns)
            inner, inner_params = self.select_sql(query, keys)
            target = self.key_columns[0] if len(self.key_columns) == 1 else f"({keys})"
            where = f"{target} IN ({inner})"
            params += inner_params
        else:
            comp = self.compiler()
            condition = comp.where(query.where)
            params += comp.params
            where = _and(condition, self._live(params))
        try:
            count = yield from self._write_op(Execute(f"UPDATE {self.table} SET {assignments} WHERE {where}",
                                                      params, "rowcount"))
        except self.backend.integrity_errors as exc:
            what = self.backend.constraint_name(exc)
            raise DuplicateKey(f"Updating items in '{self.spec.name}' would give two of them the same value for "
                               f"the unique index {what}; nothing was written.") from exc
        return int(count)

    def explain(self, query: QuerySpec) -> dict[str, Any]:
        sql, params = self.select_sql(query, self.dialect.doc_select())
        shown = [self.dialect.explain_param(p) for p in params]
        return {"backend": self.dialect.name, "sql": sql, "params": shown, "plan": self.backend.plan(sql, params)}
