"""PostgreSQL-only behaviour, against the real server: indexes, transactions, schema, errors, streaming."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import odm
from odm import Index, Model, fields

from .. import servers
from ..conftest import registries

psycopg = pytest.importorskip("psycopg")


class PgItem(Model):
    code = fields.String(required=True)
    name = fields.String()
    n = fields.Integer()
    slug = fields.String()
    tags = fields.List(fields.String())

    class Meta:
        name = "pg_items"
        hash_key = "code"
        indexes = ["name", "n", "tags", Index("slug", unique=True)]


class PgConflict(Model):
    key = fields.String(required=True)

    class Meta:
        name = "pg_conflict"
        hash_key = "key"


class PgKeyA(Model):
    a = fields.String(required=True)

    class Meta:
        name = "pg_keys"
        hash_key = "a"


class PgKeyB(Model):
    b = fields.Integer(required=True)

    class Meta:
        name = "pg_keys"
        hash_key = "b"


@pytest.fixture
def pg(_targets: Callable[[str], Any]) -> Iterator[Callable[..., odm.Registry]]:
    """Registries on the session's throwaway PostgreSQL database; rows are removed afterwards."""
    yield from registries(_targets("postgres"))


def raw(reg: odm.Registry) -> Any:
    return psycopg.connect(reg.backend.conninfo, autocommit=True)  # type: ignore[attr-defined]


def test_expression_indexes_serve_queries(pg: Callable[..., odm.Registry]) -> None:
    reg = pg(PgItem)
    PgItem.insert_many([PgItem(code=f"c{i:04d}", name=f"N{i}", n=i, slug=f"s{i}", tags=["all", f"t{i % 50}"])
                        for i in range(500)])
    with raw(reg) as conn:
        conn.execute("ANALYZE pg_items")
    # The table is small: forbid sequential scans so the plan shows whether an index *can* serve.
    planner = odm.Registry("postgres", dsn=reg.backend.conninfo + " options='-c enable_seqscan=off'")  # type: ignore[attr-defined]
    planner.register(PgItem, rebind=True)
    try:
        queries = {
            "pg_items__ix_name": PgItem.query(PgItem.name == "N7"),
            "pg_items__ix_n": PgItem.query(PgItem.n.between(10, 20)),
            "pg_items__ix_tags": PgItem.query(PgItem.tags.contains("t3")),
            "pg_items__ix_slug_uniq": PgItem.query(PgItem.slug.startswith("s49")),
        }
        for index, query in queries.items():
            explained = query.explain()
            assert explained["backend"] == "postgres" and "%s" in explained["sql"] and explained["params"]
            plan = "\n".join(explained["plan"])
            assert index in plan, plan
    finally:
        planner.close()
        reg.register(PgItem)
    assert {i.n for i in PgItem.query(PgItem.tags.contains("t3"))} == set(range(3, 500, 50))
    assert [i.n for i in PgItem.query(PgItem.slug.startswith("s49")).order_by(PgItem.n)] == [49, *range(490, 500)]


def test_insert_many_is_all_or_nothing(pg: Callable[..., odm.Registry]) -> None:
    reg = pg(PgItem)
    assert reg.backend.features.atomic_insert_many
    PgItem.create(code="old", slug="taken")
    with pytest.raises(odm.DuplicateKey, match="'old'"):
        PgItem.insert_many([PgItem(code="new1"), PgItem(code="new2"), PgItem(code="old")])
    with pytest.raises(odm.DuplicateKey):
        PgItem.insert_many([PgItem(code="new3"), PgItem(code="new3")])
    with pytest.raises(odm.DuplicateKey):
        PgItem.insert_many([PgItem(code="new4", slug="fresh"), PgItem(code="new5", slug="taken")])
    assert [i.code for i in PgItem.query()] == ["old"]
    PgItem.insert_many([PgItem(code=f"ok{i}") for i in range(3)])
    assert PgItem.query().count() == 4


def test_unique_index_violation_names_the_index(pg: Callable[..., odm.Registry]) -> None:
    pg(PgItem)
    PgItem.create(code="a", slug="same")
    with pytest.raises(odm.DuplicateKey, match="pg_items__ix_slug_uniq") as info:
        PgItem.create(code="b", slug="same")
    assert isinstance(info.value.__cause__, psycopg.errors.UniqueViolation)
    PgItem.create(code="c")  # items without the field are not constrained
    PgItem.create(code="d")


