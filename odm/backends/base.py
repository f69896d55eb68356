"""What every backend provides: capability flags, a Backend and its Repositories.

Repositories work on stored documents (dicts in the backend's stored form) and
on the shared expression tree; models and the Go-style layer both sit on top,
so each backend has one implementation for both.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ..errors import ConfigError
from ..expressions.nodes import Node
from ..fields import SortKey
from ..pagination import Cursors
from ..schema import TableSpec
from .codec import Codec
from .names import ANY, TableNameRule


class Features:
    """Capability flags; a backend overrides only what differs (Django-style)."""

    # Can the backend enforce unique secondary indexes?
    supports_unique_indexes: ClassVar[bool] = True
    # Can it order by any attribute (not only an index's range key)?
    supports_arbitrary_order: ClassVar[bool] = True
    # Does insert_many run as one transaction (all or nothing)?
    atomic_insert_many: ClassVar[bool] = False
    # How fine is a stored DateTime? One microsecond everywhere (Python's own), MongoDB included:
    # it stores ISO strings, and its TTL attribute a BSON date plus the remainder.
    datetime_resolution: ClassVar[_dt.timedelta] = _dt.timedelta(microseconds=1)
    # Largest number magnitude the backend stores (DynamoDB's N stops below 1e126).
    max_number: ClassVar[float] = sys.float_info.max
    # Smallest non-zero number magnitude it stores (0.0: no limit beyond the field types'; DynamoDB's is 1e-130).
    min_number: ClassVar[float] = 0.0
    # Most significant digits a stored Decimal (or a query value) may have; None: no limit beyond
    # the field's exponent range. More is refused before any request (ValidationError/QueryError).
    max_decimal_digits: ClassVar[int | None] = None
    # Can a String attribute that keys a secondary index hold ""? (DynamoDB refuses it: ValidationError.)
    empty_string_index_keys: ClassVar[bool] = True


@dataclass(frozen=True)
class Action:
    """One thing ``sync`` did, printable as a sentence."""

    verb: str
    target: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.verb} {self.target}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class QuerySpec:
    """A compiled-agnostic query: filter, order, window and index hint."""

    where: Node | None = None
    order: tuple[SortKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    index: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def but(self, **changes: Any) -> QuerySpec:
        return replace(self, **changes)


@dataclass
class Page:
    """One page of results: ``items`` and an opaque ``next_cursor`` (None on the last page)."""

    items: list[Any]
    next_cursor: str | None


class Repository:
    """One table/collection: stored documents in, stored documents out."""

    codec: Codec

    def __init__(self, backend: Backend, spec: TableSpec) -> None:
        self.backend = backend
        self.spec = spec

    def use_exact_decimals(self) -> None:
        """The bound model has Decimal fields: read numbers back exactly (a no-op where they always are)."""

    # Each method below is implemented by every backend.
    def sync(self) -> list[Action]:
        raise NotImplementedError

    def insert(self, doc: dict[str, Any]) -> None:
        raise NotImplementedError

    def put(self, doc: dict[str, Any], condition: Node | None = None) -> None:
        raise NotImplementedError

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        raise NotImplementedError

    def batch_get(self, keys: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def update(self, key: tuple[Any, ...], sets: dict[str, Any], incs: dict[str, Any],
               unsets: Sequence[str], condition: Node | None = None) -> dict[str, Any] | None:
        raise NotImplementedError

    def delete(self, key: tuple[Any, ...], condition: Node | None = None) -> bool:
        raise NotImplementedError

    def insert_many(self, docs: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def find(self, query: QuerySpec) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def count(self, query: QuerySpec) -> int:
        raise NotImplementedError

    def delete_where(self, query: QuerySpec) -> int:
        raise NotImplementedError

    def explain(self, query: QuerySpec) -> dict[str, Any]:
        raise NotImplementedError

    def page(self, query: QuerySpec, size: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        from ..pagination import keyset_page

        return keyset_page(self, query, size, cursor)


class Backend:
    """A configured connection; builds one repository per table spec."""

    name: ClassVar[str] = "backend"
    features: ClassVar[type[Features]] = Features
    repository_class: ClassVar[type[Repository]] = Repository
    #: The dbInfo keys this backend reads, each with the kind of value it takes
    #: (a name in ``odm.config.KINDS``); any other key is a ConfigError naming the close match.
    info_keys: ClassVar[Mapping[str, str]] = {}
    #: Keys of the seed's single shared dbInfo that only the other Go-era backend reads
    #: (one dbInfo serves both MongoDB and DynamoDB there): accepted and not used.
    shared_info_keys: ClassVar[frozenset[str]] = frozenset()
    #: Which table names the server can hold (checked when a repository is defined).
    table_names: ClassVar[TableNameRule] = ANY

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.repositories: dict[str, Repository] = {}
        #: Signs page cursors; a Registry replaces it when a cursor secret is configured.
        self.cursors = Cursors()

    def stored_table_name(self, name: str) -> str:
        """The name the server sees for a table spec's ``name`` (DynamoDB adds its tablePrefix)."""
        return name

    def check_table_name(self, name: str) -> None:
        """ConfigError, naming the name and the rule, when the server cannot hold this table name."""
        if not isinstance(name, str):
            raise ConfigError(f"A table name must be a string, not {type(name).__name__} ({name!r}).")
        problem = ANY.problem(name) or self.table_names.problem(self.stored_table_name(name))
        if problem is not None:
            raise ConfigError(f"The table name {name!r} cannot be used on {self.name}: {problem}; "
                              f"{self.table_names.summary}.")

    def ping(self) -> None:
        """One real round trip to the server (``odm check``); BackendUnavailable or ConfigError when it fails."""
        raise NotImplementedError

    def repository(self, spec: TableSpec) -> Repository:
        self.check_table_name(spec.name)
        existing = self.repositories.get(spec.name)
        if existing is not None:
            if existing.spec != spec:
                raise ConfigError(f"The table '{spec.name}' is already defined differently on this backend.")
            return existing
        repo = self.repositories[spec.name] = self.repository_class(self, spec)
        return repo

    def close(self) -> None:
        """Release connections; safe to call twice."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def require(info: dict[str, Any], key: str, backend: str) -> Any:
    if key not in info or info[key] in (None, ""):
        raise ConfigError(f"The {backend} backend needs dbInfo key '{key}'.")
    return info[key]


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
