"""``class Meta`` parsed into :class:`ModelOptions`, rejecting anything unknown.

Both spellings are accepted: the Python one (``hash_key``) and the seed's Go
one (``hashKey``). Every error names the model and the Meta key at fault.
"""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING, Any

from .attributes import name_problem
from .errors import ConfigError
from .expressions.nodes import Path
from .fields import DateTime, Embedded, Field, Integer
from .polymorphic import DEFAULT_ATTRIBUTE, Family
from .schema import Index, IndexSpec, SecondaryIndexSpec, TableSpec

if TYPE_CHECKING:
    from .model import Model

#: Seed (Go) spelling -> Python spelling.
ALIASES = {
    "hashKey": "hash_key",
    "rangeKey": "range_key",
    "readCapacity": "read_capacity",
    "writeCapacity": "write_capacity",
    "GSI": "gsi",
    "LSI": "lsi",
    "enableTtl": "enable_ttl",
    "ttlAttribute": "ttl_attribute",
    "versionField": "version_field",
    "allowScan": "allow_scan",
    "customId": "custom_id",
}
KNOWN = {
    "name", "hash_key", "range_key", "indexes", "read_capacity", "write_capacity", "gsi", "lsi",
    "ttl", "enable_ttl", "ttl_attribute", "version_field", "allow_scan", "abstract", "custom_id",
    "hash_key_type", "polymorphic", "discriminator", "discriminator_attribute",
}
#: Options a class sets for itself only: never inherited from an abstract base.
OWN_ONLY = {"name", "abstract", "discriminator", "polymorphic", "discriminator_attribute"}
#: What a subclass of a polymorphic model may set in its own Meta (the table is its base's).
MEMBER_KNOWN = {"discriminator", "indexes"}
SECONDARY_KEYS = {
    "hashKey": "hash_key", "rangeKey": "range_key", "readCapacity": "read_capacity",
    "writeCapacity": "write_capacity",
}
SECONDARY_KNOWN: set[str] = {"hash_key", "range_key", "read_capacity", "write_capacity", "projection"}


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def check_stored_names(model: type, prefix: str = "", seen: frozenset[type] = frozenset()) -> None:
    """Every stored name (``data_key``, embedded ones too) follows odm.attributes' rule for all backends."""
    for name, field in model._fields.items():  # type: ignore[attr-defined]
        key = field.data_key or name
        problem = name_problem(key, "embedded" if prefix else "attribute")
        if problem:
            raise ConfigError(f"{prefix or model.__name__}.{name} cannot be stored under the name {key[:40]!r}: {problem} "
                              "Choose another data_key.")
        if isinstance(field, Embedded) and field.embedded not in seen:
            check_stored_names(field.embedded, f"{prefix or model.__name__}.{name}", seen | {field.embedded})


#: Every model's own Meta class: a Meta subclassing one of them inherits through the model instead.
MODEL_METAS: weakref.WeakSet[type] = weakref.WeakSet()


