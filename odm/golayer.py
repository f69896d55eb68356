"""The Go package's layer for services that work with plain dicts.

``BackendSupport`` -> ``Backend`` -> ``Repository`` with the Go names and
semantics (see docs/go-layer.md). A definition dict becomes the same
:class:`~odm.schema.TableSpec` a model's Meta does, on the same backend
repositories, so both layers share one implementation per backend.

Every input is checked before any request (attribute names by ``odm.attributes``,
values by ``odm.plain``), and only ``odm`` errors leave this module, each naming
the repository and showing the filter as the caller wrote it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from . import config
from .attributes import name_problem, text_problem
from .backends import base
from .backends.base import QuerySpec
from .errors import ConditionFailed, ConfigError, NotFound, ODMError, QueryError, ValidationError
from .expressions.nodes import And, Compare, Exists, In, Like, Node, Path
from .fields import Bytes, DateTime, Field, Float, Invalid, SortKey, String
from .ops import Op, collect
from .options import capacity_problem, ttl_seconds_problem
from .pagination import full_order
from .plain import value_problem
from .query import MAX_WINDOW
from .schema import Index, IndexSpec, SecondaryIndexSpec, TableSpec

_KEY_FIELDS: dict[str, type[Field]] = {"S": String, "N": Float, "B": Bytes}
_DEFINITION_KEYS = {
    "name", "indexes", "hashKey", "hashKeyType", "rangeKey", "rangeKeyType", "readCapacity",
    "writeCapacity", "GSI", "LSI", "enableTtl", "ttlAttribute", "ttl", "customId",
}
_INDEX_KEYS = {"hashKey", "hashKeyType", "rangeKey", "rangeKeyType", "readCapacity", "writeCapacity", "projection"}
#: Longest repr of a filter or value quoted in an error message.
_SHOWN = 200
#: Python errors a hostile value can raise inside a driver or codec; never let them escape.
_INPUT_ERRORS = (TypeError, ValueError, ArithmeticError, UnicodeError)


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "...(truncated)"


class Filter:
    """Equalities ANDed together (``match``/``set``), ``match_any`` and ``match_pattern``.

    Each call checks its key and value at once (``QueryError``), so a bad filter
    fails where it is written; ``repr`` shows the calls as written.
    """

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.nodes: list[Node] = []
        self._calls: list[str] = []
        if values is not None and not isinstance(values, Mapping):
            raise QueryError(f"Filter() takes a dict of attribute names to values, not {_short(repr(values))}.")
        self._initial = dict(values or {})
        for key, value in self._initial.items():
            self._match(key, value)

    def _match(self, key: str, value: Any) -> None:
        path = _path(key)
        if value is None:
            self.nodes.append(~Exists(path))
            return
        _check_value(key, value)
        self.nodes.append(Compare("eq", path, value))

    def match(self, key: str, value: Any) -> Filter:
        """Items whose ``key`` equals ``value`` exactly (a dict is matched as a whole; None: missing)."""
        self._match(key, value)
        self._calls.append(f".match({key!r}, {value!r})")
        return self

    set = match

    def match_any(self, key: str, values: Iterable[Any]) -> Filter:
        """Items whose ``key`` equals one of ``values`` (a list, tuple or set)."""
        path = _path(key)
        if isinstance(values, (str, bytes, bytearray, Mapping)) or not isinstance(values, Iterable):
            raise QueryError(f"match_any({key!r}, ...) takes a list of values, not {_short(repr(values))}.")
        values = tuple(values)
        for value in values:
            if value is None:
                raise QueryError(f"match_any({key!r}, ...) cannot hold None; use match({key!r}, None) for a missing attribute.")
            _check_value(key, value)
        self.nodes.append(In(path, values))
        self._calls.append(f".match_any({key!r}, {list(values)!r})")
        return self

    def match_pattern(self, key: str, pattern: str) -> Filter:
        """Case-sensitive SQL-LIKE: ``%`` any run, ``_`` one character, ``\\`` escapes."""
        path = _path(key)
        if not isinstance(pattern, str):
            raise QueryError(f"match_pattern({key!r}, ...) takes a string pattern, not {_short(repr(pattern))}.")
        problem = text_problem(pattern)
        if problem:
            raise QueryError(f"match_pattern({key!r}, ...) cannot use that pattern: {problem}")
        self.nodes.append(Like(path, pattern))
        self._calls.append(f".match_pattern({key!r}, {pattern!r})")
        return self

    def node(self) -> Node | None:
        return And.of(*self.nodes) if self.nodes else None

    def __repr__(self) -> str:
        start = f"Filter({self._initial!r})" if self._initial else "Filter()"
        return _short(start + "".join(self._calls))


def _path(key: Any) -> Path:
    problem = name_problem(key)
    if problem:
        raise QueryError(f"A filter key must be an attribute name: {problem}")
    return Path((key,))


def _check_value(key: str, value: Any) -> None:
    problem = value_problem(value)
    if problem:
        raise QueryError(f"Cannot compare {key!r} with {_short(repr(value))}: {problem}")


def _as_filter(value: Filter | Mapping[str, Any] | None) -> Filter:
    if value is None:
        return Filter()
    if isinstance(value, Filter):
        return value
    if isinstance(value, Mapping):
        return Filter(value)
    raise QueryError(f"A filter must be a dict or odm.Filter, not {_short(repr(value))}.")


def _shown(value: Filter | Mapping[str, Any] | None) -> str:
    """The filter as the caller wrote it, for messages."""
    return "{}" if value is None else _short(repr(value))


def definition_spec(name: str, definition: Mapping[str, Any]) -> TableSpec:
    """The Go definition map as a TableSpec; errors name the repository and key.

    Every index reads its key types from its own options (``hashKeyType``,
    ``rangeKeyType``); an attribute that is already a key elsewhere keeps that type,
    and declaring it with another type is an error.
    """
    where = f"Repository definition '{name}'"
    if not isinstance(definition, Mapping):
        raise ConfigError(f"{where} must be a dict.")
    unknown = set(definition) - _DEFINITION_KEYS
    if unknown:
        raise ConfigError(f"{where} has unknown keys {sorted(unknown)}; known keys are: {', '.join(sorted(_DEFINITION_KEYS))}.")
    kinds: dict[str, str] = {}

    def attribute(attr: Any, label: str) -> str:
        problem = name_problem(attr)
        if problem:
            raise ConfigError(f"{where}: '{label}' must name an attribute: {problem}")
        return attr  # type: ignore[no-any-return]

    def key_path(attr: Any, kind_key: str, source: Mapping[str, Any], label: str) -> Path:
        attr = attribute(attr, label + kind_key.removesuffix("Type"))
        kind = source.get(kind_key) or kinds.get(attr) or "S"
        if kind not in _KEY_FIELDS:
            raise ConfigError(f"{where}: '{label}{kind_key}' must be 'S', 'N' or 'B', not {kind!r}.")
        if kinds.setdefault(attr, kind) != kind:
            raise ConfigError(f"{where}: '{label}{kind_key}' declares '{attr}' as {kind!r}, but another key "
                              f"declares it as {kinds[attr]!r}; an attribute has one type.")
        field = _KEY_FIELDS[kind]()
        field.bind(dict, attr)
        return Path((attr,), field)

    hash_path = key_path(definition.get("hashKey") or "id", "hashKeyType", definition, "")
    range_name = definition.get("rangeKey")
    range_path = key_path(range_name, "rangeKeyType", definition, "") if range_name else None
    def checked(key: str, value: Any, problem: Callable[[Any], str | None]) -> Any:
        msg = problem(value)
        if msg:
            raise ConfigError(f"{where}: '{key}' {msg}.")
        return value

    raw_indexes = definition.get("indexes") or []
    if not isinstance(raw_indexes, (list, tuple)):
        raise ConfigError(f"{where}: 'indexes' must be a list of attribute names or odm.Index, not {raw_indexes!r}.")
    indexes = []
    for entry in raw_indexes:
        ix = Index(entry) if isinstance(entry, str) else entry
        if not isinstance(ix, Index):
            raise ConfigError(f"{where}: 'indexes' entries must be names or odm.Index, not {entry!r}.")
        for f in ix.fields:
            attribute(f, "indexes")
        label = "ix_" + "_".join(ix.fields) + ("_uniq" if ix.unique else "")
        indexes.append(IndexSpec(ix.name or label, tuple(Path((f,)) for f in ix.fields), ix.unique))
    secondary = []
    for kind_key, local in (("GSI", False), ("LSI", True)):
        section = definition.get(kind_key) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"{where}: '{kind_key}' must map index names to their options.")
        for ix_name, opts in section.items():
            opts = opts or {}
            label = f"{kind_key}.{ix_name}."
            if not isinstance(opts, Mapping) or set(opts) - _INDEX_KEYS:
                raise ConfigError(f"{where}: '{kind_key}.{ix_name}' must be a dict with keys among: "
                                  f"{', '.join(sorted(_INDEX_KEYS))}.")
            sec_hash = None if local else key_path(opts.get("hashKey", ix_name), "hashKeyType", opts, label)
            sec_range = key_path(opts["rangeKey"], "rangeKeyType", opts, label) if opts.get("rangeKey") else None
            secondary.append(SecondaryIndexSpec(ix_name, sec_hash, sec_range, local,
                                                checked(label + "readCapacity", opts.get("readCapacity"), capacity_problem),
                                                checked(label + "writeCapacity", opts.get("writeCapacity"), capacity_problem),
                                                opts.get("projection", "ALL")))
    ttl_attr = None
    ttl_seconds = None
    checked("ttl", definition.get("ttl"), ttl_seconds_problem)  # checked even where TTL is off: a typo shows now
    if definition.get("enableTtl") and definition.get("ttlAttribute"):
        ttl_attr = attribute(definition["ttlAttribute"], "ttlAttribute")
        ttl_seconds = definition.get("ttl")
    elif definition.get("enableTtl"):
        raise ConfigError(f"{where}: 'enableTtl' needs 'ttlAttribute'.")
    return TableSpec(
        name=definition.get("name") or name, hash_key=hash_path, range_key=range_path,
        indexes=tuple(indexes), secondary=tuple(secondary),
        read_capacity=checked("readCapacity", definition.get("readCapacity"), capacity_problem),
        write_capacity=checked("writeCapacity", definition.get("writeCapacity"), capacity_problem),
        ttl_attribute=ttl_attr, ttl_seconds=ttl_seconds,
        extra={"hash_kind": hash_path.field.kind,
               "range_kind": range_path.field.kind if range_path else None, "auto_id": not definition.get("hashKey")},
    )


class Repository:
    """A table of plain dicts with the Go package's semantics."""

    def __init__(self, name: str, definition: dict[str, Any], repo: base.Repository) -> None:
        self.name = name
        self.definition = definition
        self.repo = repo
        spec = repo.spec
        self.spec = spec
        #: How every error message of this repository names it.
        self.label = f"repository '{name}'"
        self._ttl_field: Field | None = None
        self._special: dict[str, tuple[Field, Any, Any]] = {}
        self._plain = repo.codec.dec_plain()
        codec = repo.codec
        # Table and index keys are typed (hashKeyType/rangeKeyType): their values are checked
        # and converted like a model's key fields, on every backend.
        key_paths = [*spec.key_paths, *(p for ix in spec.secondary for p in (ix.hash_key, ix.range_key) if p is not None)]
        for path in key_paths:
            self._special.setdefault(path.parts[0], (path.field, codec.field_encoder(path.field, False),
                                                     codec.field_decoder(path.field, False)))
        if spec.ttl_attribute:
            ttl_field = DateTime()
            ttl_field.bind(dict, spec.ttl_attribute)
            self._ttl_field = ttl_field
            self._special[spec.ttl_attribute] = (ttl_field, codec.field_encoder(ttl_field, True),
                                                 codec.field_decoder(ttl_field, True))

    # -- errors -----------------------------------------------------------------------
    @contextmanager
    def _calling(self, writing: bool) -> Iterator[None]:
        """Backend errors name this repository; a Python error from a value becomes an odm error."""
        try:
            yield
        except ODMError as exc:
            text = str(exc)
            if self.label not in text:
                exc.args = (f"In {self.label}: {text}",)
            raise
        except _INPUT_ERRORS as exc:
            if writing:
                raise ValidationError({"_schema": [f"A value cannot be stored: {exc}."]}, self._item) from exc
            raise QueryError(f"Cannot query {self.label}: a value cannot be compared: {exc}.") from exc

    @property
    def _item(self) -> str:
        return f"item for {self.label}"

    # -- conversions ------------------------------------------------------------------
    def _encode(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, value in data.items():
            problem = name_problem(key)
            if problem:
                shown = key if isinstance(key, str) and key.isprintable() else repr(key)
                errors[_short(shown)] = [problem]
                continue
            if value is None:
                continue
            problem = value_problem(value)
            if problem:
                errors[key] = [problem]
                continue
            special = self._special.get(key)
            if special is None:
                out[key] = self.repo.codec.encode_any(value)
                continue
            field, enc, _ = special
            try:
                loaded = field.load(value)
            except Invalid as exc:
                errors[key] = exc.messages
                continue
            out[key] = enc(loaded) if enc else loaded
        if errors:
            raise ValidationError(errors, self._item)
        return out

    def _decode(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(doc) if self._plain is None else self._plain(doc)
        for key, (_, _, dec) in self._special.items():
            value = out.get(key)
            if value is not None and dec is not None:
                out[key] = dec(value)
        return out

    def _query(self, flt: Filter | Mapping[str, Any] | None, **kw: Any) -> QuerySpec:
        node = _as_filter(flt).node()
        return QuerySpec(where=self._typed(node) if node is not None else None, **kw)

    def _typed(self, node: Node) -> Node:
        """Give key and TTL paths their fields so values are converted like stored ones."""
        if hasattr(node, "items"):
            return type(node)(tuple(self._typed(n) for n in node.items))  # type: ignore[call-arg, attr-defined]
        if hasattr(node, "item"):
            return type(node)(self._typed(node.item))  # type: ignore[call-arg, attr-defined]
        path = getattr(node, "path", None)
        if path is None or path.parts[0] not in self._special:
            return node
        field = self._special[path.parts[0]][0]
        try:
            if isinstance(node, Compare):
                return dataclasses.replace(node, path=Path(path.parts, field), value=field.load(node.value))
            if isinstance(node, In):
                return dataclasses.replace(node, path=Path(path.parts, field),
                                           values=tuple(field.load(v) for v in node.values))
        except Invalid as exc:
            raise QueryError(f"Cannot compare '{path.dotted}' in {self.label} with that value: {exc.messages}") from None
        return dataclasses.replace(node, path=Path(path.parts, field))  # type: ignore[call-arg, type-var]

    def _key(self, doc: Mapping[str, Any]) -> tuple[Any, ...]:
        return self.spec.key_of(doc)  # type: ignore[arg-type]

    # -- the Go methods ------------------------------------------------------------------
    # Each method is one operation (odm.ops), run by the sync method and awaited by its ``a`` twin.
    def save(self, data: Mapping[str, Any], flt: Filter | Mapping[str, Any] | None = None) -> dict[str, Any]:
        """No filter: insert (existing key -> DuplicateKey). With a filter: update the one match."""
        return self.repo.backend.run(self._save_op(data, flt))

    async def asave(self, data: Mapping[str, Any], flt: Filter | Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await self.repo.backend.arun(self._save_op(data, flt))

    def _save_op(self, data: Mapping[str, Any], flt: Filter | Mapping[str, Any] | None) -> Op[dict[str, Any]]:
        if not isinstance(data, Mapping):
            raise ValidationError({"_schema": [f"save() takes a dict, not {type(data).__name__}."]}, self._item)
        if flt is None:
            return (yield from self._insert_op(data))
        with self._calling(True):
            query = self._query(flt, limit=2)
            sets = self._encode(data)  # checked before any request
            matches = yield from collect(self.repo.find_op(query))
            if not matches:
                raise NotFound(f"No item in {self.label} matches {_shown(flt)}; nothing was saved.")
            if len(matches) > 1:
                raise QueryError(f"Several items in {self.label} match {_shown(flt)}; save() updates exactly one, "
                                 "so nothing was saved. Narrow the filter.")
            key = self._key(matches[0])
            for name, value in zip((p.parts[0] for p in self.spec.key_paths), key, strict=True):
                if name in sets and sets.pop(name) != value:
                    raise QueryError(f"save() cannot change the key attribute '{name}' in {self.label}; "
                                     "delete and insert instead.")
            unsets = [k for k, v in data.items() if v is None and k not in self._special]
            if not sets and not unsets:
                return self._decode(matches[0])
            # One atomic update, conditioned on the filter: a concurrent change that makes the item stop
            # matching is refused instead of being overwritten.
            try:
                updated = yield from self.repo.update_op(key, sets, {}, unsets, query.where)
            except ConditionFailed as exc:
                raise NotFound(f"The item in {self.label} stopped matching {_shown(flt)} before it was saved; "
                               "nothing was saved.") from exc
            if updated is None:
                raise NotFound(f"The item in {self.label} matching {_shown(flt)} was deleted before it was saved.")
            return self._decode(updated)

    def _insert_op(self, data: Mapping[str, Any]) -> Op[dict[str, Any]]:
        item = dict(data)
        hash_name = self.spec.hash_key.parts[0]
        if item.get(hash_name) is None and self.spec.extra.get("auto_id"):
            item[hash_name] = str(uuid.uuid4())
        self._fill_ttl(item)
        doc = self._encode(item)
        missing = [p.dotted for p in self.spec.key_paths if doc.get(p.parts[0]) is None]
        if missing:
            raise ValidationError({m: ["Missing data for required field."] for m in missing}, self._item)
        with self._calling(True):
            yield from self.repo.insert_op(doc)
        return self._decode(doc)

    def _fill_ttl(self, item: dict[str, Any]) -> None:
        attr = self.spec.ttl_attribute
        if attr and item.get(attr) is None and self.spec.ttl_seconds:
            item[attr] = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=float(self.spec.ttl_seconds))

    def get_one(self, flt: Filter | Mapping[str, Any] | None) -> dict[str, Any]:
        return self.repo.backend.run(self._get_one_op(flt))

    async def aget_one(self, flt: Filter | Mapping[str, Any] | None) -> dict[str, Any]:
        return await self.repo.backend.arun(self._get_one_op(flt))

    def _get_one_op(self, flt: Filter | Mapping[str, Any] | None) -> Op[dict[str, Any]]:
        with self._calling(False):
            for doc in (yield from collect(self.repo.find_op(self._query(flt, limit=1)))):
                return self._decode(doc)
        raise NotFound(f"No item in {self.label} matches {_shown(flt)}.")

    def get_all(self, flt: Filter | Mapping[str, Any] | None = None, order: str | None = None,
                sorting: str | None = None, limit: int = 0, offset: int = 0) -> list[dict[str, Any]]:
        return self.repo.backend.run(self._get_all_op(flt, order, sorting, limit, offset))

    async def aget_all(self, flt: Filter | Mapping[str, Any] | None = None, order: str | None = None,
                       sorting: str | None = None, limit: int = 0, offset: int = 0) -> list[dict[str, Any]]:
        return await self.repo.backend.arun(self._get_all_op(flt, order, sorting, limit, offset))

    def _get_all_op(self, flt: Filter | Mapping[str, Any] | None, order: str | None,
                    sorting: str | None, limit: int, offset: int) -> Op[list[dict[str, Any]]]:
        # "" (Go's zero value) means the default, as None does: ascending, no order.
        if sorting is not None and (not isinstance(sorting, str) or sorting.lower() not in ("asc", "desc", "")):
            raise QueryError(f"get_all() on {self.label}: sorting must be 'asc' or 'desc', not {_short(repr(sorting))}.")
        if order is not None and order != "":
            problem = name_problem(order)
            if problem:
                raise QueryError(f"get_all() on {self.label}: order must be an attribute name: {problem}")
        if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_WINDOW for v in (limit, offset)):
            raise QueryError(f"get_all() on {self.label}: limit and offset must be non-negative 64-bit integers "
                             "(limit=0 means no limit).")
        keys: tuple[SortKey, ...] = ()
        if order:
            field = self._special.get(order, (None,))[0]
            keys = (SortKey(Path((order,), field), (sorting or "asc").lower() == "desc"),)
            if self.repo.backend.features.supports_arbitrary_order:
                # Ties (equal values; objects and arrays, which are not compared) go by key,
                # ascending, so windows are stable and every backend returns the same list.
                # DynamoDB orders by a range key only, unique within its partition.
                keys = full_order(self.spec, keys)
        with self._calling(False):
            spec = self._query(flt, order=keys, limit=limit or None, offset=offset)
            return [self._decode(d) for d in (yield from collect(self.repo.find_op(spec)))]

    def delete_one(self, flt: Filter | Mapping[str, Any] | None) -> None:
        self.repo.backend.run(self._delete_one_op(flt))

    async def adelete_one(self, flt: Filter | Mapping[str, Any] | None) -> None:
        await self.repo.backend.arun(self._delete_one_op(flt))

    def _delete_one_op(self, flt: Filter | Mapping[str, Any] | None) -> Op[None]:
        with self._calling(False):
            for doc in (yield from collect(self.repo.find_op(self._query(flt, limit=1)))):
                yield from self.repo.delete_op(self._key(doc))
                return
        raise NotFound(f"No item in {self.label} matches {_shown(flt)}; nothing was deleted.")

    def delete_all(self, flt: Filter | Mapping[str, Any] | None = None) -> int:
        return self.repo.backend.run(self._delete_all_op(flt))

    async def adelete_all(self, flt: Filter | Mapping[str, Any] | None = None) -> int:
        return await self.repo.backend.arun(self._delete_all_op(flt))

    def _delete_all_op(self, flt: Filter | Mapping[str, Any] | None) -> Op[int]:
        with self._calling(False):
            return (yield from self.repo.delete_where_op(self._query(flt)))

    def __repr__(self) -> str:
        return f"<Repository {self.name!r} table={self.spec.name!r}>"


class Backend:
    """A built backend: defines repositories (tables/collections) by name."""

    def __init__(self, name: str, backend: base.Backend) -> None:
        self.name = name
        self.backend = backend
        self._repos: dict[str, Repository] = {}
        self._closed = False

    def define_repository(self, name: str, definition: dict[str, Any]) -> Repository:
        existing = self._repos.get(name)
        if existing is not None:
            if existing.definition != definition:
                raise ConfigError(f"The repository '{name}' is already defined with a different definition.")
            return existing
        spec = definition_spec(name, definition)
        stored = self.backend.repository(spec)
        stored.use_exact_decimals()  # untyped numbers read back as int or exact Decimal (docs/go-layer.md)
        repo = Repository(name, dict(definition), stored)
        repo.repo.sync()
        self._repos[name] = repo
        return repo

    def get_repository(self, name: str) -> Repository:
        repo = self._repos.get(name)
        if repo is None:
            known = ", ".join(self._repos) or "none yet"
            raise ConfigError(f"No repository named '{name}' is defined on the {self.name} backend (defined: {known}).")
        return repo

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self.backend.close()

    async def ashutdown(self) -> None:
        """Close the async connections too (a backend used with ``await``)."""
        if not self._closed:
            self._closed = True
            await self.backend.aclose()

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"


class BackendSupport:
    """The Go ``BackendManager``: backends by name, built on first use and cached."""

    def __init__(self, infos: Mapping[str, Mapping[str, Any]]) -> None:
        self._infos = config.backend_infos(infos)
        self._built: dict[str, Backend] = {}

    def supported_backends(self) -> list[str]:
        """The backend names this package can build (whatever was configured)."""
        return [*config.BACKENDS, *config.ALIASES]

    def get_backend(self, name: str) -> Backend:
        if config.backend_name(name, "get_backend()") in self._built:
            return self._built[name]
        if name not in self._infos:
            raise ConfigError(f"The backend '{name}' is not configured; configured: {', '.join(self._infos) or 'none'}.")
        backend = Backend(name, config.build_backend(name, self._infos[name], f"backend '{name}'"))
        self._built[name] = backend
        return backend

    def __repr__(self) -> str:
        return f"<BackendSupport {[(k, config.redact(v)) for k, v in self._infos.items()]}>"


__all__ = ["Backend", "BackendSupport", "Filter", "Repository", "definition_spec"]
