"""MongoDB faults: the server dies mid-write and mid-read; nothing is lost, the error says what was written.

These tests start their own SecantusDB on a disk storage path (so it can be killed and restarted
with the same data) with ``--sync-on-commit`` (so an acknowledged write survives a SIGKILL, as
journaled writes do on mongod). The registry's ``timeout`` is short, so a call on a dead server
ends within seconds with ``odm.BackendUnavailable``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymongo.monitoring
import pytest

import odm
from odm import Model, fields

from .. import servers

TOTAL = 5000
BATCH = 500  # the registry's batchSize: insert_many sends TOTAL / BATCH batches, one after the other
WAIT = 120  # seconds before a stuck thread fails the test (never reached when things work)


class Item(Model):
    k = fields.String(required=True)
    n = fields.Integer()

    class Meta:
        name = "fault_items"
        hash_key = "k"


class InsertWatcher(pymongo.monitoring.CommandListener):
    """Signals when the n-th ``insert`` command to a given port starts (pymongo's command monitoring)."""

    def __init__(self) -> None:
        self.port: int | None = None
        self.nth = 0
        self.seen = 0
        self.reached = threading.Event()

    def arm(self, port: int, nth: int) -> None:
        self.port, self.nth, self.seen = port, nth, 0
        self.reached.clear()

    def disarm(self) -> None:
        self.port = None

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        if self.port is not None and event.command_name == "insert" and event.connection_id[1] == self.port:
            self.seen += 1
            if self.seen == self.nth:
                self.reached.set()

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass


# Listeners can only be registered process-wide: this one does nothing unless armed for our server.
WATCHER = InsertWatcher()
pymongo.monitoring.register(WATCHER)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Process]:
    storage: Path = tmp_path_factory.mktemp("secantus-disk")
    proc = servers.start_secantusdb(str(storage), "--sync-on-commit")
    yield proc
    proc.stop()


@pytest.fixture
def registry(server: servers.Process) -> Iterator[Callable[[], odm.Registry]]:
    """Registries with Item on the fault server, in this test's own database; closed afterwards."""
    database = f"faults_{uuid.uuid4().hex[:8]}"
    made: list[odm.Registry] = []

    def make() -> odm.Registry:
        reg = odm.Registry("mongodb", uri=f"mongodb://127.0.0.1:{server.port}/?directConnection=true",
                           database=database, timeout=2, batchSize=BATCH)
        made.append(reg)
        reg.register(Item)
        reg.sync()
        return reg

    yield make
    WATCHER.disarm()
    for reg in made:
        reg.close()


def in_thread(call: Callable[[], Any], done: threading.Event) -> tuple[threading.Thread, list[BaseException | None]]:
    """Run ``call`` in a thread; ``done`` is set when it returns (so a waiter never waits for nothing)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - asserted on by the caller
            outcome.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def stored_keys() -> set[tuple[Any, ...]]:
    return {(item.k,) for item in Item.query()}


def test_insert_many_cut_by_a_crash_says_what_was_written_and_a_rerun_converges(
        server: servers.Process, registry: Callable[[], odm.Registry]) -> None:
    registry()
    items = [Item(k=f"k{i:04d}", n=i) for i in range(TOTAL)]
    WATCHER.arm(server.port, nth=4)  # the server dies as the 4th batch of 10 goes out
    thread, outcome = in_thread(lambda: Item.insert_many(items), done=WATCHER.reached)
    assert WATCHER.reached.wait(WAIT)
    assert WATCHER.seen >= 4 and thread.is_alive(), "insert_many ended before its 4th batch was sent"
    server.kill()
    thread.join(WAIT)
    assert not thread.is_alive(), "insert_many did not return after the server died"
    error = outcome[0]
    assert isinstance(error, odm.BackendUnavailable), repr(error)
    assert "confirmed written" in str(error) and "fault_items" in str(error)
    written = set(error.written)  # type: ignore[attr-defined]
    unconfirmed = list(error.unconfirmed)  # type: ignore[attr-defined]
    assert len(written) >= 3 * BATCH and len(written) + len(unconfirmed) == TOTAL
    assert f"{len(written)} of {TOTAL} items are confirmed written" in str(error)

    server.restart()
    stored = stored_keys()
    assert written <= stored  # every item reported written survived the crash
    assert stored - written <= set(unconfirmed[:BATCH])  # only the batch in flight may have landed unreported

    # Rerunning the whole batch writes the rest; the items already there are reported, not replaced.
    with pytest.raises(odm.DuplicateKey) as clash:
        Item.insert_many(items)
    assert set(clash.value.failed) == stored  # type: ignore[attr-defined]
    assert len(str(clash.value)) < 2000  # names 20 keys and the count of the others, not thousands
    assert Item.query().count() == TOTAL
    assert stored_keys() == {(f"k{i:04d}",) for i in range(TOTAL)}


def test_query_cut_by_a_crash_raises_backend_unavailable_and_the_next_call_recovers(
        server: servers.Process, registry: Callable[[], odm.Registry]) -> None:
    registry()
    Item.insert_many([Item(k=f"s{i:04d}", n=i) for i in range(3 * BATCH)])
    seen: list[Item] = []
    stream = iter(Item.query().order_by(Item.k))
    seen.append(next(stream))  # the first batch has arrived; the rest is fetched as the loop goes on
    server.kill()
    with pytest.raises(odm.BackendUnavailable, match="Cannot reach MongoDB") as lost:
        seen.extend(stream)
    assert lost.value.__cause__ is not None and not isinstance(lost.value, pymongo.errors.PyMongoError)
    assert 1 <= len(seen) < 3 * BATCH

    # Between calls: a call on the dead server fails the same way, within the registry's timeout.
    with pytest.raises(odm.BackendUnavailable):
        Item.get("s0000")

    server.restart()
    assert Item.get("s0000").n == 0  # the same registry recovers on its own
    assert Item.query().count() == 3 * BATCH
    assert [item.k for item in Item.query().order_by(Item.k)] == [f"s{i:04d}" for i in range(3 * BATCH)]


def test_a_query_abandoned_after_a_crash_is_quiet(server: servers.Process, registry: Callable[[], odm.Registry],
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    registry()
    Item.insert_many([Item(k=f"q{i:04d}", n=i) for i in range(2 * BATCH)])
    stream = iter(Item.query())
    next(stream)
    server.kill()
    stream.close()  # type: ignore[attr-defined]  # what a `break` out of the loop does: no error to report
    del stream
    server.restart()
    assert Item.query().count() == 2 * BATCH
    assert capfd.readouterr() == ("", "")


def test_a_query_across_a_quick_restart_raises_backend_unavailable(server: servers.Process,
                                                                   registry: Callable[[], odm.Registry]) -> None:
    """Restarted before the next batch: the driver reconnects, but the server no longer knows the cursor."""
    registry()
    Item.insert_many([Item(k=f"r{i:04d}", n=i) for i in range(2 * BATCH)])
    stream = iter(Item.query())
    next(stream)
    server.kill()
    server.restart()
    with pytest.raises(odm.BackendUnavailable, match="lost the query's cursor"):
        list(stream)
    assert sum(1 for _ in Item.query()) == 2 * BATCH  # running the query again works