def test_sync_refuses_a_conflicting_table(pg: Callable[..., odm.Registry]) -> None:
    reg = pg(PgConflict, sync=False)
    with raw(reg) as conn:
        conn.execute('DROP TABLE IF EXISTS "pg_conflict"')
        conn.execute('CREATE TABLE "pg_conflict" (id integer PRIMARY KEY, payload text)')
        try:
            with pytest.raises(odm.SchemaMismatch, match="pg_conflict"):
                reg.sync()
            columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns "
                                                  "WHERE table_name = 'pg_conflict' ORDER BY ordinal_position")]
            assert columns == ["id", "payload"]
        finally:
            conn.execute('DROP TABLE "pg_conflict"')


def test_sync_refuses_a_different_key_schema(pg: Callable[..., odm.Registry]) -> None:
    first = pg(PgKeyA)
    assert first.sync() == []
    second = pg(PgKeyB, sync=False)
    with pytest.raises(odm.SchemaMismatch, match="pg_keys"):
        second.sync()


@pytest.mark.parametrize("style", ["keys", "dsn"])
def test_unreachable_server_is_backend_unavailable_without_password(style: str) -> None:
    port = servers.free_port()
    secret = "s3cret-" + uuid.uuid4().hex[:6]
    if style == "keys":
        reg = odm.Registry("postgres", host="127.0.0.1", port=port, database="nowhere", user="odm", **{"pass": secret})
    else:
        reg = odm.Registry("postgresql", dsn=f"postgresql://odm:{secret}@127.0.0.1:{port}/nowhere")
    reg.register(PgConflict)
    with pytest.raises(odm.BackendUnavailable) as info:
        reg.sync()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and secret not in message
    assert secret not in repr(reg) and secret not in repr(reg.backend)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    reg.close()
    reg.close()


def test_streaming_uses_a_server_side_cursor(pg: Callable[..., odm.Registry]) -> None:
    reg = pg(PgItem)
    PgItem.insert_many([PgItem(code=f"s{i:04d}", n=i) for i in range(1200)])
    reg.backend.batch_size = 100  # type: ignore[attr-defined]
    rows = iter(PgItem.query(PgItem.n >= 0).order_by(PgItem.n))
    assert next(rows).n == 0
    with raw(reg) as conn:
        fetching = [r[0] for r in conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'")]
        assert any(q.startswith("FETCH FORWARD 100") for q in fetching), fetching
    assert [u.n for u in rows] == list(range(1, 1200))
    with raw(reg) as conn:
        idle = [r[0] for r in conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'")]
        assert idle == [0]
    # An abandoned iteration releases its connection and cursor.
    partial = iter(PgItem.query(PgItem.n >= 0))
    next(partial)
    partial.close()  # type: ignore[attr-defined]
    assert PgItem.query(PgItem.n >= 600).count() == 600


def _terminate_others(reg: odm.Registry) -> None:
    with raw(reg) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def test_lost_connections_are_replaced_or_reported(pg: Callable[..., odm.Registry]) -> None:
    reg = pg(PgItem)
    PgItem.insert_many([PgItem(code=f"l{i:03d}", n=i) for i in range(50)])
    _terminate_others(reg)
    assert PgItem.query().count() == 50  # the pool checks connections and replaces dead ones
    reg.backend.batch_size = 10  # type: ignore[attr-defined]
    rows = iter(PgItem.query(PgItem.n >= 0))
    next(rows)
    _terminate_others(reg)
    with pytest.raises(odm.BackendUnavailable, match="127.0.0.1|localhost") as info:
        list(rows)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert PgItem.get("l007").n == 7


def test_go_layer_orders_mixed_values_like_mongodb(pg: Callable[..., odm.Registry]) -> None:
    reg = pg()
    repo = odm.Backend("postgres", reg.backend).define_repository("mixed", {"name": "pg_mixed", "hashKey": "k"})
    for i, value in enumerate(["b", "B", "a", "é", 5, 1.5, None, "Z"]):
        repo.save({"k": f"k{i}", "v": value})
    assert [d.get("v") for d in repo.get_all(order="v")] == [None, 1.5, 5, "B", "Z", "a", "b", "é"]
    assert [d.get("v") for d in repo.get_all(order="v", sorting="desc")] == ["é", "b", "a", "Z", "B", 5, 1.5, None]
    repo.delete_all()


def test_config_names_the_missing_key_and_hides_the_password() -> None:
    with pytest.raises(odm.ConfigError, match="'database'"):
        odm.Registry("postgres", host="127.0.0.1", user="u", **{"pass": "hunter2"})
    with pytest.raises(odm.ConfigError, match="'host'"):
        odm.Registry("postgres", database="app")
    reg = odm.Registry.from_dict({"database": {"dbName": "postgresql", "dbInfo": {
        "host": "db.example:6543", "database": "app", "user": "u", "pass": "hunter2"}}})
    assert "db.example:6543/app" in repr(reg.backend) and "hunter2" not in repr(reg) + repr(reg.backend)
    reg.close()
