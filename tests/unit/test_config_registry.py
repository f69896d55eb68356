"""Config files, env overrides, registry and the Go layer's BackendSupport (SQLite only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import odm
from odm import config


def write(tmp_path: Path, data: object, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_from_file_builds_the_configured_backend(tmp_path: Path) -> None:
    cfg = write(tmp_path, {"database": {"dbName": "sqlite", "dbInfo": {"path": str(tmp_path / "a.db")}}})
    with odm.Registry.from_file(cfg) as reg:
        assert reg.backend.name == "sqlite"
    assert (tmp_path / "a.db").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ({"db": {}}, "'database' is missing"),
        ({"database": {"dbInfo": {}}}, "'database.dbName' is missing"),
        ({"database": {"dbName": "oracle"}}, "dbName 'oracle' is not a known backend"),
        ({"database": {"dbName": "sqlite", "dbInfo": []}}, "'database.dbInfo' must be an object"),
        ({"database": {"dbName": "sqlite", "dbInfo": {"path": ""}}}, "'path'"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, content: object, message: str) -> None:
    cfg = write(tmp_path, content)
    with pytest.raises(odm.ConfigError) as info:
        odm.Registry.from_file(cfg)
    assert message in str(info.value) and str(cfg) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(odm.ConfigError, match="does not exist"):
        odm.Registry.from_file(tmp_path / "nope.json")


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path, {"database": {"dbName": "mongodb", "dbInfo": {"host": "mongo:27017"}}})
    monkeypatch.setenv("ODM_DB_NAME", "sqlite")
    monkeypatch.setenv("ODM_DB_INFO", json.dumps({"path": str(tmp_path / "env.db")}))
    name, info = config.load_file(cfg)
    assert name == "sqlite" and info == {"host": "mongo:27017", "path": str(tmp_path / "env.db")}
    monkeypatch.setenv("ODM_DB_INFO", "{broken")
    with pytest.raises(odm.ConfigError, match="ODM_DB_INFO"):
        config.load_file(cfg)


def test_aliases_and_from_dict() -> None:
    assert config.canonical_name("postgresql", "x") == "postgres"
    reg = odm.Registry.from_dict({"database": {"dbName": "sqlite", "dbInfo": {"path": ":memory:"}}})
    reg.close()
    reg.close()


def test_secrets_are_redacted() -> None:
    info = {"user": "u", "pass": "hunter2", "awsSecretAccessKey": "AKS3CRET", "awsSessionToken": "TOK",
            "uri": "mongodb://u:hunter2@h:27017/db", "dsn": "host=h password=hunter2"}
    shown = repr(config.redact(info))
    for secret in ("hunter2", "AKS3CRET", "TOK"):
        assert secret not in shown
    support = odm.BackendSupport({"mongodb": info})
    assert "hunter2" not in repr(support)


def test_backend_support() -> None:
    support = odm.BackendSupport({"sqlite": {"path": ":memory:"}, "weird": {}})
    assert {"sqlite", "mongodb", "dynamodb", "postgres"} <= set(support.supported_backends())
    backend = support.get_backend("sqlite")
    assert support.get_backend("sqlite") is backend
    with pytest.raises(odm.ConfigError, match="not configured"):
        support.get_backend("mongodb")
    with pytest.raises(odm.ConfigError, match="not a known backend"):
        support.get_backend("weird")
    backend.shutdown()
    backend.shutdown()


def test_register_rejects_non_models_and_abstract() -> None:
    class Base(odm.Model):
        x = odm.fields.String()

        class Meta:
            abstract = True

    with odm.Registry("sqlite", path=":memory:") as reg:
        with pytest.raises(odm.ConfigError, match="abstract"):
            reg.register(Base)
        with pytest.raises(odm.ConfigError):
            reg.register(dict)  # type: ignore[arg-type]
        with pytest.raises(odm.ConfigError, match="at least one"):
            reg.register()


def test_registry_binds_and_close_says_closed() -> None:
    class Item(odm.Model):
        x = odm.fields.Integer()

        class Meta:
            name = "items_bind"

    reg = odm.Registry("sqlite", path=":memory:")
    reg.register(Item)
    reg.sync()
    Item.create(x=1)
    reg.close()
    with pytest.raises(odm.ConfigError, match="registry that has been closed"):
        Item.create(x=2)


def test_sqlite_driver_errors_are_translated(tmp_path: Path) -> None:
    class Unsynced(odm.Model):
        x = odm.fields.Integer()

        class Meta:
            name = "never_synced"

    with odm.Registry("sqlite", path=str(tmp_path / "u.db")) as reg:
        reg.register(Unsynced)
        with pytest.raises(odm.QueryError, match="sync") as info:
            Unsynced.create(x=1)
        assert info.value.__cause__ is not None
        with pytest.raises(odm.QueryError, match="sync"):
            list(Unsynced.query())
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(odm.BackendUnavailable, match="garbage.db"):
        odm.Registry("sqlite", path=str(bad))


@pytest.mark.parametrize(
    "text",
    ["mongodb://user:pa/ss@host/db", "mongodb://user:p@ss@host", "postgresql://u:pa55@h:5432/db?sslmode=disable",
     "host=h password='pa55 word' user=u", "mongodb://h/?authSource=admin&password=pa55"],
)
def test_passwords_in_urls_and_dsns_are_masked(text: str) -> None:
    shown = config.redact_url(text)
    assert "pa55" not in shown and "pa/ss" not in shown and "p@ss" not in shown and "***" in shown


def test_non_utf8_config(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(odm.ConfigError, match="UTF-8"):
        odm.Registry.from_file(path)


@pytest.mark.parametrize("backend, driver, extra", [("mongodb", "pymongo", "mongodb"), ("postgres", "psycopg", "postgres")])
def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch, backend: str, driver: str, extra: str) -> None:
    import sys

    for name in list(sys.modules):
        if name == driver or name.startswith(driver + ".") or name.startswith(f"odm.backends.{backend}") \
                or name == config.BACKENDS[backend][0]:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, driver, None)  # makes "import <driver>" fail
    with pytest.raises(odm.ConfigError, match=rf"pip install 'microkubes-odm\[{extra}\]'"):
        odm.Registry(backend, host="h")
