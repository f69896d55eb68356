"""Schema sync for one collection: key schema record, collection, indexes, TTL index.

An operation (odm.ops): it yields requests (requests.py), so the sync and the async client
run the same steps. Everything is planned first and checked against what exists, so a conflict
(another key schema, an index of the same name or keys with other options)
raises ``odm.SchemaMismatch`` before anything is created; existing indexes are
never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from ...errors import SchemaMismatch
from ...ops import Op
from ..base import Action, SyncPlan
from .compiler import check_name
from .requests import Call, Find

if TYPE_CHECKING:
    from .repository import MongoRepository

SCHEMA_COLLECTION = "_odm_schema"


@dataclass(frozen=True)
class IndexPlan:
    name: str
    keys: tuple[tuple[str, int], ...]
    options: dict[str, Any] = field(default_factory=dict)
    what: str = "created index"

    def describe(self) -> str:
        text = ", ".join(k for k, _ in self.keys)
        if self.options.get("unique"):
            text += " unique"
        if "expireAfterSeconds" in self.options:
            text += f" TTL expireAfterSeconds={self.options['expireAfterSeconds']}"
        return text


def _normal(value: Any) -> Any:
    """Index options as plain comparable data (SON -> dict, numbers -> float)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


_COMPARED = ("unique", "sparse", "partialFilterExpression", "expireAfterSeconds")


def _options_of(info: dict[str, Any]) -> dict[str, Any]:
    return {k: _normal(info[k]) for k in _COMPARED if k in info and not (k in ("unique", "sparse") and not info[k])}


def _keys(info: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, d if isinstance(d, str) else int(d)) for k, d in info["key"])


def key_schema(repo: MongoRepository) -> dict[str, Any]:
    spec = repo.spec
    out: dict[str, Any] = {"hash": [spec.hash_key.dotted, getattr(spec.hash_key.field, "kind", None)
                                    or spec.extra.get("hash_kind", "str")]}
    if spec.range_key is not None:
        out["range"] = [spec.range_key.dotted, getattr(spec.range_key.field, "kind", None)
                        or spec.extra.get("range_kind", "str")]
    return out


def plan_indexes(repo: MongoRepository) -> list[IndexPlan]:
    spec = repo.spec
    plans: list[IndexPlan] = []
    hash_only = spec.range_key is None
    if not hash_only:
        plans.append(IndexPlan("odm_key", ((spec.hash_key.dotted, 1), (spec.range_key.dotted, 1))))  # type: ignore[union-attr]
    ttl = spec.ttl_attribute
    for ix in spec.all_index_specs():
        keys = tuple((".".join(check_name(p) for p in path.parts), 1) for path in ix.paths)
        if hash_only and keys == ((spec.hash_key.dotted, 1),):
            continue  # the hash key is the _id: its index already serves (and enforces) it
        if ttl and keys == ((ttl, 1),) and not ix.unique:
            continue  # the TTL index below serves it
        options: dict[str, Any] = {}
        if ix.unique:
            # Unique among items that have every indexed attribute, as on the other backends.
            options = {"unique": True, "partialFilterExpression": {k: {"$exists": True} for k, _ in keys}}
        plans.append(IndexPlan(ix.name, keys, options))
    if ttl:
        plans.append(IndexPlan(f"odm_ttl_{ttl}", ((ttl, 1),), {"expireAfterSeconds": 0}, "enabled TTL"))
    return plans


