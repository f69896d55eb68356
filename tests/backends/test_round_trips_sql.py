"""Round trips per API call on the SQL backends (issue 11, target 2): counted, never timed.

PostgreSQL: every exchange with the server goes through the connection's ``wait`` (a statement, a
COMMIT, a pool check query, a server-side cursor's DECLARE/FETCH/CLOSE), so counting those calls
counts round trips (a DECLARE, describe included, counts once: the count is never too high).
SQLite has no server: the statements its connections run are counted (trace callback), and so are
the connections opened per call.

A single-item read or write (get, create, save without condition, update, delete) and a query
returning less than a batch take one round trip; a regression fails here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

import odm
from odm import Model, fields
from odm.backends.sql import sqlite as sqlite_backend

from ..conftest import registries

psycopg = pytest.importorskip("psycopg")


class Trip(Model):
    k = fields.String(required=True)
    n = fields.Integer()
    tag = fields.String()

    class Meta:
        name = "rt_trips"
        hash_key = "k"
        indexes = ["tag"]


class Visit(Model):
    token = fields.String(required=True)
    expires_at = fields.DateTime()

    class Meta:
        name = "rt_visits"
        hash_key = "token"
        ttl = {"attribute": "expires_at", "seconds": 3600}


class Counter:
    """Counts what the SQL backends send while it is active."""

    def __init__(self) -> None:
        self.count = 0
        self.connections = 0
        self.seen: list[str] = []

    def __call__(self, what: str) -> None:
        self.count += 1
        self.seen.append(what)

    def trips(self, call: Callable[[], Any]) -> int:
        self.count, self.connections, self.seen = 0, 0, []
        call()
        return self.count


def exchanges(gen: Generator[Any, Any, Any], counter: Counter) -> Generator[Any, Any, Any]:
    """``gen`` (one of psycopg's protocol generators), counted if it talks to the server at all
    (a ROLLBACK with no transaction open returns at once, without a round trip)."""
    try:
        value = gen.send(None)
    except StopIteration as stop:
        return stop.value
    counter(getattr(gen, "__name__", "?"))
    while True:
        try:
            sent = yield value
        except BaseException as exc:  # noqa: BLE001 - handed to the generator, as waiting.wait does
            try:
                value = gen.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                value = gen.send(sent)
            except StopIteration as stop:
                return stop.value


@pytest.fixture
def pg_counter(_targets: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Callable[..., odm.Registry], Counter]]:
    counter = Counter()
    wait, await_ = psycopg.Connection.wait, psycopg.AsyncConnection.wait

    def counted(conn: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        return wait(conn, exchanges(gen, counter), *args, **kwargs)

    async def acounted(conn: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        return await await_(conn, exchanges(gen, counter), *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "wait", counted)
    monkeypatch.setattr(psycopg.AsyncConnection, "wait", acounted)
    for make in registries(_targets("postgres")):
        yield make, counter


@pytest.fixture
def sqlite_counter(_targets: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Callable[..., odm.Registry], Counter]]:
    counter = Counter()
    connect = sqlite3.connect

    def counted_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        counter.connections += 1
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(counter)
        return conn

    monkeypatch.setattr(sqlite_backend.sqlite3, "connect", counted_connect)
    for make in registries(_targets("sqlite")):
        yield make, counter


def single_item_calls() -> dict[str, Callable[[], Any]]:
    item = Trip.get("a")
    return {
        "get": lambda: Trip.get("a"),
        "get_or_none (missing)": lambda: Trip.get_or_none("nobody"),
        "create": lambda: Trip.create(k="new", n=1),
        "save without condition": lambda: Trip(k="a", n=5, tag="t1").save(),
        "update": lambda: item.update(n=7),
        "update with odm.inc": lambda: item.update(n=odm.inc(1)),
        "delete": lambda: Trip(k="new").delete(),
        "query of 10 hits": lambda: Trip.query(Trip.tag == "t1").all(),
        "query of every item (fewer than a batch)": lambda: list(Trip.query()),
        "first()": lambda: Trip.query(Trip.tag == "t1").first(),
        "count()": lambda: Trip.query(Trip.tag == "t1").count(),
    }


def seed() -> None:
    Trip.insert_many([Trip(k="a" if i == 0 else f"i{i:02d}", n=i, tag=f"t{i % 3}") for i in range(30)])


def test_postgres_single_item_calls_and_small_queries_take_one_round_trip(pg_counter: Any) -> None:
    make, counter = pg_counter
    make(Trip)
    seed()
    assert len(Trip.query(Trip.tag == "t1").all()) == 10
    trips = {name: counter.trips(call) for name, call in single_item_calls().items()}
    assert trips == dict.fromkeys(trips, 1), counter.seen


def test_postgres_async_calls_take_one_round_trip(pg_counter: Any) -> None:
    make, counter = pg_counter
    make(Trip)
    seed()

    async def calls() -> dict[str, int]:
        out: dict[str, int] = {}

        async def count(name: str, call: Callable[[], Any]) -> None:
            counter.count = 0
            await call()
            out[name] = counter.count

        await Trip.aget("a")  # opens the async pool
        item = await Trip.aget("a")
        await count("aget", lambda: Trip.aget("a"))
        await count("acreate", lambda: Trip.acreate(k="new", n=1))
        await count("asave", lambda: Trip(k="a", n=5, tag="t1").asave())
        await count("aupdate", lambda: item.aupdate(n=7))
        await count("adelete", lambda: Trip(k="new").adelete())
        await count("aall (10 hits)", lambda: Trip.query(Trip.tag == "t1").aall())
        await count("afirst", lambda: Trip.query(Trip.tag == "t1").afirst())
        return out

    trips = asyncio.run(calls())
    assert trips == dict.fromkeys(trips, 1), counter.seen


def test_postgres_a_large_query_streams_through_a_server_side_cursor(pg_counter: Any) -> None:
    make, counter = pg_counter
    reg = make(Trip)
    seed()
    reg.backend.batch_size = 8  # type: ignore[attr-defined]
    trips = counter.trips(lambda: [t.n for t in Trip.query().order_by(Trip.n)])
    assert [t.n for t in Trip.query().order_by(Trip.n)] == list(range(30))
    # The probe (9 rows), BEGIN, DECLARE, 30/8 -> 4 FETCHes of rows, COMMIT: only large results pay more.
    assert 5 <= trips <= 9, counter.seen
    assert counter.trips(lambda: Trip.query().limit(8).all()) == 1  # a window of one batch


def test_postgres_ttl_writes_sweep_at_most_once_per_interval(pg_counter: Any) -> None:
    make, counter = pg_counter
    make(Visit)
    Visit.create(token="first")  # the first write on a TTL table sweeps (in its transaction)
    past = odm.utcnow() - dt.timedelta(seconds=5)
    assert counter.trips(lambda: Visit.create(token="old", expires_at=past)) == 1
    assert Visit.get_or_none("old") is None
    # An expired item in the way of a write is swept then, and the write lands.
    assert Visit.create(token="old").expires_at > odm.utcnow()
    assert counter.trips(lambda: Visit.create(token="second")) == 1
    assert counter.trips(lambda: Visit.get("second")) == 1


def test_postgres_no_check_query_on_borrow(pg_counter: Any) -> None:
    make, counter = pg_counter
    make(Trip)
    seed()
    for _ in range(3):
        assert counter.trips(lambda: Trip.get("a")) == 1  # the statement, and no check query before it


def test_sqlite_single_item_calls_run_one_statement_and_open_no_connection(sqlite_counter: Any) -> None:
    make, counter = sqlite_counter
    make(Trip)
    seed()
    list(Trip.query())  # the first stream opens its connection; later ones reuse it
    # A conditional write (an increment is guarded to stay in range) keeps its transaction: its
    # BEGIN IMMEDIATE holds the write lock over the write and the check telling a refusal apart.
    for name, call in single_item_calls().items():
        counter.trips(call)
        verbs = [statement.split(" ")[0] for statement in counter.seen]
        if name == "update with odm.inc":
            assert verbs == ["BEGIN", "UPDATE", "COMMIT"], counter.seen
        else:
            assert len(verbs) == 1 and verbs[0] not in ("BEGIN", "COMMIT"), (name, counter.seen)
        assert counter.connections == 0, name


def test_sqlite_streams_reuse_their_connection_and_keep_a_snapshot(sqlite_counter: Any) -> None:
    make, counter = sqlite_counter
    make(Trip)
    Trip.insert_many([Trip(k=f"s{i:04d}", n=i) for i in range(1200)])
    rows = iter(Trip.query().order_by(Trip.n))
    first = [next(rows)]
    Trip.query().delete()  # written while the stream reads: it keeps its snapshot
    assert len(first + list(rows)) == 1200
    assert Trip.query().count() == 0
    counter.trips(lambda: list(Trip.query()))
    assert counter.connections == 0
