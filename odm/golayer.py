"""The Go package's layer for services that work with plain dicts.

``BackendSupport`` -> ``Backend`` -> ``Repository`` with the Go names and
semantics (see docs/go-layer.md). A definition dict becomes the same
:class:`~odm.schema.TableSpec` a model's Meta does, on the same backend
repositories, so both layers share one implementation per backend.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from . import config
from .backends import base
from .backends.base import QuerySpec
from .errors import ConditionFailed, ConfigError, NotFound, QueryError, ValidationError
from .expressions.nodes import And, Compare, Exists, In, Like, Node, Path
from .fields import Bytes, DateTime, Field, Float, Invalid, SortKey, String, plain_data_problem
from .schema import Index, IndexSpec, SecondaryIndexSpec, TableSpec

_KEY_FIELDS: dict[str, type[Field]] = {"S": String, "N": Float, "B": Bytes}
_DEFINITION_KEYS = {
    "name", "indexes", "hashKey", "hashKeyType", "rangeKey", "rangeKeyType", "readCapacity",
    "writeCapacity", "GSI", "LSI", "enableTtl", "ttlAttribute", "ttl", "customId",
}


class Filter:
    """Equalities ANDed together (``match``/``set``), ``match_any`` and ``match_pattern``."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.nodes: list[Node] = []
        for key, value in (values or {}).items():
            self.match(key, value)

    def match(self, key: str, value: Any) -> Filter:
        """Items whose ``key`` equals ``value`` exactly (a dict is matched as a whole)."""
        self.nodes.append(Compare("eq", _path(key), value) if value is not None else ~Exists(_path(key)))
        return self

    set = match

    def match_any(self, key: str, values: Iterable[Any]) -> Filter:
        self.nodes.append(In(_path(key), tuple(values)))
        return self

    def match_pattern(self, key: str, pattern: str) -> Filter:
        """Case-sensitive SQL-LIKE: ``%`` any run, ``_`` one character, ``\\`` escapes."""
        if not isinstance(pattern, str):
            raise QueryError(f"match_pattern({key!r}, ...) takes a string pattern, not {pattern!r}.")
        self.nodes.append(Like(_path(key), pattern))
        return self

    def node(self) -> Node | None:
        return And.of(*self.nodes) if self.nodes else None

    def __repr__(self) -> str:
        return f"Filter({self.nodes!r})"


def _path(key: Any) -> Path:
    if not isinstance(key, str) or not key:
        raise QueryError(f"A filter key must be a non-empty attribute name, not {key!r}.")
    return Path((key,))


def _as_filter(value: Filter | Mapping[str, Any] | None) -> Filter:
    if value is None:
        return Filter()
    if isinstance(value, Filter):
        return value
    if isinstance(value, Mapping):
        return Filter(value)
    raise QueryError(f"A filter must be a dict or odm.Filter, not {value!r}.")


