"""PostgreSQL faults: the session's server processes are terminated mid-operation.

An admin connection runs ``pg_terminate_backend`` on every other backend of the test database, as
a failover, a restart or an operator would. The call in flight raises ``odm.BackendUnavailable``
(the psycopg error only as its cause), a write in flight leaves nothing half-written, nothing is
printed, and the next call works again on fresh connections. A write is caught "in flight"
without timing: an admin transaction holds a lock the write needs, the test waits until the
server shows the write waiting on it, then terminates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import odm
from odm import Model, fields

from ..conftest import registries

psycopg = pytest.importorskip("psycopg")

ROWS = 600  # per streamed query, 50 a round trip: a termination lands mid-stream in most rounds
ROUNDS = 8  # terminations during the concurrent work
WAIT = 60  # seconds before a stuck step fails the test (never reached when things work)
TERMINATE = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname = current_database() AND pid <> pg_backend_pid()")


class Fault(Model):
    k = fields.String(required=True)
    n = fields.Integer()
    version = fields.Integer()

    class Meta:
        name = "pg_fault_items"
        hash_key = "k"
        version_field = "version"


@pytest.fixture
def pg(_targets: Callable[[str], Any]) -> Iterator[Callable[..., odm.Registry]]:
    yield from registries(_targets("postgres"))


def admin(reg: odm.Registry, autocommit: bool = True) -> Any:
    return psycopg.connect(reg.backend.conninfo, autocommit=autocommit)  # type: ignore[attr-defined]


def terminate_others(reg: odm.Registry) -> int:
    with admin(reg) as conn:
        return int(conn.execute(TERMINATE).fetchone()[0])


def wait_until_blocked(reg: odm.Registry, blocker_pid: int) -> None:
    """Wait until another backend of the database waits on a lock (the one ``blocker_pid`` holds)."""
    with admin(reg) as conn:
        for _ in range(WAIT * 20):
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock' AND %s = ANY(pg_blocking_pids(pid))", [blocker_pid]).fetchone()
            if row[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the write never reached the lock held by the admin transaction")


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[BaseException | None]]:
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - asserted on by the caller
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def warnings_besides_the_pools(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Logged warnings, less psycopg_pool's one line per lost connection it replaces (left for operators)."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
            and not (r.name == "psycopg.pool" and r.getMessage().startswith("discarding closed connection"))]


def assert_unavailable(error: BaseException | None) -> None:
    assert isinstance(error, odm.BackendUnavailable), repr(error)
    assert isinstance(error.__cause__, psycopg.Error)  # the driver's error, kept for debugging only
    assert "Cannot reach PostgreSQL" in str(error)


def test_a_long_query_cut_by_termination_raises_backend_unavailable_and_the_next_call_recovers(
        pg: Callable[..., odm.Registry]) -> None:
    reg = pg(Fault)
    Fault.insert_many([Fault(k=f"q{i:04d}", n=i) for i in range(1500)])
    rows = iter(Fault.query(Fault.n >= 0).order_by(Fault.n))
    seen = [next(rows)]  # a server-side cursor, 500 rows a fetch: the rest is still on the server
    assert terminate_others(reg) >= 1
    with pytest.raises(odm.BackendUnavailable) as lost:
        seen.extend(rows)
    assert_unavailable(lost.value)
    assert [f.n for f in seen] == list(range(len(seen))) and len(seen) < 1500  # what was yielded stands
    # Between calls: the idle pooled connections are dropped too; the next calls do not notice.
    Fault.get("q0001")
    assert terminate_others(reg) >= 1
    assert Fault.get("q0007").n == 7
    assert Fault.query().count() == 1500


def test_insert_many_terminated_midway_writes_nothing(pg: Callable[..., odm.Registry], capfd: pytest.CaptureFixture[str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    reg = pg(Fault)
    items = [Fault(k=f"k{i:04d}", n=i) for i in range(2500)]
    with admin(reg, autocommit=False) as blocker:
        # An uncommitted row with the key of item 1500: the insert of the batch holding that item
        # waits for this transaction, after the batches before it were inserted.
        blocker.execute('INSERT INTO "pg_fault_items" ("_hk", "doc") VALUES (%s, %s)', ["k1500", '{"k": "k1500"}'])
        thread, outcome = in_thread(lambda: Fault.insert_many(items))
        wait_until_blocked(reg, blocker.info.backend_pid)
        assert blocker.execute(TERMINATE).fetchone()[0] >= 1
        blocker.rollback()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert_unavailable(outcome[0])
    assert Fault.query().count() == 0  # the rows inserted before the termination were rolled back
    Fault.insert_many(items)  # the next call recovers
    assert Fault.query().count() == 2500
    assert capfd.readouterr() == ("", "")
    assert warnings_besides_the_pools(caplog) == []


def test_versioned_save_terminated_in_flight_changes_nothing(pg: Callable[..., odm.Registry]) -> None:
    reg = pg(Fault)
    item = Fault.create(k="a", n=1)
    item.n = 2
    with admin(reg, autocommit=False) as blocker:
        blocker.execute('SELECT 1 FROM "pg_fault_items" WHERE "_hk" = %s FOR UPDATE', ["a"])
        thread, outcome = in_thread(item.save)
        wait_until_blocked(reg, blocker.info.backend_pid)
        assert blocker.execute(TERMINATE).fetchone()[0] >= 1
        blocker.rollback()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert_unavailable(outcome[0])
    stored = Fault.get("a")
    assert (stored.n, stored.version) == (1, 1)
    assert item.version == 1  # nothing was written, so the instance keeps the version it had
    item.save()  # retrying is safe and lands once
    assert (Fault.get("a").n, Fault.get("a").version) == (2, 2)


def test_terminations_during_concurrent_work_raise_only_backend_unavailable(pg: Callable[..., odm.Registry]) -> None:
    reg = pg(Fault)
    Fault.insert_many([Fault(k=f"c{i:04d}", n=i) for i in range(ROWS)])
    reg.backend.batch_size = 50  # type: ignore[attr-defined]  # many round trips per iteration
    stop = threading.Event()
    errors: list[BaseException] = []
    calls = [0]

    def work(worker: int) -> None:
        while not stop.is_set():
            try:
                assert sum(1 for _ in Fault.query(Fault.n >= 0)) == ROWS
                Fault.get(f"c{worker:04d}").update(n=odm.inc(0))
                assert Fault.query().count() == ROWS
            except odm.BackendUnavailable:
                pass
            except BaseException as exc:  # noqa: BLE001 - anything else fails the test below
                errors.append(exc)
            calls[0] += 1

    workers = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for t in workers:
        t.start()
    terminated = 0
    try:
        for _ in range(ROUNDS):
            seen = calls[0]
            while calls[0] < seen + 3 and not errors and all(t.is_alive() for t in workers):
                time.sleep(0.01)
            terminated += terminate_others(reg)
    finally:
        stop.set()
        for t in workers:
            t.join(WAIT)
    assert errors == []
    assert terminated >= ROUNDS
    assert Fault.query().count() == ROWS  # and the registry works again
    assert sorted(f.n for f in Fault.query()) == list(range(ROWS))


def test_an_abandoned_stream_on_a_terminated_connection_is_quiet(pg: Callable[..., odm.Registry], capfd: pytest.CaptureFixture[str],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    reg = pg(Fault)
    Fault.insert_many([Fault(k=f"s{i:04d}", n=i) for i in range(1500)])
    rows = iter(Fault.query(Fault.n >= 0))
    next(rows)
    terminate_others(reg)
    rows.close()  # type: ignore[attr-defined]  # what a `break` out of the loop does
    del rows
    assert Fault.query().count() == 1500
    assert capfd.readouterr() == ("", "")
    assert warnings_besides_the_pools(caplog) == []


def test_after_every_session_is_dropped_the_next_call_takes_fresh_connections(pg: Callable[..., odm.Registry]) -> None:
    """The pool's own check slept 1 s, 2 s, 4 s, ... per dead connection it met: 8 dead ones outlasted a 5 s timeout."""
    held = 8
    conninfo = pg().backend.conninfo  # type: ignore[attr-defined]
    with odm.Registry("postgres", dsn=conninfo, timeout=5) as reg:
        reg.register(Fault)
        reg.sync()
        Fault.insert_many([Fault(k=f"p{i:04d}", n=i) for i in range(1200)])
        streams = [iter(Fault.query(Fault.n >= 0)) for _ in range(held)]
        for stream in streams:
            next(stream)  # each open stream holds its own connection
        for stream in streams:
            stream.close()  # type: ignore[attr-defined]  # ... and hands it back: the pool keeps them all
        assert terminate_others(reg) >= held
        assert Fault.get("p0007").n == 7
        assert Fault.query().count() == 1200
        Fault.query().delete()
