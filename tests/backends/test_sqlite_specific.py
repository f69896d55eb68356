"""SQLite-only behaviour: stored layout, expression indexes, TTL sweeping, files and :memory:."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import odm

from .models import ALL, Session, User


@pytest.fixture
def db(tmp_path: Path) -> tuple[odm.Registry, Path]:
    path = tmp_path / "s.db"
    reg = odm.Registry("sqlite", path=str(path))
    reg.register(*ALL)
    reg.sync()
    return reg, path


def raw_docs(path: Path, table: str) -> list[dict[str, object]]:
    with closing(sqlite3.connect(path)) as conn:  # sqlite3's own `with` commits but does not close
        return [json.loads(r[0]) for r in conn.execute(f'SELECT doc FROM "{table}"')]


def test_none_values_are_not_stored(db: tuple[odm.Registry, Path]) -> None:
    reg, path = db
    User.create(email="a@x.io", name=None, age=3)
    (doc,) = raw_docs(path, "suite_users")
    assert "name" not in doc and doc["age"] == 3 and doc["email"] == "a@x.io"
    reg.close()


def test_meta_indexes_are_used_by_queries(db: tuple[odm.Registry, Path]) -> None:
    reg, _ = db
    plan = User.query(User.name == "Ann").explain()
    assert any("ix_name" in step for step in plan["plan"]), plan
    plan = User.query(User.age == 3, User.name > "A").explain()
    assert any("ix_age_name" in step for step in plan["plan"]), plan
    assert plan["params"][:2] == [3, "A"]
    assert User.query(User.name == "x").use_index("by_name").count() == 0
    reg.close()


def test_expired_rows_are_swept_on_write(db: tuple[odm.Registry, Path]) -> None:
    reg, path = db
    Session.create(token="old", expires_at=odm.utcnow() - dt.timedelta(seconds=1))
    assert len(raw_docs(path, "suite_sessions")) == 1  # still on disk, but invisible
    assert Session.query().count() == 0
    Session.create(token="new")
    assert [d["token"] for d in raw_docs(path, "suite_sessions")] == ["new"]
    reg.close()


def test_data_persists_in_the_file(db: tuple[odm.Registry, Path]) -> None:
    reg, path = db
    User.create(email="keep@x.io", age=1)
    reg.close()
    with odm.Registry("sqlite", path=str(path)) as again:
        again.register(User)
        assert again.sync() == []
        assert User.get("keep@x.io").age == 1


def test_memory_database() -> None:
    with odm.Registry("sqlite", path=":memory:") as reg:
        reg.register(User)
        reg.sync()
        saved = User(email="m@x.io").save()
        assert saved.email == "m@x.io" and User.query().count() == 1
