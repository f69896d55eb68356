"""Logging on every backend (docs/logging.md): requests at DEBUG, retries at WARNING, no values or secrets.

Records are read from pytest's ``caplog`` with the ``odm`` logger at DEBUG. Each backend runs the
same calls in both APIs (sync and awaited); the retries are real: DynamoDB Local behind the
throttling proxy of the fault tests, PostgreSQL behind a TCP proxy that cuts a pooled connection
when its next statement arrives (a connection lost without notice, as after a failover).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import odm
from odm import Model, fields

from ..dynamo_proxy import DynamoFaultProxy
from .test_log_secrets import CASES, Case, leaks

#: What the calls write: none of it may appear in a record unless values are shown.
KEY, NOTE = "key-Zq81", "note-Wv37"


class LogItem(Model):
    k = fields.String(required=True)
    n = fields.Integer()
    note = fields.String()

    class Meta:
        name = "log_items"
        hash_key = "k"
        indexes = ["n"]


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """``odm`` at DEBUG (records kept by caplog); values hidden again afterwards."""
    caplog.set_level(logging.DEBUG, logger="odm")
    yield caplog
    odm.logs.show_values(False)


def requests_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("odm.requests.")]


def text_of(records: list[logging.LogRecord]) -> str:
    """Everything a formatter could print of the records: messages and every odm_ attribute."""
    return "\n".join(r.getMessage() + " " + repr({k: v for k, v in vars(r).items() if k.startswith("odm_")})
                     for r in records)


def calls(reg: odm.Registry, style: str) -> None:
    """A create, a get and a query on the index, in the sync or the async API."""
    if style == "sync":
        LogItem.create(k=KEY, n=7, note=NOTE)
        assert LogItem.get(KEY).note == NOTE
        assert [i.k for i in LogItem.query(LogItem.n == 7)] == [KEY]
        return

    async def main() -> None:
        await LogItem.acreate(k=KEY, n=7, note=NOTE)
        assert (await LogItem.aget(KEY)).note == NOTE
        assert [i.k async for i in LogItem.query(LogItem.n == 7)] == [KEY]
        await reg.aclose()

    asyncio.run(main())


def run_calls(make_registry: Callable[..., odm.Registry], caplog: pytest.LogCaptureFixture,
              style: str) -> tuple[odm.Registry, list[logging.LogRecord]]:
    reg = make_registry(LogItem)
    LogItem.query().delete()
    caplog.clear()
    try:
        calls(reg, style)
    finally:
        if style == "async":  # the sync connections again, for the cleanup
            make_registry(LogItem, sync=False, rebind=True)
    return reg, requests_of(caplog)


@pytest.mark.parametrize("style", ["sync", "async"])
def test_debug_logs_each_request_with_table_operation_rows_and_duration_but_no_values(
        make_registry: Callable[..., odm.Registry], debug: pytest.LogCaptureFixture, style: str, target: Any) -> None:
    reg, records = run_calls(make_registry, debug, style)
    backend = reg.backend.name
    assert records, "no request was logged"
    assert {r.name for r in records} == {f"odm.requests.{backend}"}
    assert all(r.levelno == logging.DEBUG for r in records)
    ours = [r for r in records if (r.odm_table or "").endswith("log_items")]  # type: ignore[attr-defined]
    ops = [r.odm_op for r in ours]  # type: ignore[attr-defined]
    writes = {"insert", "put"}
    assert writes & set(ops), ops
    assert "get" in ops, ops
    assert {"query", "find"} & set(ops), ops
    for r in ours:
        ms = r.odm_ms  # type: ignore[attr-defined]
        printed = re.search(r" (\d+\.\d\d) ms", r.getMessage())
        assert isinstance(ms, float) and ms >= 0 and printed and abs(float(printed[1]) - ms) <= 0.006
        assert r.getMessage().startswith(f"{backend} {r.odm_op} ")  # type: ignore[attr-defined]
    got = next(r for r in ours if r.odm_op == "get")  # type: ignore[attr-defined]
    assert got.odm_rows == 1 and "rows=1" in got.getMessage()  # type: ignore[attr-defined]
    if backend == "dynamodb":
        queried = [r for r in ours if r.odm_op == "query"]  # type: ignore[attr-defined]
        assert queried and all(r.odm_index for r in queried), "the GSI the planner chose"  # type: ignore[attr-defined]
        assert all(r.odm_capacity is not None for r in ours), "DynamoDB's consumed capacity"  # type: ignore[attr-defined]
        assert f"index={queried[0].odm_index}" in queried[0].getMessage()  # type: ignore[attr-defined]
    shown = text_of(records)
    assert KEY not in shown and NOTE not in shown, shown
    assert "odm_values" not in shown


def test_a_table_name_with_percent_and_quotes_is_logged_as_declared(make_registry: Callable[..., odm.Registry],
                                                                    debug: pytest.LogCaptureFixture) -> None:
    """PostgreSQL's statements double ``%`` for psycopg and SQL quotes double ``"``: the record shows
    the table's own name, not the statement's spelling of it."""
    name = 'log_100%_"q"'

    Hostile = type("LogHostile", (Model,), {"k": fields.String(required=True),
                                          "Meta": type("Meta", (), {"name": name, "hash_key": "k"})})
    try:
        make_registry(Hostile)
    except odm.ConfigError as exc:
        pytest.skip(f"this backend's table names cannot hold % or quotes: {exc}")
    debug.clear()
    Hostile.create(k="a")
    tables = {r.odm_table for r in requests_of(debug)}  # type: ignore[attr-defined]
    assert any(t is not None and t.endswith(name) for t in tables), tables
    assert not any(t is not None and "%%" in t for t in tables), tables


def test_values_appear_once_enabled(make_registry: Callable[..., odm.Registry], debug: pytest.LogCaptureFixture,
                                    target: Any) -> None:
    odm.logs.show_values(True)
    _, records = run_calls(make_registry, debug, "sync")
    shown = text_of(records)
    assert KEY in shown and NOTE in shown
    assert any(KEY in getattr(r, "odm_values", "") for r in records)


def test_nothing_is_logged_or_timed_below_debug(make_registry: Callable[..., odm.Registry],
                                                caplog: pytest.LogCaptureFixture, target: Any) -> None:
    caplog.set_level(logging.INFO, logger="odm")
    _, records = run_calls(make_registry, caplog, "sync")
    assert records == []


# -- retries -------------------------------------------------------------------------------------
def retries_of(caplog: pytest.LogCaptureFixture, backend: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == f"odm.retries.{backend}" and r.levelno == logging.WARNING]


def test_dynamodb_throttling_and_unprocessed_items_are_warnings(_targets: Callable[[str], Any],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="odm")
    target = _targets("dynamodb")
    target.new_scope()
    setup = target.registry()
    setup.register(LogItem)
    target.sync(setup)
    endpoint, prefix = setup.backend.endpoint, setup.backend.prefix  # type: ignore[attr-defined]
    setup.close()
    with DynamoFaultProxy(endpoint, throttle=0.5, trim=0.5, seed=3) as proxy:
        reg = odm.Registry("dynamodb", endpoint=proxy.endpoint, awsRegion="us-east-1", awsSecretKeyId="test",
                           awsSecretAccessKey="test", tablePrefix=prefix)
        reg.backend.retry = odm.backends.dynamodb.retry.RetryPolicy(base=0.002, cap=0.02)  # type: ignore[attr-defined]
        reg.register(LogItem)
        try:
            LogItem.insert_many([LogItem(k=f"r{i}", n=i, note=NOTE) for i in range(60)])
            for i in range(10):
                assert LogItem.get(f"r{i}").n == i
            assert len(LogItem.batch_get([f"r{i}" for i in range(60)])) == 60
            LogItem.query().delete()
        finally:
            reg.close()
    assert proxy.requests("throttled") > 0 and proxy.requests("trimmed") > 0, proxy.counts
    warnings = retries_of(caplog, "dynamodb")
    throttled = [r for r in warnings if "throttled (ProvisionedThroughputExceededException)" in r.getMessage()]
    unprocessed = [r for r in warnings if "unprocessed" in r.getMessage()]
    assert throttled and unprocessed, [r.getMessage() for r in warnings]
    for r in throttled + unprocessed:
        assert r.odm_attempt >= 2 and r.odm_wait >= 0  # type: ignore[attr-defined]
        assert f"attempt {r.odm_attempt}" in r.getMessage() and prefix + "log_items" in r.getMessage()  # type: ignore[attr-defined]
    assert NOTE not in text_of(warnings)


class CuttingProxy:
    """A loopback TCP proxy to PostgreSQL that can cut a connection when its next statement arrives.

    ``cut()`` arms it for the connections open at that moment: the first of them that sends
    anything is closed on both sides instead, with no notice before, so the client finds out only
    when its statement gets no answer (a connection lost silently: a failover, a NAT timeout).
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open: list[socket.socket] = []
        self.armed: set[socket.socket] = set()
        self.cuts = 0
        self.lock = threading.Lock()
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            self.armed = set(self.open)

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            with self.lock:
                self.open.append(client)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client:
                    with self.lock:
                        cut = src in self.armed
                        if cut:
                            self.armed = set()
                            self.cuts += 1
                    if cut:
                        break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.closing = True
        self.server.close()
        with self.lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.mark.parametrize("style", ["sync", "async"])