def sync_op(repo: MongoRepository, plan: SyncPlan | None = None) -> Op[list[Action]]:
    """Sync one collection; with ``plan``, record what exists (and with ``plan.dry_run`` only read)."""
    dry = plan is not None and plan.dry_run
    spec = repo.spec
    name = spec.name
    schema = key_schema(repo)
    actions: list[Action] = []
    with repo.translated():
        record = yield Call(SCHEMA_COLLECTION, "find_one", {"_id": name})
        exists = bool((yield Call(None, "list_collection_names", filter={"name": name})))
        if record is not None and record.get("keys") != schema:
            raise SchemaMismatch(f"The collection '{name}' exists with key {record.get('keys')}, but the definition "
                                 f"declares {schema}; migrate the data or use another name. Nothing was changed.")
        if record is None and exists and (yield Call(name, "estimated_document_count")) > 0:
            raise SchemaMismatch(f"A collection named '{name}' already holds documents but was not created by odm "
                                 "(its _id values are not this definition's keys); choose another Meta.name or "
                                 "migrate it. Nothing was changed.")
        present = (yield Call(name, "index_information")) if exists else {}
        todo: list[IndexPlan] = []
        by_keys = {_keys(info): (ix_name, info) for ix_name, info in present.items()}
        for ix in plan_indexes(repo):
            wanted = _normal(ix.options)
            same_name = present.get(ix.name)
            same_keys = by_keys.get(ix.keys)
            if same_name is not None:
                have = (_keys(same_name), _options_of(same_name))
                if have != (ix.keys, wanted):
                    raise _conflict(name, ix, ix.name, same_name)
                _exists(plan, name, ix, ix.name)
                continue
            if same_keys is not None:
                other_name, info = same_keys
                if _options_of(info) != wanted:
                    raise _conflict(name, ix, other_name, info)
                _exists(plan, name, ix, other_name)
                continue  # an equivalent index under another name already serves
            if ix.options.get("unique") and exists:
                yield from _check_unique(repo, ix)
            todo.append(ix)
        if exists and plan is not None:
            plan.have("collection exists", name)
        if record is None:
            if not exists:
                if not dry:
                    yield Call(None, "create_collection", name)
                actions.append(Action("created collection", name))
            if not dry:
                yield Call(SCHEMA_COLLECTION, "replace_one", {"_id": name}, {"_id": name, "keys": schema}, upsert=True)
        for ix in todo:
            if not dry:
                try:
                    yield Call(name, "create_index", list(ix.keys), name=ix.name, **ix.options)
                except DuplicateKeyError as exc:  # written concurrently since the check above
                    raise _duplicates(name, ix, (exc.details or {}).get("keyValue")) from exc
            target = name if ix.what == "enabled TTL" else f"{name}.{ix.name}"
            actions.append(Action(ix.what, target, ix.describe()))
    return actions


def _exists(plan: SyncPlan | None, collection: str, ix: IndexPlan, stored_name: str) -> None:
    """Record an index already in place (for ``odm sync``'s plan)."""
    if plan is None:
        return
    if ix.what == "enabled TTL":
        plan.have("TTL enabled", collection, ix.describe())
    else:
        plan.have("index exists", f"{collection}.{stored_name}", ix.describe())


def _check_unique(repo: MongoRepository, plan: IndexPlan) -> Op[None]:
    """Refuse a unique index that existing documents already violate (MongoDB would fail half-way)."""
    group = {f"k{i}": "$" + key for i, (key, _) in enumerate(plan.keys)}
    pipeline = [{"$match": plan.options["partialFilterExpression"]},
                {"$group": {"_id": group, "n": {"$sum": 1}}}, {"$match": {"n": {"$gt": 1}}}, {"$limit": 1}]
    _, rows = yield Find(repo.spec.name, "aggregate", None, pipeline)
    for row in rows:
        raise _duplicates(repo.spec.name, plan, {key: row["_id"].get(f"k{i}") for i, (key, _) in enumerate(plan.keys)})


def _duplicates(collection: str, plan: IndexPlan, value: Any) -> SchemaMismatch:
    return SchemaMismatch(
        f"Cannot add the unique index '{plan.name}' on '{collection}' ({plan.describe()}): several documents "
        f"already share the value {value!r}; remove the duplicates first. Nothing was changed.")


def _conflict(collection: str, plan: IndexPlan, existing: str, info: dict[str, Any]) -> SchemaMismatch:
    shown = {k: info[k] for k in ("key", *_COMPARED) if k in info}
    return SchemaMismatch(
        f"The collection '{collection}' already has an index '{existing}' {shown} that conflicts with the declared "
        f"index '{plan.name}' ({plan.describe()}); drop or rename it yourself (odm never drops indexes). "
        "Nothing was changed.")
