"""Go-layer ``get_all(order=...)``: one total order over JSON types, ties broken by key, on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import odm

# (id, value) in the documented ascending order: missing/null, numbers, strings (by code point),
# objects, arrays, booleans; objects and arrays are not compared with each other: ties go by key.
ASCENDING: list[tuple[str, Any]] = [
    ("k01", None), ("k02", None),
    ("k03", -1), ("k04", 1.5), ("k05", 2), ("k06", 2), ("k07", 10),
    ("k08", ""), ("k09", "10"), ("k10", "B"), ("k11", "a"), ("k12", "a"), ("k13", "ä"),
    ("k14", {"z": 1}), ("k15", {"a": [1]}), ("k16", {}),
    ("k17", [3]), ("k18", []), ("k19", [1, "x"]),
    ("k20", False), ("k21", True), ("k22", True),
]


def descending() -> list[str]:
    """Ranks and values reversed; ties (equal values, objects, arrays) still by key ascending."""
    groups: dict[Any, list[str]] = {}
    order: list[Any] = []
    for key, value in ASCENDING:
        if isinstance(value, (dict, list)):
            rank: tuple[Any, ...] = (type(value).__name__,)
        else:
            rank = ("bool" if isinstance(value, bool) else "", value)
        if rank not in groups:
            groups[rank] = []
            order.append(rank)
        groups[rank].append(key)
    return [key for rank in reversed(order) for key in groups[rank]]


@pytest.fixture
def repo(target: Any) -> Iterator[odm.Repository]:
    reg = target.registry()
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("go_order", {"name": "go_order", "hashKey": "id"})
    # Inserted in reverse key order, so an order that leans on insertion order shows.
    for key, value in reversed(ASCENDING):
        repo.save({"id": key, "v": value})
    yield repo
    repo.delete_all()
    backend.shutdown()


def test_mixed_types_order_the_same_everywhere(repo: odm.Repository) -> None:
    if not repo.repo.backend.features.supports_arbitrary_order:
        with pytest.raises(odm.QueryError):
            repo.get_all(order="v")
        return
    ids = [d["id"] for d in repo.get_all(order="v")]
    assert ids == [k for k, _ in ASCENDING]
    assert [d["id"] for d in repo.get_all(order="v", sorting="desc")] == descending()


def test_windows_follow_the_total_order(repo: odm.Repository) -> None:
    if not repo.repo.backend.features.supports_arbitrary_order:
        pytest.skip("this backend orders only by a range key (QueryError, tested above)")
    everything = [k for k, _ in ASCENDING]
    pages = [[d["id"] for d in repo.get_all(order="v", limit=4, offset=o)] for o in range(0, len(everything), 4)]
    assert [k for page in pages for k in page] == everything
    assert [d["id"] for d in repo.get_all({"v": 2}, order="v")] == ["k05", "k06"]
    assert [d["id"] for d in repo.get_all({"v": True}, order="v", sorting="desc")] == ["k21", "k22"]
