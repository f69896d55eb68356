"""Equality of dicts and lists means what Python's ``==`` means, on every backend.

Dicts are equal whatever their key order (at every nesting level), and a list equals
only an equal list, never an array that merely holds it; a list holding null exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import odm
from odm import EmbeddedModel, Filter, Model, fields


class Inner(EmbeddedModel):
    label = fields.String()
    attrs = fields.Dict()


class Doc(Model):
    key = fields.String(required=True)
    data = fields.Dict()
    rows = fields.List(fields.Dict())
    inner = fields.Embedded(Inner)

    class Meta:
        name = "eq_docs"
        hash_key = "key"


STORED = {"a": 1, "b": {"c": [1, {"x": 1, "y": 2}], "d": "e"}}
REORDERED = {"b": {"d": "e", "c": [1, {"y": 2, "x": 1}]}, "a": 1}
OTHER = {"a": 2}


@pytest.fixture
def docs(make_registry: Callable[..., odm.Registry]) -> type[Doc]:
    make_registry(Doc)
    Doc.create(key="one", data=STORED, rows=[STORED, OTHER], inner=Inner(label="i", attrs=STORED))
    Doc.create(key="two", data=OTHER, rows=[OTHER], inner=Inner(label="i", attrs=OTHER))
    return Doc


def keys(query: odm.Query[Doc]) -> list[str]:
    return sorted(d.key for d in query)


def test_dict_equality_ignores_key_order_at_every_level(docs: type[Doc]) -> None:
    assert STORED == REORDERED  # what Python says
    assert keys(Doc.query(Doc.data == REORDERED)) == ["one"]
    assert keys(Doc.query(Doc.data != REORDERED)) == ["two"]
    assert keys(Doc.query(Doc.data.in_([REORDERED]))) == ["one"]
    assert keys(Doc.query(Doc.data.not_in([REORDERED]))) == ["two"]
    assert keys(Doc.query(Doc.rows.contains(REORDERED))) == ["one"]
    assert keys(Doc.query(Doc.rows == [REORDERED, OTHER])) == ["one"]
    assert keys(Doc.query(Doc.inner == Inner(label="i", attrs=REORDERED))) == ["one"]
    assert keys(Doc.query(Doc.inner.attrs == REORDERED)) == ["one"]
    assert Doc.query(Doc.data == REORDERED).count() == 1


def test_dict_condition_ignores_key_order(docs: type[Doc]) -> None:
    one = Doc.get("one")
    one.update(condition=Doc.data == REORDERED, rows=[])
    assert Doc.get("one").rows == []
    assert Doc.get("one").data == STORED


@pytest.fixture
def repo(target: Any) -> Iterator[odm.Repository]:
    reg = target.registry()
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("eq_plain", {"name": "eq_plain", "hashKey": "id"})
    yield repo
    repo.delete_all()
    backend.shutdown()


def ids(found: list[dict[str, Any]]) -> list[str]:
    return sorted(d["id"] for d in found)


def test_go_layer_dict_equality_ignores_key_order(repo: odm.Repository) -> None:
    repo.save({"id": "one", "v": STORED, "l": [STORED]})
    repo.save({"id": "two", "v": OTHER, "l": [OTHER]})
    assert ids(repo.get_all({"v": REORDERED})) == ["one"]
    assert ids(repo.get_all(Filter().match_any("v", [OTHER, REORDERED]))) == ["one", "two"]
    assert ids(repo.get_all({"l": [REORDERED]})) == ["one"]
    assert repo.get_one({"v": REORDERED})["v"] == STORED
    updated = repo.save({"w": 1}, {"v": REORDERED})
    assert updated["id"] == "one" and updated["w"] == 1


def test_go_layer_list_equality_is_exact(repo: odm.Repository) -> None:
    repo.save({"id": "exact", "v": [1, 2]})
    repo.save({"id": "holds", "v": [[1, 2], 3]})
    repo.save({"id": "last", "v": [3, [1, 2]]})
    repo.save({"id": "alone", "v": [[1, 2]]})
    assert ids(repo.get_all({"v": [1, 2]})) == ["exact"]
    assert ids(repo.get_all({"v": [[1, 2]]})) == ["alone"]
    assert ids(repo.get_all(Filter().match_any("v", [[1, 2]]))) == ["exact"]
    assert ids(repo.get_all(Filter().match_any("v", [[1, 2], [[1, 2]]]))) == ["alone", "exact"]
    assert repo.delete_all({"v": [1, 2]}) == 1
    assert ids(repo.get_all()) == ["alone", "holds", "last"]


def test_go_layer_list_holding_null_exists(repo: odm.Repository) -> None:
    repo.save({"id": "nulls", "v": [None]})
    repo.save({"id": "mixed", "v": [1, None]})
    repo.save({"id": "empty", "v": []})
    repo.save({"id": "missing"})
    # None in a filter means "missing or null": a list holding null is neither.
    assert ids(repo.get_all({"v": None})) == ["missing"]
    assert ids(repo.get_all({"v": [None]})) == ["nulls"]
    assert repo.delete_all({"v": None}) == 1
    assert ids(repo.get_all()) == ["empty", "mixed", "nulls"]
