"""PostgreSQL connections kept idle by the backend between calls (issue 11): never more than
``poolSize`` server sessions, no thread left waiting while one sits idle, none left open by close()."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import odm
from odm import Model, fields

from ..conftest import registries

psycopg = pytest.importorskip("psycopg")
conninfo = pytest.importorskip("psycopg.conninfo")

#: The sessions of this test's registry (its connections carry their own application_name: the
#: database is the test session's, where other tests' registries may hold connections).
OWN = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"


class PoolItem(Model):
    k = fields.String(required=True)
    n = fields.Integer()

    class Meta:
        name = "pg_pool_items"
        hash_key = "k"


@pytest.fixture
def dsn(_targets: Callable[[str], Any]) -> Iterator[str]:
    """The test database's connection string, with an application_name of its own (the registry
    that tells it opens no connection)."""
    for make in registries(_targets("postgres")):
        yield conninfo.make_conninfo(make().backend.conninfo, application_name=f"odm_pool_{uuid.uuid4().hex[:8]}")  # type: ignore[attr-defined]


def sessions(dsn: str) -> int:
    """How many sessions the registry on ``dsn`` has on the server."""
    with psycopg.connect(dsn, autocommit=True, application_name="odm_pool_admin") as admin:
        return int(admin.execute(OWN, [conninfo.conninfo_to_dict(dsn)["application_name"]]).fetchone()[0])


def test_more_threads_than_connections_share_them_without_waiting_for_the_pool_timeout(dsn: str) -> None:
    with odm.Registry("postgres", dsn=dsn, poolSize=2, timeout=5) as reg:
        reg.register(PoolItem)
        reg.sync()
        PoolItem.query().delete()  # the database is the session's: another test's items
        PoolItem.insert_many([{"k": f"k{i}", "n": i} for i in range(20)])
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(150):
                    assert PoolItem.get(f"k{(t + i) % 20}").n == (t + i) % 20
                    if i % 10 == 0:
                        assert len(list(PoolItem.query(n=i % 20))) == 1
            except BaseException as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        most = 0
        while any(t.is_alive() for t in threads):
            most = max(most, sessions(dsn))
        for thread in threads:
            thread.join(60)
        assert errors == []  # a thread left waiting on the pool while a connection sat idle would time out
        assert most <= 2  # the pool's max_size bounds the sessions, those kept idle by the backend included
        assert PoolItem.query().count() == 20


def test_close_ends_every_session_kept_idle(dsn: str) -> None:
    reg = odm.Registry("postgres", dsn=dsn, poolSize=3)
    with reg:
        reg.register(PoolItem)
        reg.sync()
        PoolItem.query().delete()  # the database is the session's: another test's items
        PoolItem.create(k="a", n=1)
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.extend(PoolItem.get("a").n for _ in range(50))) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert results == [1] * 150
        assert sessions(dsn) >= 1
    for _ in range(100):  # the server ends a closed session's process shortly after
        if sessions(dsn) == 0:
            break
        time.sleep(0.05)
    assert sessions(dsn) == 0
    with pytest.raises(odm.ConfigError, match="has been closed"):
        PoolItem.get("a")


def test_a_session_ended_while_kept_idle_is_replaced_unnoticed(dsn: str) -> None:
    with odm.Registry("postgres", dsn=dsn, poolSize=2) as reg:
        reg.register(PoolItem)
        reg.sync()
        PoolItem.query().delete()  # the database is the session's: another test's items
        PoolItem.create(k="a", n=1)
        for _ in range(3):
            assert PoolItem.get("a").n == 1  # the connection is kept idle by the backend after each call
            with psycopg.connect(dsn, autocommit=True, application_name="odm_pool_admin") as admin:
                ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                                      "application_name = %s", [conninfo.conninfo_to_dict(dsn)["application_name"]])
                assert ended.fetchone()[0] >= 1
            time.sleep(0.1)
            assert PoolItem.get("a").n == 1
            assert [i.n for i in PoolItem.query(k="a")] == [1]