def test_postgres_read_run_again_after_a_lost_connection_is_a_warning(
        _targets: Callable[[str], Any], caplog: pytest.LogCaptureFixture, style: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    caplog.set_level(logging.WARNING, logger="odm")
    base = _targets("postgres").registry()
    params = psycopg.conninfo.conninfo_to_dict(base.backend.conninfo)  # type: ignore[attr-defined]
    base.close()
    proxy = CuttingProxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    params.update(host="127.0.0.1", port=proxy.port)
    reg = odm.Registry("postgres", dsn=psycopg.conninfo.make_conninfo(**params))
    reg.register(LogItem, rebind=True)
    try:
        reg.sync()
        LogItem.query().delete()
        LogItem.create(k=KEY, n=1, note=NOTE)
        if style == "sync":
            proxy.cut()
            assert LogItem.get(KEY).n == 1  # the read ran again on another connection
        else:
            async def main() -> None:
                assert (await LogItem.aget(KEY)).n == 1  # the async pool's first connection
                proxy.cut()
                assert (await LogItem.aget(KEY)).n == 1
                await reg.aclose()

            asyncio.run(main())
            reg = odm.Registry("postgres", dsn=psycopg.conninfo.make_conninfo(**params))
            reg.register(LogItem, rebind=True)
        LogItem.query().delete()
    finally:
        reg.close()
        proxy.close()
    assert proxy.cuts == 1
    warnings = retries_of(caplog, "postgres")
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    message = warnings[0].getMessage()
    assert message.startswith("postgres get log_items: the server ended the connection") and "attempt 2" in message
    assert KEY not in message


# -- secrets -------------------------------------------------------------------------------------
@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest, _targets: Callable[[str], Any]) -> Iterator[Case]:
    built = CASES[request.param](_targets)
    yield built
    for cleanup in built.cleanups:
        cleanup()


@pytest.mark.parametrize("values", [False, True])
def test_no_secret_in_any_odm_record(case: Case, debug: pytest.LogCaptureFixture, values: bool) -> None:
    """A PostgreSQL DSN with a password, MongoDB credentials, AWS keys: absent from every odm record,
    values shown or not, failures included."""
    odm.logs.show_values(values)
    reg = case.open()
    try:
        reg.register(LogItem, rebind=True)
        reg.sync()
        LogItem.create(k=KEY, n=1, note=NOTE)
        LogItem.get(KEY).update(n=2)
        assert LogItem.query(LogItem.n == 2).count() == 1
        with pytest.raises(odm.DuplicateKey):
            LogItem.create(k=KEY, n=3)
        LogItem.query().delete()
    finally:
        reg.close()
    records = [r for r in debug.records if r.name.startswith("odm")]
    assert len(records) > 5
    shown = text_of(records) + "\n".join(logging.Formatter().format(r) for r in records)
    assert (NOTE in shown) is values
    assert leaks(shown, case.secrets) == []
