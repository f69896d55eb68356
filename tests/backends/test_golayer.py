"""The Go-style layer: BackendSupport, Backend, Repository and Filter on real backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

import odm
from odm import Filter

DEFINITION: dict[str, Any] = {
    "name": "go_users", "indexes": ["email"], "hashKey": "email", "hashKeyType": "S", "rangeKey": None,
    "readCapacity": 5, "writeCapacity": 5, "GSI": {"name": {"readCapacity": 1, "writeCapacity": 1}},
    "enableTtl": True, "ttlAttribute": "expires", "ttl": 86400, "customId": False,
}


@pytest.fixture
def repo(target: Any) -> Iterator[odm.Repository]:
    reg = target.registry()
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("users", DEFINITION)
    yield repo
    repo.delete_all()
    backend.shutdown()
    backend.shutdown()  # twice is fine


def test_insert_get_update_delete(repo: odm.Repository) -> None:
    saved = repo.save({"email": "a@b.c", "name": "Ann", "age": 30})
    assert saved["email"] == "a@b.c" and isinstance(saved["expires"], dt.datetime)
    assert saved["expires"] > odm.utcnow() + dt.timedelta(hours=23)
    with pytest.raises(odm.DuplicateKey):
        repo.save({"email": "a@b.c"})
    updated = repo.save({"name": "Anne"}, {"email": "a@b.c"})
    assert updated["name"] == "Anne" and updated["age"] == 30
    assert repo.get_one({"email": "a@b.c"})["name"] == "Anne"
    assert "_id" not in repo.get_one({"email": "a@b.c"})
    with pytest.raises(odm.NotFound):
        repo.save({"name": "x"}, {"email": "nobody"})
    repo.delete_one({"email": "a@b.c"})
    with pytest.raises(odm.NotFound):
        repo.get_one({"email": "a@b.c"})
    with pytest.raises(odm.NotFound):
        repo.delete_one({"email": "a@b.c"})


def test_save_with_filter_matching_several_changes_nothing(repo: odm.Repository) -> None:
    repo.save({"email": "1", "name": "Ann"})
    repo.save({"email": "2", "name": "Ann"})
    with pytest.raises(odm.QueryError):
        repo.save({"age": 5}, {"name": "Ann"})
    assert all("age" not in d for d in repo.get_all({"name": "Ann"}))


def test_get_all_order_limit_and_filters(repo: odm.Repository) -> None:
    for i, name in enumerate(["Ann", "Bob", "Ann", "Cy"]):
        repo.save({"email": f"{i}@b.c", "name": name, "age": 40 - i, "meta": {"k": i}})
    assert {d["email"] for d in repo.get_all({"name": "Ann"})} == {"0@b.c", "2@b.c"}
    assert {d["email"] for d in repo.get_all(Filter().match_any("name", ["Bob", "Cy"]))} == {"1@b.c", "3@b.c"}
    assert {d["email"] for d in repo.get_all({"meta": {"k": 2}})} == {"2@b.c"}
    assert repo.get_all({"name": "Ann,Bob"}) == []
    assert len(repo.get_all(limit=0)) == 4
    with pytest.raises(odm.QueryError):
        repo.get_all({}, sorting="sideways")
    if repo.repo.backend.features.supports_arbitrary_order:
        got = repo.get_all({}, order="age", sorting="desc", limit=2, offset=1)
        assert [d["age"] for d in got] == [39, 38]
    assert repo.delete_all({"name": "Ann"}) == 2
    assert len(repo.get_all()) == 2


def test_match_pattern_is_case_sensitive_like(repo: odm.Repository) -> None:
    for email in ["ann@b.c", "Ann@b.c", "bob@b.cc", "a%b@b.c", "axb@b.c", "x_y@b.c"]:
        repo.save({"email": email, "kind": "u"})
    repo.save({"email": "nokind", "kind": None})

    def match(pattern: str) -> set[str]:
        return {d["email"] for d in repo.get_all(Filter().match("kind", "u").match_pattern("email", pattern))}

    assert match("%@b.c") == {"ann@b.c", "Ann@b.c", "a%b@b.c", "axb@b.c", "x_y@b.c"}
    assert match("a%") == {"ann@b.c", "a%b@b.c", "axb@b.c"}
    assert match("a\\%b@b.c") == {"a%b@b.c"}
    assert match("x\\_y%") == {"x_y@b.c"}
    assert match("_nn@b.c") == {"ann@b.c", "Ann@b.c"}
    assert {d["email"] for d in repo.get_all(Filter().match_pattern("missing", "%"))} == set()


def test_repository_definitions(target: Any) -> None:
    backend = odm.Backend(target.name, target.registry().backend)
    repo = backend.define_repository("users", DEFINITION)
    assert backend.define_repository("users", dict(DEFINITION)) is repo
    with pytest.raises(odm.ConfigError):
        backend.define_repository("users", {**DEFINITION, "indexes": []})
    assert backend.get_repository("users") is repo
    with pytest.raises(odm.ConfigError):
        backend.get_repository("nope")
    auto = backend.define_repository("things", {"name": "go_things"})
    item = auto.save({"x": 1})
    assert isinstance(item["id"], str) and len(item["id"]) == 36
    assert auto.get_one({"id": item["id"]})["x"] == 1
    auto.delete_all()
    backend.shutdown()


def test_expired_items_absent_in_go_layer(repo: odm.Repository) -> None:
    past = int((odm.utcnow() - dt.timedelta(seconds=10)).timestamp())
    repo.save({"email": "old", "expires": past})
    with pytest.raises(odm.NotFound):
        repo.get_one({"email": "old"})
    assert repo.save({"email": "old", "name": "again"})["name"] == "again"


def test_untyped_equality_respects_json_types(repo: odm.Repository) -> None:
    repo.save({"email": "bool", "v": True})
    repo.save({"email": "int", "v": 1})
    repo.save({"email": "float", "v": 1.0})
    repo.save({"email": "text", "v": '["x"]'})
    repo.save({"email": "list", "v": ["x"]})
    repo.save({"email": "obj", "v": {"a": 1}})

    def match(value: Any) -> set[str]:
        return {d["email"] for d in repo.get_all({"v": value})}

    assert match(True) == {"bool"}
    assert match(1) == {"int", "float"}
    assert match(["x"]) == {"list"}
    assert match('["x"]') == {"text"}
    assert match({"a": 1}) == {"obj"}
    assert {d["email"] for d in repo.get_all(odm.Filter().match_any("v", [True, ["x"]]))} == {"bool", "list"}


def test_unstorable_values_are_validation_errors(repo: odm.Repository) -> None:
    with pytest.raises(odm.ValidationError):
        repo.save({"email": "nan", "x": float("nan")})
    with pytest.raises(odm.ValidationError):
        repo.save({"email": "obj", "x": object()})
    with pytest.raises(odm.NotFound):
        repo.get_one({"email": "nan"})
