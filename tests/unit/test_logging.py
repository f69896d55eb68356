"""odm.logs without a server: the logger tree, the record format, the values switch, the cost when off.

SQLite (in memory) stands in for a backend where a real call is needed; the per-backend records
are tested on every backend in tests/backends/test_logging.py.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from time import perf_counter

import pytest

import odm
from odm import Model, fields, logs
from odm.backends.sql import sqlite as sqlite_backend
from odm.backends.sql.requests import Execute
from odm.redaction import watch


class Note(Model):
    k = fields.String(required=True)
    text = fields.String()

    class Meta:
        name = "log_notes"
        hash_key = "k"


@pytest.fixture
def reg() -> Iterator[odm.Registry]:
    with odm.Registry("sqlite", path=":memory:") as registry:
        registry.register(Note)
        registry.sync()
        yield registry
    logs.show_values(False)


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, check=True)


def test_the_odm_logger_has_a_null_handler_so_an_unconfigured_app_prints_nothing() -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("odm").handlers)
    # Without it, Python's last-resort handler would print this WARNING on stderr.
    done = run("import odm, odm.logs as l\n"
               "l.retry(l.retries_logger('dynamodb'), 'dynamodb', 'get', 't', 'throttled', 2, 16, 0.1)\n"
               "print('ok')")
    assert (done.stdout, done.stderr) == ("ok\n", "")


def test_values_are_off_by_default_and_switched_by_call_or_environment() -> None:
    assert run("import odm; print(odm.logs.showing_values())").stdout == "False\n"
    assert run("import odm; print(odm.logs.showing_values())", ODM_LOG_VALUES="1").stdout == "True\n"
    assert run("import odm; print(odm.logs.showing_values())", ODM_LOG_VALUES="0").stdout == "False\n"
    logs.show_values(True)
    try:
        assert logs.showing_values()
    finally:
        logs.show_values(False)
    assert not logs.showing_values()


def test_a_request_record_is_one_line_with_its_parts_as_attributes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="odm")
    logger = logs.requests_logger("dynamodb")
    logs.record(logger, "dynamodb", "query", "users", perf_counter(), index="by_age", rows=3, capacity=0.5,
                values={"ExpressionAttributeValues": {":0": {"N": "31"}}})
    (rec,) = caplog.records
    message = rec.getMessage()
    assert rec.name == "odm.requests.dynamodb" and rec.levelno == logging.DEBUG
    assert message.startswith("dynamodb query users index=by_age rows=3 capacity=0.5 ") and message.endswith(" ms")
    assert (rec.odm_op, rec.odm_table, rec.odm_index, rec.odm_rows, rec.odm_capacity) == (  # type: ignore[attr-defined]
        "query", "users", "by_age", 3, 0.5)
    assert "31" not in message and not hasattr(rec, "odm_values")


def test_values_shown_are_cut_to_a_readable_length(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="odm")
    logs.show_values(True)
    try:
        logs.record(logs.requests_logger("sqlite"), "sqlite", "insert", "t", perf_counter(), values=["x" * 5000])
    finally:
        logs.show_values(False)
    message = caplog.records[0].getMessage()
    assert "values=['xxx" in message and "(5004 characters)" in message and len(message) < 700


def test_a_failed_request_names_the_error_class_not_its_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="odm")
    logs.record(logs.requests_logger("sqlite"), "sqlite", "insert", "t", perf_counter(),
                error=ValueError("the value 'secret-ish user data' is wrong"))
    message = caplog.records[0].getMessage()
    assert "failed: ValueError" in message and "user data" not in message


@pytest.mark.parametrize(("sql", "op", "table"), [
    ('SELECT "doc" FROM "users" WHERE "_hk" = ?', "select", "users"),
    ('SELECT COUNT(*) FROM "a ""b""" WHERE TRUE', "count", 'a "b"'),
    ('INSERT INTO "users" ("_hk", "doc", "_exp") VALUES (?, ?, ?)', "insert", "users"),
    ('UPDATE "users" SET "doc" = ? WHERE "_hk" = ?', "update", "users"),
    ('DELETE FROM "100%" WHERE TRUE', "delete", "100%"),
    ('CREATE TABLE IF NOT EXISTS "_odm_schema" ("name" TEXT PRIMARY KEY)', "create", "_odm_schema"),
    ('CREATE INDEX "users__ix_age" ON "users" (x)', "create", "users"),
    ("SAVEPOINT odm_op_1", "savepoint", None),
])
def test_sql_statements_are_named_by_kind_and_table(sql: str, op: str, table: str | None) -> None:
    assert (logs.sql_op(sql), logs.sql_table(sql)) == (op, table)
    assert logs.sql_table(sql.replace("%", "%%"), percents=True) == table  # PostgreSQL's statements
    assert logs.sql_request_op(Execute(sql, (), "one")) == ("get" if op == "select" else op)


def test_a_retry_is_a_warning_with_attempt_and_wait(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="odm")
    logs.retry(logs.retries_logger("dynamodb"), "dynamodb", "batch_write", "t_users", "3 unprocessed item(s)", 2, None,
               0.0421)
    (rec,) = caplog.records
    assert rec.levelno == logging.WARNING and rec.name == "odm.retries.dynamodb"
    assert rec.getMessage() == "dynamodb batch_write t_users: 3 unprocessed item(s); attempt 2 in 0.042 s"
    assert (rec.odm_attempt, rec.odm_wait) == (2, 0.0421)  # type: ignore[attr-defined]


def test_a_configured_secret_is_masked_in_odm_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="odm")
    watch(("odm",), ["Pw-unit-9Zq"])
    logs.requests_logger("postgres").debug("connected with Pw-unit-9Zq")
    assert caplog.records[0].getMessage() == "connected with ***"


def test_sqlite_calls_log_each_statement_at_debug(reg: odm.Registry, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="odm")
    Note.create(k="a", text="hello")
    Note.get("a")
    assert [n.k for n in Note.query(Note.text == "hello")] == ["a"]
    Note.query().count()
    seen = [(r.odm_op, r.odm_table, r.odm_rows) for r in caplog.records]  # type: ignore[attr-defined]
    assert seen == [("insert", "log_notes", 1), ("get", "log_notes", 1), ("query", "log_notes", None),
                    ("fetch", "log_notes", 1), ("count", "log_notes", 1)]


def test_with_debug_off_a_call_reads_no_clock_and_logs_nothing(reg: odm.Registry, caplog: pytest.LogCaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost when off is the level check: no timing, no record built."""
    caplog.set_level(logging.INFO, logger="odm")
    reads = []

    def clock() -> float:
        reads.append(1)
        return perf_counter()

    monkeypatch.setattr(sqlite_backend, "perf_counter", clock)
    monkeypatch.setattr("odm.backends.sql.backend.perf_counter", clock)
    Note.create(k="b", text="x")
    Note.get("b").update(text="y")
    assert len(list(Note.query())) == 1
    Note.insert_many([{"k": "c"}])
    assert (reads, caplog.records) == ([], [])
    caplog.set_level(logging.DEBUG, logger="odm")
    Note.get("b")
    assert reads and caplog.records
