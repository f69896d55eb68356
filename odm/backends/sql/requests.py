"""The requests a SQL operation yields (odm.ops): the runner carries them out on its connection.

A runner (``SQLBackend.run``/``arun``/``iterate``/``aiterate``) serves one operation with one
connection: statements outside a transaction run on their own (autocommit); after
:class:`Begin` they run in one write transaction, committed when the operation returns and
rolled back when it raises (or is closed early). :class:`Stream` and :class:`Fetch` read a
query's rows in batches from a snapshot (a server-side cursor on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

#: What an Execute answers: nothing, one row (or None), every row, or the affected row count.
Fetch_ = Literal["one", "all", "rowcount"] | None


class Begin:
    """Start the operation's write transaction (a no-op inside one)."""

    __slots__ = ()


class Rollback:
    """Roll the transaction back now; later statements run on their own (or after a new Begin)."""

    __slots__ = ()


class Execute:
    """One statement; the response is what ``fetch`` asks for."""

    __slots__ = ("fetch", "params", "sql")

    def __init__(self, sql: str, params: Sequence[Any] = (), fetch: Fetch_ = None) -> None:
        self.sql = sql
        self.params = params
        self.fetch = fetch

    def __repr__(self) -> str:
        return f"Execute({self.sql!r}, fetch={self.fetch!r})"


class ExecuteMany:
    """One statement run once per parameter row (no response)."""

    __slots__ = ("rows", "sql")

    def __init__(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.sql = sql
        self.rows = rows


class Copy:
    """Rows for ``table``'s columns ``cols``, loaded in bulk (PostgreSQL's sync driver: one
    ``COPY ... FROM STDIN``; its async driver: multi-row INSERTs, see postgres.py); no response."""

    __slots__ = ("cols", "rows", "table")

    def __init__(self, table: str, cols: str, rows: Sequence[Sequence[Any]]) -> None:
        self.table = table
        self.cols = cols
        self.rows = rows


class Stream:
    """Open a query's rows for reading in batches (replacing any stream still open); no response."""

    __slots__ = ("params", "sql")

    def __init__(self, sql: str, params: Sequence[Any]) -> None:
        self.sql = sql
        self.params = params


class Fetch:
    """The next batch of the open stream's rows; an empty list at the end (the stream is then closed)."""

    __slots__ = ()


BEGIN = Begin()
ROLLBACK = Rollback()
FETCH = Fetch()

__all__ = ["BEGIN", "FETCH", "ROLLBACK", "Begin", "Copy", "Execute", "ExecuteMany", "Fetch", "Rollback", "Stream"]


def answer(cursor: Any, fetch: str | None) -> Any:
    """What an :class:`Execute` asks back from the cursor that ran it (either driver's, sync)."""
    if fetch is None:
        return None
    if fetch == "one":
        return cursor.fetchone()
    if fetch == "all":
        return cursor.fetchall()
    return cursor.rowcount
