"""The MongoDB backend's requests: what an operation (odm.ops) yields, and what it is sent back.

An operation names collections and methods; it never holds a client. The backend carries a
request out with pymongo's ``MongoClient`` (``send``) or its native ``AsyncMongoClient``
(``asend``), whose collections have the same methods, awaitable:

- :class:`Call` -- one collection (or database) method; the response is its result
  (``InsertOneResult``, a document, a count, ...).
- :class:`Find` -- open a cursor (``find`` or ``aggregate``) and read its first batch; the
  response is ``(handle, docs)``, the handle ``None`` once the cursor is exhausted.
- :class:`More` -- the next batch of an open cursor, answered the same way.
- :class:`Close` -- close an open cursor early.

A cursor still open when its operation ends (a consumer that stopped reading, a cancelled
task, an error) is closed by the runner that opened it (MongoBackend.run/iterate and their
async twins), so an abandoned stream never leaves a cursor on the server.
"""

from __future__ import annotations

from typing import Any


class Call:
    """``<collection>.<method>(*args, **kwargs)``; ``collection`` None: a database method."""

    __slots__ = ("collection", "method", "args", "kwargs")

    def __init__(self, collection: str | None, method: str, /, *args: Any, **kwargs: Any) -> None:
        self.collection = collection
        self.method = method
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Call({self.collection!r}, {self.method!r})"


class Find:
    """Open a ``find`` or ``aggregate`` cursor and read up to ``batch`` documents (None: all of them)."""

    __slots__ = ("collection", "method", "batch", "args", "kwargs")

    def __init__(self, collection: str, method: str, batch: int | None, /, *args: Any, **kwargs: Any) -> None:
        self.collection = collection
        self.method = method
        self.batch = batch
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Find({self.collection!r}, {self.method!r}, batch={self.batch})"


class More:
    """The next ``batch`` documents of an open cursor."""

    __slots__ = ("handle", "batch")

    def __init__(self, handle: Any, batch: int | None) -> None:
        self.handle = handle
        self.batch = batch

    def __repr__(self) -> str:
        return f"More(batch={self.batch})"


class Close:
    """Close an open cursor (the server forgets it)."""

    __slots__ = ("handle",)

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def __repr__(self) -> str:
        return "Close()"


__all__ = ["Call", "Close", "Find", "More"]
