"""Secrets never reach logs, reprs or errors, with every logger (drivers included) at DEBUG.

Each backend that takes credentials gets real ones on the session's server: a PostgreSQL role
with a password, a MongoDB user, AWS keys and a session token (DynamoDB Local accepts any).
SQLite takes no credentials and is not listed. A full CRUD round runs while every record is
captured; then the same credentials point at a closed port to check the connection errors.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import odm
from odm import Model, fields

from .. import servers

DRIVER_LOGGERS = ["botocore", "boto3", "urllib3", "pymongo", "psycopg", "psycopg.pool"]


class Vault(Model):
    key = fields.String(required=True)
    n = fields.Integer()
    note = fields.String()

    class Meta:
        name = "log_vault"
        hash_key = "key"


@dataclass
class Case:
    """How to open a registry with secrets on one backend, and with the same secrets on a closed port."""

    secrets: list[str]
    open: Callable[[], odm.Registry]
    unreachable: Callable[[], odm.Registry]
    cleanups: list[Callable[[], None]] = field(default_factory=list)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    """Every logger at DEBUG, every record formatted and kept."""
    root = logging.getLogger()
    saved = [(root, root.level)] + [(logging.getLogger(n), logging.getLogger(n).level) for n in DRIVER_LOGGERS]
    capture = Capture()
    root.addHandler(capture)
    for logger, _ in saved:
        logger.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    for logger, level in saved:
        logger.setLevel(level)


def _closed_port() -> int:
    return servers.free_port()


def postgres_case(get: Callable[[str], Any]) -> Case:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    base = get("postgres").registry()
    dsn: str = base.backend.conninfo  # type: ignore[attr-defined]
    base.close()
    role, password = f"odm_log_{uuid.uuid4().hex[:8]}", "pg-Zq8'secret with space"
    admin = psycopg.connect(dsn, autocommit=True)
    admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s".replace("%s", "'" + password.replace("'", "''") + "'"))
    admin.execute(f'CREATE DATABASE "{role}" OWNER {role}')  # its own database: no other test's tables
    params = conninfo_to_dict(dsn)
    params.update(user=role, password=password, dbname=role)
    with_password = make_conninfo(**params)
    url = f"postgresql://{role}:{urllib.parse.quote(password, safe='')}@127.0.0.1:{_closed_port()}/x"

    def cleanup() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
        admin.execute(f"DROP ROLE {role}")
        admin.close()

    return Case([password], lambda: odm.Registry("postgres", dsn=with_password),
                lambda: odm.Registry("postgres", dsn=url, timeout=2), [cleanup])


def mongodb_case(get: Callable[[str], Any]) -> Case:
    import pymongo

    base = get("mongodb").registry()
    info = base.backend  # type: ignore[attr-defined]
    host, database = info.label.split("/", 1)
    base.close()
    user, password = f"u{uuid.uuid4().hex[:8]}", "p@ss:w/rd%Zq8"
    admin: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(f"mongodb://{host}/?directConnection=true")
    admin[database].command("createUser", user, pwd=password, roles=["readWrite"])
    quoted = urllib.parse.quote(password, safe="")

    def cleanup() -> None:
        admin[database].command("dropUser", user)
        admin.close()

    return Case([password], lambda: odm.Registry("mongodb", uri=f"mongodb://{user}:{quoted}@{host}/{database}?directConnection=true"),
                lambda: odm.Registry("mongodb", host=f"127.0.0.1:{_closed_port()}", database=database, user=user,
                                     **{"pass": password}, timeout=0.5), [cleanup])


def dynamodb_case(get: Callable[[str], Any]) -> Case:
    base = get("dynamodb").registry()
    endpoint, prefix = base.backend.endpoint, base.backend.prefix  # type: ignore[attr-defined]
    base.close()
    secret, token = "aws/Secret+Key" + uuid.uuid4().hex, "FwoGZXIvYXdzEZq8//token+" + uuid.uuid4().hex + "=="

    def make(url: str) -> odm.Registry:
        return odm.Registry("dynamodb", endpoint=url, awsRegion="us-east-1", awsSecretKeyId="AKIDLOGTEST",
                            awsSecretAccessKey=secret, awsSessionToken=token, tablePrefix=prefix)

    return Case([secret, token], lambda: make(endpoint), lambda: make(f"http://127.0.0.1:{_closed_port()}"))


CASES = {"postgres": postgres_case, "mongodb": mongodb_case, "dynamodb": dynamodb_case}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest, _targets: Callable[[str], Any]) -> Iterator[Case]:
    built = CASES[request.param](_targets)
    yield built
    for cleanup in built.cleanups:
        cleanup()


def crud_round() -> None:
    Vault.create(key="a", n=1, note="first")
    assert Vault.get("a").n == 1
    Vault.get("a").update(n=odm.inc(1))
    item = Vault.get("a")
    item.note = "saved"
    item.save()
    Vault.insert_many([Vault(key=f"k{i}", n=i) for i in range(30)])
    assert len(Vault.batch_get([f"k{i}" for i in range(30)])) == 30
    assert Vault.query(Vault.n >= 10).count() == 20
    assert len(list(Vault.query(Vault.n < 5))) == 6
    Vault.get("a").delete()
    assert Vault.delete_many(Vault.query(Vault.n >= 0)) == 30


def leaks(text: str, secrets: list[str]) -> list[str]:
    forms = {f for s in secrets for f in (s, urllib.parse.quote(s, safe=""), urllib.parse.quote_plus(s))}
    return [f for f in forms if f in text]


def test_no_secret_in_debug_logs_reprs_or_connection_errors(case: Case, debug_logs: Capture) -> None:
    reg = case.open()
    try:
        reg.register(Vault)
        reg.sync()
        crud_round()
        shown = repr(reg) + repr(reg.backend)
    finally:
        reg.close()
    assert len(debug_logs.lines) > 20  # the drivers really logged
    assert leaks(shown, case.secrets) == []
    logged = "\n".join(debug_logs.lines)
    assert leaks(logged, case.secrets) == [], [line for line in debug_logs.lines if leaks(line, case.secrets)][:3]
    # A request signature (SigV4) is a credential for minutes: not logged either.
    assert not re.search(r"Signature\W{1,4}[0-9a-f]{64}", logged)

    bad = case.unreachable()
    try:
        bad.register(Vault)
        with pytest.raises(odm.ODMError) as info:
            Vault.get_or_none("a")
        shown = f"{info.value} {info.value!r} {bad!r}"
    finally:
        bad.close()
    assert "127.0.0.1" in shown and leaks(shown, case.secrets) == [], shown
    assert leaks("\n".join(debug_logs.lines), case.secrets) == []


@pytest.mark.parametrize("password", ["e", "se", "p@ss", "p/w:d%e"])
def test_short_password_masks_only_itself_in_connection_errors(password: str) -> None:
    quoted = urllib.parse.quote(password, safe="")
    port = _closed_port()
    cases = [("mongodb", {"uri": f"mongodb://alice:{quoted}@127.0.0.1:{port}/db?directConnection=true", "timeout": 0.5})]
    try:
        import psycopg  # noqa: F401

        cases.append(("postgres", {"dsn": f"postgresql://alice:{quoted}@127.0.0.1:{port}/db", "timeout": 2}))
    except ImportError:
        pass
    for name, info in cases:
        reg = odm.Registry(name, **info)
        try:
            reg.register(Vault)
            with pytest.raises(odm.BackendUnavailable) as err:
                Vault.get_or_none("a")
        finally:
            reg.close()
        message = str(err.value)
        # The words around stay readable: no letter of them was taken for the password.
        assert "Cannot reach" in message and "refused" in message.lower() and "***" not in message, message
