"""Config is strict: unknown, misspelled or mistyped keys are ConfigError naming key, source and close match.

Every entry point (from_file, from_dict, Registry(**info), ODM_DB_INFO, BackendSupport) goes through
one checker; the seed's own configs (one dbInfo shared by MongoDB and DynamoDB) still load. No
server is needed: building these backends opens no connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import odm
from odm import config

# (backend, the key as mistyped, the key meant, other keys needed to get that far)
TYPOS = [
    ("sqlite", "Path", "path", {}),
    ("sqlite", "pth", "path", {}),
    ("postgres", "poolsize", "poolSize", {"host": "h", "database": "d"}),
    ("postgres", "pasword", "password", {"host": "h", "database": "d"}),
    ("mongodb", "authsource", "authSource", {"host": "h"}),
    ("mongodb", "batch_size", "batchSize", {"host": "h"}),
    ("dynamodb", "awsregion", "awsRegion", {}),
    ("dynamodb", "aws_region", "awsRegion", {}),
    ("dynamodb", "tableprefix", "tablePrefix", {}),
]


def entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[str, dict[str, Any]], Any]]:
    """Each way a dbInfo reaches a backend, and the source its errors must name."""
    def from_file(name: str, info: dict[str, Any]) -> Any:
        path = tmp_path / "config.json"
        path.write_text(json.dumps({"database": {"dbName": name, "dbInfo": info}}))
        return odm.Registry.from_file(path)

    def from_env(name: str, info: dict[str, Any]) -> Any:
        monkeypatch.setenv("ODM_DB_INFO", json.dumps(info))
        return odm.Registry.from_dict({"database": {"dbName": name}})

    return {
        str(tmp_path / "config.json"): from_file,
        "<dict>": lambda name, info: odm.Registry.from_dict({"database": {"dbName": name, "dbInfo": info}}),
        "<arguments>": lambda name, info: odm.Registry(name, **info),
        "ODM_DB_INFO": from_env,
        "BackendSupport": lambda name, info: odm.BackendSupport({name: info}).get_backend(name),
    }


@pytest.mark.parametrize("backend, typo, meant, base", TYPOS, ids=[f"{b}-{t}" for b, t, _, _ in TYPOS])
def test_misspelled_dbinfo_key_names_key_source_and_close_match(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, typo: str, meant: str, base: dict[str, Any]) -> None:
    for source, build in entry_points(tmp_path, monkeypatch).items():
        monkeypatch.delenv("ODM_DB_INFO", raising=False)
        with pytest.raises(odm.ConfigError) as info:
            build(backend, {**base, typo: "x"})
        message = str(info.value)
        expected_source = f"backend '{backend}'" if source == "BackendSupport" else source
        assert expected_source in message, message
        assert f"unknown dbInfo key {typo!r} (did you mean {meant!r}?)" in message, message


def test_sqlite_file_key_no_longer_opens_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("file", "Path", "database"):
        with pytest.raises(odm.ConfigError, match=f"unknown dbInfo key '{key}'.*the sqlite backend accepts: path"):
            odm.Registry.from_dict({"database": {"dbName": "sqlite", "dbInfo": {key: "x.db"}}})
    assert list(tmp_path.iterdir()) == []


def test_unknown_key_in_the_database_object(tmp_path: Path) -> None:
    with pytest.raises(odm.ConfigError, match=r"<dict>: unknown 'database' key 'dbinfo' \(did you mean 'dbInfo'\?\)"):
        odm.Registry.from_dict({"database": {"dbName": "sqlite", "dbinfo": {"path": str(tmp_path / "x.db")}}})
    assert not (tmp_path / "x.db").exists()


def test_cursor_secret_in_dbinfo_says_where_it_belongs() -> None:
    with pytest.raises(odm.ConfigError, match="beside dbName"):
        odm.Registry("sqlite", cursorSecret="x" * 32)


@pytest.mark.parametrize("backend, key, value, words", [
    ("dynamodb", "endpoint", 300.0, "must be a string, not float"),
    ("dynamodb", "tablePrefix", ["t_"], "must be a string, not list"),
    ("sqlite", "path", 5, "must be a string, not int"),
    ("postgres", "port", "54x", "must be a port number"),
    ("postgres", "port", 70000, "must be a port number"),
    ("postgres", "poolSize", 0, "must be a positive integer"),
    ("postgres", "poolSize", "10", "must be a positive integer, not str"),
    ("postgres", "timeout", True, "must be a positive number of seconds, not bool"),
    ("mongodb", "timeout", "5", "must be a positive number of seconds, not str"),
    ("mongodb", "batchSize", 1.5, "must be a positive integer, not float"),
    ("mongodb", "host", {"h": 1}, "must be a string, not dict"),
])
def test_mistyped_values_are_config_errors_naming_the_key(backend: str, key: str, value: Any, words: str) -> None:
    base = {"postgres": {"host": "h", "database": "d"}, "mongodb": {"host": "h"}}.get(backend, {})
    with pytest.raises(odm.ConfigError, match=f"<arguments>: dbInfo key '{key}' of the {backend} backend {words}"):
        odm.Registry(backend, **{**base, key: value})


def test_a_mistyped_secret_is_not_shown() -> None:
    with pytest.raises(odm.ConfigError, match="'pass'") as info:
        odm.Registry("postgres", host="h", database="d", **{"pass": 987654321})
    assert "987654321" not in str(info.value)


def _registry_on_a_backend_with_keys() -> None:
    inner = odm.Registry("sqlite")
    try:
        odm.Registry(inner.backend, path="x.db")
    finally:
        inner.close()


@pytest.mark.parametrize("call, message", [
    (lambda: odm.BackendSupport({}).get_backend([]), "get_backend() takes a backend name (a string), not list"),
    (lambda: odm.BackendSupport({"sqlite": {}}).get_backend(None), "not NoneType"),
    (lambda: odm.BackendSupport([]), "takes a dict of backend name -> dbInfo dict, not list"),
    (lambda: odm.BackendSupport({"sqlite": ["path"]}), "the dbInfo of 'sqlite' must be a dict, not list"),
    (lambda: odm.BackendSupport({1: {}}), "backend names must be strings, not int"),
    (lambda: _registry_on_a_backend_with_keys(), "takes no dbInfo keys"),
])
def test_bad_arguments_are_config_errors(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(odm.ConfigError) as info:
        call()
    assert message in str(info.value)


# -- what was legitimate stays legitimate ------------------------------------------------------

#: The seed's config (API.md, the Go package's README): one dbInfo that both Go backends read.
SEED_INFO = {"credentials": None, "endpoint": "http://dynamo:8000", "awsRegion": "us-east-1", "host": "mongo:27017",
             "database": "app", "user": "username", "pass": "password"}


@pytest.mark.parametrize("backend", ["dynamodb", "mongodb"])
def test_the_seed_config_still_loads_on_both_go_backends(backend: str) -> None:
    with odm.Registry.from_dict({"database": {"dbName": backend, "dbInfo": SEED_INFO}}) as reg:
        assert reg.backend.name == backend
    support = odm.BackendSupport({"mongodb": SEED_INFO, "dynamodb": SEED_INFO})  # the seed's BackendManager use
    for name in ("mongodb", "dynamodb"):
        support.get_backend(name).shutdown()


def test_the_suite_and_docs_configs_still_load(tmp_path: Path) -> None:
    built = [
        odm.Registry("dynamodb", endpoint="http://127.0.0.1:1", awsRegion="us-east-1", awsSecretKeyId="test",
                     awsSecretAccessKey="test", awsSessionToken="t", tablePrefix="t_", credentials=None, region=None),
        odm.Registry("postgres", host="db:5432", database="app", user="app", password="pw", port=5432, poolSize=5,
                     pool_size=5, timeout=2.5),
        odm.Registry("postgresql", dsn="postgresql://app@db:5432/app", uri=None, port="5432"),
        odm.Registry("mongodb", uri="mongodb://h:1/app", database="app", timeout=0.5, batchSize=100),
        odm.Registry("mongodb", host="h1:1,h2:2", database="app", user="u", username="u", password="p",
                     authSource="admin", timeout=1),
        odm.Registry("sqlite", path=str(tmp_path / "app.db")),
        odm.Registry("sqlite", path="file:named?mode=memory&cache=shared"),
    ]
    for reg in built:
        reg.close()


def test_switching_backend_by_env_keeps_the_files_keys_for_its_own_backend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"database": {"dbName": "mongodb", "dbInfo": {"host": "mongo:27017", "timeout": 1}}}))
    monkeypatch.setenv("ODM_DB_NAME", "sqlite")
    monkeypatch.setenv("ODM_DB_INFO", json.dumps({"path": str(tmp_path / "env.db")}))
    with odm.Registry.from_file(cfg) as reg:
        assert reg.backend.info == {"path": str(tmp_path / "env.db")}
    cfg.write_text(json.dumps({"database": {"dbName": "mongodb", "dbInfo": {"hots": "mongo:27017"}}}))
    with pytest.raises(odm.ConfigError, match=f"{cfg}: unknown dbInfo key 'hots'"):
        odm.Registry.from_file(cfg)
    monkeypatch.setenv("ODM_DB_NAME", "oracle")
    with pytest.raises(odm.ConfigError, match="ODM_DB_NAME: database.dbName 'oracle' is not a known backend"):
        odm.Registry.from_file(cfg)


# -- the cursor secret -------------------------------------------------------------------------

SECRET = "cursor-secret-0123456789abcdef"


class Item(odm.Model):
    k = odm.fields.String()
    n = odm.fields.Integer()

    class Meta:
        name = "strict_items"
        hash_key = "k"


def _cursor(reg: odm.Registry) -> str:
    reg.register(Item, rebind=True)
    reg.sync()
    if Item.query().count() == 0:
        Item.insert_many([Item(k=f"k{i}", n=i) for i in range(5)])
    cursor = Item.query().order_by(Item.n).page(size=2).next_cursor
    assert cursor is not None
    return cursor


def _next(reg: odm.Registry, cursor: str) -> list[int]:
    reg.register(Item, rebind=True)
    return [i.n for i in Item.query().order_by(Item.n).page(size=2, cursor=cursor).items]


@pytest.mark.parametrize("key", ["cursorSecret", "cursor_secret"])
def test_cursor_secret_from_the_config_is_shared_by_registries(tmp_path: Path, key: str) -> None:
    cfg = {"database": {"dbName": "sqlite", "dbInfo": {"path": str(tmp_path / "s.db")}, key: SECRET}}
    with odm.Registry.from_dict(cfg) as one, odm.Registry.from_dict(cfg) as two, \
            odm.Registry("sqlite", path=str(tmp_path / "s.db"), cursor_secret=SECRET) as three, \
            odm.Registry("sqlite", path=str(tmp_path / "s.db")) as random_key:
        cursor = _cursor(one)
        assert _next(two, cursor) == [2, 3] and _next(three, cursor) == [2, 3]
        with pytest.raises(odm.QueryError, match="another cursor secret"):
            _next(random_key, cursor)
        shown = " ".join(map(repr, [one, two, three, one.backend, one.backend.cursors, config.read(cfg, "<dict>")]))
        assert SECRET not in shown


def test_env_cursor_secret_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = {"database": {"dbName": "sqlite", "dbInfo": {"path": str(tmp_path / "s.db")}, "cursorSecret": SECRET}}
    monkeypatch.setenv("ODM_CURSOR_SECRET", SECRET[::-1])
    with odm.Registry.from_dict(cfg) as env_keyed, odm.Registry("sqlite", path=str(tmp_path / "s.db"),
                                                                 cursor_secret=SECRET[::-1]) as same:
        assert _next(same, _cursor(env_keyed)) == [2, 3]


@pytest.mark.parametrize("database, message", [
    ({"cursorSecret": "short"}, "<dict>: database.cursorSecret must be at least 16 characters"),
    ({"cursor_secret": 12345678901234567890}, "<dict>: database.cursor_secret must be a string, not int"),
    ({"cursorSecret": SECRET, "cursor_secret": SECRET}, "not both"),
    ({"cursorsecret": SECRET}, "unknown 'database' key 'cursorsecret' (did you mean 'cursorSecret'?)"),
])
def test_bad_cursor_secrets_are_config_errors_without_the_value(tmp_path: Path, database: dict[str, Any],
                                                                message: str) -> None:
    cfg = {"database": {"dbName": "sqlite", "dbInfo": {"path": str(tmp_path / "s.db")}, **database}}
    with pytest.raises(odm.ConfigError) as info:
        odm.Registry.from_dict(cfg)
    assert message in str(info.value) and SECRET not in str(info.value) and "short" not in str(info.value)[30:]
    assert not (tmp_path / "s.db").exists()  # checked before anything was opened


def test_bad_env_cursor_secret_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODM_CURSOR_SECRET", "tiny")
    with pytest.raises(odm.ConfigError, match="ODM_CURSOR_SECRET"):
        odm.Registry("sqlite")


def test_checked_settings_show_no_secret() -> None:
    cfg = {"database": {"dbName": "postgres", "dbInfo": {"host": "h", "database": "d", "pass": "hunter2-pw"},
                        "cursorSecret": SECRET}}
    shown = repr(config.read(cfg, "<dict>"))
    assert "hunter2-pw" not in shown and SECRET not in shown and "'host': 'h'" in shown