def definition_spec(name: str, definition: Mapping[str, Any]) -> TableSpec:
    """The Go definition map as a TableSpec; errors name the repository and key."""
    where = f"Repository definition '{name}'"
    if not isinstance(definition, Mapping):
        raise ConfigError(f"{where} must be a dict.")
    unknown = set(definition) - _DEFINITION_KEYS
    if unknown:
        raise ConfigError(f"{where} has unknown keys {sorted(unknown)}; known keys are: {', '.join(sorted(_DEFINITION_KEYS))}.")

    def key_path(attr: str, kind_key: str) -> Path:
        kind = definition.get(kind_key) or "S"
        if kind not in _KEY_FIELDS:
            raise ConfigError(f"{where}: '{kind_key}' must be 'S', 'N' or 'B', not {kind!r}.")
        field = _KEY_FIELDS[kind]()
        field.bind(dict, attr)
        return Path((attr,), field)

    hash_name = definition.get("hashKey") or "id"
    hash_path = key_path(hash_name, "hashKeyType")
    range_name = definition.get("rangeKey")
    range_path = key_path(range_name, "rangeKeyType") if range_name else None
    indexes = []
    for entry in definition.get("indexes") or []:
        ix = Index(entry) if isinstance(entry, str) else entry
        if not isinstance(ix, Index):
            raise ConfigError(f"{where}: 'indexes' entries must be names or odm.Index, not {entry!r}.")
        label = "ix_" + "_".join(ix.fields) + ("_uniq" if ix.unique else "")
        indexes.append(IndexSpec(ix.name or label, tuple(Path((f,)) for f in ix.fields), ix.unique))
    secondary = []
    for kind_key, local in (("GSI", False), ("LSI", True)):
        for ix_name, opts in (definition.get(kind_key) or {}).items():
            opts = opts or {}
            sec_hash = None if local else key_path(opts.get("hashKey", ix_name), "hashKeyType")
            sec_range = key_path(opts["rangeKey"], "rangeKeyType") if opts.get("rangeKey") else None
            secondary.append(SecondaryIndexSpec(ix_name, sec_hash, sec_range, local,
                                                opts.get("readCapacity"), opts.get("writeCapacity"),
                                                opts.get("projection", "ALL")))
    ttl_attr = None
    ttl_seconds = None
    if definition.get("enableTtl") and definition.get("ttlAttribute"):
        ttl_attr = definition["ttlAttribute"]
        ttl_seconds = definition.get("ttl")
    elif definition.get("enableTtl"):
        raise ConfigError(f"{where}: 'enableTtl' needs 'ttlAttribute'.")
    return TableSpec(
        name=definition.get("name") or name, hash_key=hash_path, range_key=range_path,
        indexes=tuple(indexes), secondary=tuple(secondary),
        read_capacity=definition.get("readCapacity"), write_capacity=definition.get("writeCapacity"),
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
        self._ttl_field: Field | None = None
        self._special: dict[str, tuple[Field, Any, Any]] = {}
        codec = repo.codec
        for path in spec.key_paths:
            self._special[path.parts[0]] = (path.field, codec.field_encoder(path.field, False),
                                            codec.field_decoder(path.field, False))
        if spec.ttl_attribute:
            ttl_field = DateTime()
            ttl_field.bind(dict, spec.ttl_attribute)
            self._ttl_field = ttl_field
            self._special[spec.ttl_attribute] = (ttl_field, codec.field_encoder(ttl_field, True),
                                                 codec.field_decoder(ttl_field, True))

    # -- conversions ------------------------------------------------------------------
    def _encode(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                errors[str(key)] = ["Attribute names must be strings."]
                continue
            if value is None:
                continue
            special = self._special.get(key)
            if special is None:
                problem = plain_data_problem(value)
                if problem:
                    errors[key] = [problem]
                    continue
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
            raise ValidationError(errors, self.name)
        return out

    def _decode(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(doc)
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
        import dataclasses

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
            raise QueryError(f"Cannot compare '{path.dotted}' with that value: {exc.messages}") from None
        return dataclasses.replace(node, path=Path(path.parts, field))  # type: ignore[call-arg, type-var]

    def _key(self, doc: Mapping[str, Any]) -> tuple[Any, ...]:
        return self.spec.key_of(doc)  # type: ignore[arg-type]

    # -- the Go methods ------------------------------------------------------------------
    def save(self, data: Mapping[str, Any], flt: Filter | Mapping[str, Any] | None = None) -> dict[str, Any]:
        """No filter: insert (existing key -> DuplicateKey). With a filter: update the one match."""
        if not isinstance(data, Mapping):
            raise ValidationError({"_schema": ["save() takes a dict."]}, self.name)
        if flt is None:
            item = dict(data)
            hash_name = self.spec.hash_key.parts[0]
            if item.get(hash_name) is None and self.spec.extra.get("auto_id"):
                item[hash_name] = str(uuid.uuid4())
            self._fill_ttl(item)
            doc = self._encode(item)
            missing = [p.dotted for p in self.spec.key_paths if doc.get(p.parts[0]) is None]
            if missing:
                raise ValidationError({m: ["Missing data for required field."] for m in missing}, self.name)
            self.repo.insert(doc)
            return self._decode(doc)
        matches = list(self.repo.find(self._query(flt, limit=2)))
        if not matches:
            raise NotFound(f"No item in '{self.name}' matches {_as_filter(flt)!r}; nothing was saved.")
        if len(matches) > 1:
            raise QueryError(f"Several items in '{self.name}' match {_as_filter(flt)!r}; save() updates exactly one, "
                             "so nothing was saved. Narrow the filter.")
        key = self._key(matches[0])
        sets = self._encode(data)
        for name, value in zip((p.parts[0] for p in self.spec.key_paths), key, strict=True):
            if name in sets and sets.pop(name) != value:
                raise QueryError(f"save() cannot change the key attribute '{name}'; delete and insert instead.")
        unsets = [k for k, v in data.items() if v is None and k not in self._special]
        if not sets and not unsets:
            return self._decode(matches[0])
        # One atomic update, conditioned on the filter: a concurrent change that makes the item stop
        # matching is refused instead of being overwritten.
        try:
            updated = self.repo.update(key, sets, {}, unsets, self._query(flt).where)
        except ConditionFailed as exc:
            raise NotFound(f"The item in '{self.name}' stopped matching {_as_filter(flt)!r} before it was saved; "
                           "nothing was saved.") from exc
        if updated is None:
            raise NotFound(f"The item in '{self.name}' matching {_as_filter(flt)!r} was deleted before it was saved.")
        return self._decode(updated)

    def _fill_ttl(self, item: dict[str, Any]) -> None:
        attr = self.spec.ttl_attribute
        if attr and item.get(attr) is None and self.spec.ttl_seconds:
            item[attr] = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=float(self.spec.ttl_seconds))

    def get_one(self, flt: Filter | Mapping[str, Any] | None) -> dict[str, Any]:
        for doc in self.repo.find(self._query(flt, limit=1)):
            return self._decode(doc)
        raise NotFound(f"No item in '{self.name}' matches {_as_filter(flt)!r}.")

    def get_all(self, flt: Filter | Mapping[str, Any] | None = None, order: str | None = None,
                sorting: str | None = None, limit: int = 0, offset: int = 0) -> list[dict[str, Any]]:
        direction = (sorting or "asc").lower()
        if direction not in ("asc", "desc"):
            raise QueryError(f"sorting must be 'asc' or 'desc', not {sorting!r}.")
        if order is not None and not isinstance(order, str):
            raise QueryError(f"order must be an attribute name, not {order!r}.")
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (limit, offset)):
            raise QueryError("limit and offset must be non-negative integers (limit=0 means no limit).")
        keys: tuple[SortKey, ...] = ()
        if order:
            field = self._special.get(order, (None,))[0]
            keys = (SortKey(Path((order,), field), direction == "desc"),)
        spec = self._query(flt, order=keys, limit=limit or None, offset=offset)
        return [self._decode(d) for d in self.repo.find(spec)]

    def delete_one(self, flt: Filter | Mapping[str, Any] | None) -> None:
        for doc in self.repo.find(self._query(flt, limit=1)):
            self.repo.delete(self._key(doc))
            return
        raise NotFound(f"No item in '{self.name}' matches {_as_filter(flt)!r}; nothing was deleted.")

    def delete_all(self, flt: Filter | Mapping[str, Any] | None = None) -> int:
        return self.repo.delete_where(self._query(flt))

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
        repo = Repository(name, dict(definition), self.backend.repository(spec))
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
