"""What a SQL backend adds to the shared repository: connections, transactions, catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from ..base import Backend, Features
from ..codec import Codec
from .dialect import Dialect
from .repository import SQLRepository


class SQLFeatures(Features):
    atomic_insert_many = True


class SQLBackend(Backend):
    features = SQLFeatures
    repository_class = SQLRepository
    dialect: ClassVar[Dialect]
    codec: ClassVar[Codec] = Codec()
    #: Exception classes that mean a key or unique index clash.
    integrity_errors: tuple[type[BaseException], ...] = ()
    #: A LIMIT value meaning "no limit" (for LIMIT ? OFFSET ?).
    no_limit: ClassVar[Any] = -1
    #: The catalog table every SQL backend keeps for itself (see ensure_meta).
    META_TABLE: ClassVar[str] = "_odm_schema"

    def ping(self) -> None:
        """``SELECT 1`` on a connection of this backend: a real round trip."""
        with self.tx(readonly=True) as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def tx(self, readonly: bool = False) -> AbstractContextManager[Any]:
        """A cursor inside one transaction: committed on success, rolled back on error."""
        raise NotImplementedError

    def stream(self, sql: str, params: Sequence[Any]) -> Iterator[Sequence[Any]]:
        """Rows of a query, fetched in batches (never all at once)."""
        raise NotImplementedError

    def insert_rows(self, cur: Any, table: str, cols: str, rows: list[list[Any]]) -> None:
        marks = ", ".join([self.dialect.ph] * len(rows[0]))
        cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    def plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        raise NotImplementedError

    def constraint_name(self, exc: BaseException) -> str | None:
        return None

    # -- catalog --------------------------------------------------------------------------
    def ensure_meta(self, cur: Any) -> None:
        cur.execute('CREATE TABLE IF NOT EXISTS "_odm_schema" ("name" TEXT PRIMARY KEY, "keys" TEXT NOT NULL)')

    def stored_key_schema(self, cur: Any, name: str) -> dict[str, Any] | None:
        cur.execute(f'SELECT "keys" FROM "_odm_schema" WHERE "name" = {self.dialect.ph}', [name])
        row = cur.fetchone()
        return None if row is None else json.loads(row[0])  # type: ignore[no-any-return]

    def store_key_schema(self, cur: Any, name: str, schema: dict[str, Any]) -> None:
        cur.execute(f'INSERT INTO "_odm_schema" ("name", "keys") VALUES ({self.dialect.ph}, {self.dialect.ph})',
                    [name, json.dumps(schema)])

    def table_exists(self, cur: Any, name: str) -> bool:
        raise NotImplementedError

    def index_names(self, cur: Any, table: str) -> set[str]:
        raise NotImplementedError