class ModelOptions:
    """The parsed Meta of one model, and the TableSpec backends use."""

    abstract: bool
    inheritable: dict[str, Any]

    def __init__(self, model: type[Model], meta: type | None, own_fields: dict[str, Field] | None = None) -> None:
        self.model = model
        self.label = f"{model.__name__}.Meta"
        own = self._collect(meta)
        parents: list[type[Model]] = [b for b in model.__mro__[1:] if "_meta" in vars(b)]
        concrete = next((b for b in parents if not b._meta.abstract), None)
        #: The polymorphic family this model belongs to (None: a model with a table of its own).
        self.family: Family | None = None
        #: The value stored in the family's discriminator attribute for this class's items.
        self.discriminator: str | None = None
        if concrete is not None:
            self._member(concrete, own, own_fields or {})
            return
        raw: dict[str, Any] = {}
        for base in reversed(parents):  # abstract bases, the nearest last so it wins
            raw.update(base._meta.inheritable)
        raw.update({k: v for k, v in own.items() if k not in OWN_ONLY})
        #: What a child of this (abstract) model inherits: every option but its own-only ones.
        self.inheritable = dict(raw)
        self.abstract = bool(own.get("abstract", False))
        self.name: str = own.get("name") or snake_case(model.__name__)
        if not isinstance(self.name, str):
            raise self.error("name", f"must be a string, not {self.name!r}")
        # Own only: an abstract base's children would otherwise each become a family with a table of its own.
        polymorphic = own.get("polymorphic", False)
        attribute = own.get("discriminator_attribute")
        if not isinstance(polymorphic, bool):
            raise self.error("polymorphic", f"must be True or False, not {polymorphic!r}")
        if polymorphic and self.abstract:
            raise self.error("polymorphic", f"cannot be combined with abstract: a polymorphic model owns the table its "
                                            f"subclasses share; drop abstract from {model.__name__}, or set polymorphic "
                                            "on the concrete model that is to own the table")
        if polymorphic and not self.abstract:
            self.family = Family(model, DEFAULT_ATTRIBUTE if attribute is None else attribute)
            self.discriminator = own.get("discriminator", model.__name__)
            self.family.add(model, self.discriminator, model._fields)
        elif "discriminator" in own or (attribute is not None and not polymorphic):
            key = "discriminator" if "discriminator" in own else "discriminator_attribute"
            raise self.error(key, f"only applies to a polymorphic model; set Meta.polymorphic = True on {model.__name__} "
                                  "or on the base whose table it shares")
        raw.pop("custom_id", None)  # accepted for compatibility with the Go package; no effect
        raw.pop("hash_key_type", None)  # the field type decides
        self.hash_key: str | None = raw.pop("hash_key", None)
        self.range_key: str | None = raw.pop("range_key", None)
        self.indexes: list[Any] = list(raw.pop("indexes", None) or [])
        self.read_capacity = self._capacity(raw.pop("read_capacity", None), "read_capacity")
        self.write_capacity = self._capacity(raw.pop("write_capacity", None), "write_capacity")
        self.gsi: dict[str, Any] = dict(raw.pop("gsi", None) or {})
        self.lsi: dict[str, Any] = dict(raw.pop("lsi", None) or {})
        self.version_field: str | None = raw.pop("version_field", None)
        self.allow_scan = bool(raw.pop("allow_scan", True))
        self.ttl_attribute, self.ttl_seconds = self._ttl(raw)
        if (self.read_capacity is None) != (self.write_capacity is None):
            raise self.error("read_capacity", "and write_capacity must be given together (or neither, for on-demand billing)")
        check_stored_names(model)

    def _member(self, base: type[Model], own: dict[str, Any], own_fields: dict[str, Field]) -> None:
        """A subclass of a concrete model: only a polymorphic base's table may be shared."""
        name = self.model.__name__
        family = base._meta.family
        if family is None:
            raise ConfigError(
                f"{name} subclasses {base.__name__}, a concrete model with its own table '{base._meta.name}'. Make "
                f"{base.__name__} abstract (Meta.abstract = True) to give {name} a table of its own with "
                f"{base.__name__}'s fields and Meta, or polymorphic (Meta.polymorphic = True) to store both in one table.")
        root: Any = family.root
        extra = sorted(set(own) - MEMBER_KNOWN)
        if extra:
            raise ConfigError(f"{self.label} sets {', '.join(extra)}, but {name} stores its items in {root.__name__}'s "
                              f"table, whose options {root.__name__}.Meta sets; a subclass may set only "
                              "Meta.discriminator and Meta.indexes (on its own fields, added to that table).")
        for field_name, field in own_fields.items():
            inherited = base._fields.get(field_name)
            if inherited is not None and (type(inherited) is not type(field)
                                          or (inherited.data_key or field_name) != (field.data_key or field_name)):
                raise ConfigError(
                    f"{name}.{field_name} redefines {base.__name__}.{field_name} as a {type(field).__name__} stored as "
                    f"'{field.data_key or field_name}' (it is a {type(inherited).__name__} stored as "
                    f"'{inherited.data_key or field_name}' there); {name} shares {root.__name__}'s table, so an "
                    "inherited field keeps its type and stored name: give the new field another name.")
        # Everything about the table is the root's.
        for key, value in vars(root._meta).items():
            if key not in ("model", "label", "discriminator"):
                setattr(self, key, value)
        self.inheritable = {}
        self.abstract = False
        #: Indexes this subclass adds to its base's table (Meta.indexes, resolved on its own fields).
        self.member_indexes = tuple(self.index_specs(list(own.get("indexes") or []),
                                                     {ix.name for ix in root._spec.indexes}))
        if self.member_indexes and root._odm_binding is not None:
            raise ConfigError(f"{name}.Meta.indexes adds indexes to {root.__name__}'s table, which is already "
                              f"registered; define {name} (import its module) before registering {root.__name__}, "
                              "so that sync() creates them.")
        self.family = family
        self.discriminator = own.get("discriminator", name)
        family.add(self.model, self.discriminator, own_fields)
        check_stored_names(self.model)

    # -- parsing -----------------------------------------------------------------
    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.label}.{key} {problem}.")

    def _collect(self, meta: type | None) -> dict[str, Any]:
        """The options ``meta`` sets, after those of plain option classes it subclasses (``class
        Meta(CommonOptions)``). A model's Meta among its bases adds nothing here: that model's
        options reach this one through the model itself, so ``class Meta(Base.Meta)`` means the
        same as ``class Meta``."""
        raw: dict[str, Any] = {}
        if meta is None:
            return raw
        for cls in reversed(meta.__mro__):
            if cls is not object and (cls is meta or cls not in MODEL_METAS):
                raw.update(self._options(cls))
        return raw

    def _options(self, meta: type) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for key, value in vars(meta).items():
            if key.startswith("__"):
                continue
            canon = ALIASES.get(key, key)
            if canon not in KNOWN:
                known = ", ".join(sorted(KNOWN - {"hash_key_type"}))
                raise ConfigError(f"{self.label} has an unknown option '{key}'; known options are: {known}.")
            if canon in raw and raw[canon] != value:
                raise ConfigError(f"{self.label} sets both '{key}' and its other spelling with different values.")
            raw[canon] = value
        return raw

    def _capacity(self, value: Any, key: str) -> int | None:
        problem = capacity_problem(value)
        if problem:
            raise self.error(key, problem)
        return value  # type: ignore[no-any-return]

    def _ttl(self, raw: dict[str, Any]) -> tuple[str | None, float | None]:
        ttl = raw.pop("ttl", None)
        enable = raw.pop("enable_ttl", None)
        attribute = raw.pop("ttl_attribute", None)
        if isinstance(ttl, dict):
            unknown = set(ttl) - {"attribute", "seconds"}
            if unknown:
                raise self.error("ttl", f"has unknown keys {sorted(unknown)}; use 'attribute' and 'seconds'")
            attribute = ttl.get("attribute", attribute)
            ttl = ttl.get("seconds")
        problem = ttl_seconds_problem(ttl)
        if problem:
            raise self.error("ttl", problem)
        if enable is False:
            return None, None
        if attribute is None:
            if enable or ttl is not None:
                raise self.error("ttl_attribute", "is required when TTL is enabled (name the DateTime field that holds the expiry)")
            return None, None
        return attribute, ttl

    # -- checks against the fields -------------------------------------------------
    def resolve(self, path: str, key: str) -> Path:
        """Turn ``"address.city"`` into a stored Path, or raise naming the Meta key."""
        fields = self.model._fields
        family = self.family
        if family is not None and path == family.attribute and path not in fields:
            # A polymorphic base may index its discriminator: Sub.query() is then served by that index.
            return Path((path,), family.field)
        chain: list[Field] = []
        for part in path.split("."):
            field = fields.get(part)
            if field is None:
                known = ", ".join(fields)
                raise self.error(key, f"names '{path}', which is not a field of {self.model.__name__}; fields are: {known}")
            chain.append(field)
            fields = field.embedded._fields if isinstance(field, Embedded) else {}
        return Path(tuple(f.data_key or f.name for f in chain), chain[-1])

    def key_field(self, name: str, key: str) -> Path:
        path = self.resolve(name, key)
        if "." in name or not path.field.key_capable:
            raise self.error(key, f"names '{name}', which cannot be a key (use a String, Integer, Float, Decimal, Bytes, UUID, Date or DateTime field)")
        return path

    def table_spec(self) -> TableSpec:
        model = self.model.__name__
        if self.range_key and not self.hash_key:
            raise self.error("range_key", f"needs a hash_key on {model} (the auto 'id' key cannot take a range key)")
        hash_path = self.key_field(self.hash_key or "id", "hash_key")
        range_path = self.key_field(self.range_key, "range_key") if self.range_key else None
        if range_path is not None and range_path.parts == hash_path.parts:
            raise self.error("range_key", f"names '{self.range_key}', which is already the hash key; use another field")
        indexes = self.index_specs(self.indexes)
        secondary = [self._secondary(n, d, False) for n, d in self.gsi.items()]
        if self.lsi and range_path is None:
            raise self.error("lsi", f"needs a range_key on {model}: DynamoDB local indexes share the table's hash key and need a composite key")
        secondary += [self._secondary(n, d, True) for n, d in self.lsi.items()]
        ttl = None
        if self.ttl_attribute:
            ttl_path = self.resolve(self.ttl_attribute, "ttl_attribute")
            if not isinstance(ttl_path.field, DateTime) or "." in self.ttl_attribute:
                raise self.error("ttl_attribute", f"names '{self.ttl_attribute}', which must be a top-level DateTime field")
            ttl = ttl_path.parts[0]
            if self.ttl_attribute in (self.hash_key or "id", self.range_key):
                raise self.error("ttl_attribute", f"names '{self.ttl_attribute}', which is a key field; use a separate DateTime field")
        version = None
        if self.version_field:
            vpath = self.resolve(self.version_field, "version_field")
            if not isinstance(vpath.field, Integer) or "." in self.version_field:
                raise self.error("version_field", f"names '{self.version_field}', which must be a top-level Integer field")
            if self.version_field in (self.hash_key, self.range_key):
                raise self.error("version_field", "cannot be a key field")
            version = self.version_field
        return TableSpec(
            version_key=vpath.parts[0] if version else None,
            name=self.name, hash_key=hash_path, range_key=range_path, indexes=tuple(indexes),
            secondary=tuple(secondary), read_capacity=self.read_capacity,
            write_capacity=self.write_capacity, ttl_attribute=ttl, ttl_seconds=self.ttl_seconds,
            version_field=version, allow_scan=self.allow_scan,
        )

    def index_specs(self, entries: list[Any], taken: set[str] | frozenset[str] = frozenset()) -> list[IndexSpec]:
        """``Meta.indexes`` resolved on this model's fields; ``taken``: names the table already uses."""
        indexes = []
        for i, entry in enumerate(entries):
            ix = Index(entry) if isinstance(entry, str) else entry
            if not isinstance(ix, Index):
                raise self.error(f"indexes[{i}]", f"must be a field name or odm.Index, not {entry!r}")
            paths = tuple(self.resolve(f, f"indexes[{i}]") for f in ix.fields)
            name = ix.name or "ix_" + "_".join(p.dotted.replace(".", "_") for p in paths) + ("_uniq" if ix.unique else "")
            if name in taken:
                raise self.error(f"indexes[{i}]", f"names the index '{name}', which the table already has")
            indexes.append(IndexSpec(name, paths, ix.unique))
        return indexes

    def _secondary(self, name: str, definition: Any, local: bool) -> SecondaryIndexSpec:
        kind = "lsi" if local else "gsi"
        key = f"{kind}['{name}']"
        if not isinstance(definition, dict):
            raise self.error(key, f"must be a dict, not {definition!r}")
        spec: dict[str, Any] = {str(SECONDARY_KEYS.get(k, k)): v for k, v in definition.items()}
        unknown = set(spec) - SECONDARY_KNOWN
        if unknown:
            raise self.error(key, f"has unknown keys {sorted(unknown)}; known keys are: {', '.join(sorted(SECONDARY_KNOWN))}")
        if local and "hash_key" in spec:
            raise self.error(key, "cannot set hash_key: a local index uses the table's hash key")
        # The seed's GSI form names the index after its hash key field.
        hash_name = None if local else spec.get("hash_key", name)
        hash_path = self.key_field(hash_name, key + ".hash_key") if hash_name else None
        range_name = spec.get("range_key")
        if local and not range_name:
            raise self.error(key, "needs a range_key")
        range_path = self.key_field(range_name, key + ".range_key") if range_name else None
        rc = self._capacity(spec.get("read_capacity"), key + ".read_capacity")
        wc = self._capacity(spec.get("write_capacity"), key + ".write_capacity")
        projection = spec.get("projection", "ALL")
        if isinstance(projection, (list, tuple)):
            stored = []
            for f in projection:
                if not isinstance(f, str) or "." in f:  # INCLUDE copies top-level attributes
                    raise self.error(key + ".projection", f"lists top-level field names, not {f!r}")
                stored.append(self.resolve(f, key + ".projection").parts[0])  # the attribute (data_key) DynamoDB sees
            projection = tuple(stored)
        elif projection not in ("ALL", "KEYS_ONLY"):
            raise self.error(key + ".projection", f"must be 'ALL', 'KEYS_ONLY' or a list of field names, not {projection!r}")
        return SecondaryIndexSpec(name, hash_path, range_path, local, rc, wc, projection)


#: The longest TTL: expiry instants must stay far inside what a datetime can hold.
MAX_TTL_SECONDS = 100 * 366 * 86400


def ttl_seconds_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable TTL in seconds (None when it is, or when it is absent)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TTL_SECONDS:
        return f"must be a positive number of seconds, at most {MAX_TTL_SECONDS} (100 years), not {value!r}"
    return None


def capacity_problem(value: Any) -> str | None:
    """Why ``value`` is not a DynamoDB capacity (None when it is, or when it is absent)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**40:
        return f"must be a positive integer up to 2**40, not {value!r}"
    return None
