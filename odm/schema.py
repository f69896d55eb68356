"""Backend-neutral table definitions: what ``sync`` creates and repositories use.

Both a model's ``Meta`` and the Go-style definition dict are turned into one
:class:`TableSpec`, so each backend has one implementation for both layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .expressions.nodes import Path


class Index:
    """A secondary index on one or more fields (dotted paths allowed), optionally unique."""

    __slots__ = ("fields", "unique", "name")

    def __init__(self, *fields: str, unique: bool = False, name: str | None = None) -> None:
        if not fields:
            raise TypeError("Index() needs at least one field name.")
        self.fields = tuple(fields)
        self.unique = unique
        self.name = name

    def __repr__(self) -> str:
        args = ", ".join(repr(f) for f in self.fields)
        return f"Index({args}{', unique=True' if self.unique else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Index) and (self.fields, self.unique, self.name) == (
            other.fields, other.unique, other.name)

    def __hash__(self) -> int:
        return hash((self.fields, self.unique, self.name))


@dataclass(frozen=True)
class IndexSpec:
    name: str
    paths: tuple[Path, ...]
    unique: bool = False


@dataclass(frozen=True)
class SecondaryIndexSpec:
    """A DynamoDB GSI/LSI; other backends build an ordinary index on the same keys."""

    name: str
    hash_key: Path | None
    range_key: Path | None
    local: bool = False
    read_capacity: int | None = None
    write_capacity: int | None = None
    projection: str | tuple[str, ...] = "ALL"


@dataclass(frozen=True)
class TableSpec:
    name: str
    hash_key: Path
    range_key: Path | None = None
    indexes: tuple[IndexSpec, ...] = ()
    secondary: tuple[SecondaryIndexSpec, ...] = ()
    read_capacity: int | None = None
    write_capacity: int | None = None
    ttl_attribute: str | None = None
    ttl_seconds: float | None = None
    version_field: str | None = None
    #: The version field's stored name (its data_key, else the field's name).
    version_key: str | None = None
    allow_scan: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """The model's name for error messages (the table name for plain-dict repositories)."""
        model = getattr(self.hash_key.field, "model", None)
        name = getattr(model, "__name__", None) if model is not None and model is not dict else None
        return name or self.name

    @property
    def key_paths(self) -> tuple[Path, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    def key_of(self, doc: dict[str, Any]) -> tuple[Any, ...]:
        """The stored key tuple of a stored document."""
        if self.range_key is None:
            return (doc.get(self.hash_key.parts[0]),)
        return (doc.get(self.hash_key.parts[0]), doc.get(self.range_key.parts[0]))

    def all_index_specs(self) -> tuple[IndexSpec, ...]:
        """Meta indexes plus GSIs/LSIs as ordinary indexes, for backends without them."""
        out = list(self.indexes)
        seen = {ix.paths for ix in out}
        for sec in self.secondary:
            paths = tuple(p for p in ((sec.hash_key if not sec.local else self.hash_key), sec.range_key) if p)
            if paths and paths not in seen:
                seen.add(paths)
                out.append(IndexSpec(sec.name, paths))
        return tuple(out)
