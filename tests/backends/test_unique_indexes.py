"""Unique indexes mean the same on every backend that enforces them (all four since issue 8).

A value held by one item is refused to every other item through every write path (create,
save, update, insert_many, the Go layer), is free again once its holder changes or loses it,
is held by exactly one of several racing creators, and ``sync`` refuses to enforce an index
that stored items already break, changing nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import odm
from odm import Index, Model, fields


class Handle(Model):
    uid = fields.String(required=True)
    handle = fields.String()
    first = fields.String()
    last = fields.String()
    n = fields.Integer()

    class Meta:
        name = "uniq_handles"
        hash_key = "uid"
        indexes = [Index("handle", unique=True), Index("first", "last", unique=True)]


class LooseHandle(Model):
    """A table before a unique index is declared on it..."""

    uid = fields.String(required=True)
    handle = fields.String()

    class Meta:
        name = "uniq_later"
        hash_key = "uid"


class StrictHandle(Model):
    """... and after."""

    uid = fields.String(required=True)
    handle = fields.String()

    class Meta:
        name = "uniq_later"
        hash_key = "uid"
        indexes = [Index("handle", unique=True)]


@pytest.fixture
def reg(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    reg = make_registry(Handle)
    if not reg.backend.features.supports_unique_indexes:
        pytest.skip("this backend does not enforce unique indexes (features.supports_unique_indexes)")
    return reg


def test_taken_value_is_refused_by_every_write(reg: odm.Registry) -> None:
    Handle.create(uid="a", handle="x")
    with pytest.raises(odm.DuplicateKey):
        Handle.create(uid="b", handle="x")
    with pytest.raises(odm.DuplicateKey):
        Handle(uid="b", handle="x").save()
    assert Handle.get_or_none("b") is None
    b = Handle.create(uid="b", handle="y")
    with pytest.raises(odm.DuplicateKey):
        b.update(handle="x")
    b.handle = "x"
    with pytest.raises(odm.DuplicateKey):
        b.save()
    assert Handle.get("b").handle == "y"
    with pytest.raises(odm.DuplicateKey):
        Handle.insert_many([Handle(uid="c", handle="x"), Handle(uid="d", handle="z")])
    assert Handle.get_or_none("c") is None
    assert (Handle.get_or_none("d") is None) == reg.backend.features.atomic_insert_many
    assert [h.uid for h in Handle.query(Handle.handle == "x")] == ["a"]


def test_missing_values_are_not_unique_and_composites_need_every_part(reg: odm.Registry) -> None:
    Handle.insert_many([Handle(uid="m1"), Handle(uid="m2"), Handle(uid="m3", first="Ann"), Handle(uid="m4", first="Ann")])
    Handle.create(uid="c1", first="Ann", last="Lee")
    Handle.create(uid="c2", first="Ann", last="Kim")
    with pytest.raises(odm.DuplicateKey):
        Handle.create(uid="c3", first="Ann", last="Lee")
    with pytest.raises(odm.DuplicateKey):
        Handle.get("c2").update(last="Lee")
    assert Handle.query().count() == 6


def test_changed_or_deleted_value_is_free_again(reg: odm.Registry) -> None:
    a = Handle.create(uid="a", handle="x", n=1)
    a.update(handle="x2")
    Handle.create(uid="b", handle="x")  # freed by the update
    a.handle = "x3"
    a.save()
    Handle.create(uid="c", handle="x2")  # freed by the save
    a.update(handle=None)
    Handle.create(uid="d", handle="x3")  # freed by removing the value
    Handle.get("b").delete()
    Handle.create(uid="e", handle="x")  # freed by the delete
    assert Handle.delete_many(Handle.handle.in_(["x", "x2"])) == 2
    Handle.insert_many([Handle(uid="f", handle="x"), Handle(uid="g", handle="x2")])  # freed by delete_many
    a.update(n=odm.inc(1))  # a change that leaves unique values alone
    with pytest.raises(odm.DuplicateKey):
        Handle.create(uid="h", handle="x3")
    assert sorted((h.uid, h.handle) for h in Handle.query()) == [
        ("a", None), ("d", "x3"), ("f", "x"), ("g", "x2")]


def test_go_layer_refuses_a_taken_value(target: Any) -> None:
    reg = target.registry()
    if not reg.backend.features.supports_unique_indexes:
        reg.close()
        pytest.skip("this backend does not enforce unique indexes (features.supports_unique_indexes)")
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("members", {"name": "uniq_members", "hashKey": "id",
                                                 "indexes": [Index("email", unique=True)]})
    try:
        repo.save({"id": "1", "email": "a@x"})
        with pytest.raises(odm.DuplicateKey):
            repo.save({"id": "2", "email": "a@x"})
        repo.save({"id": "2", "email": "b@x"})
        with pytest.raises(odm.DuplicateKey):
            repo.save({"email": "a@x"}, {"id": "2"})
        repo.save({"email": "c@x"}, {"id": "1"})
        repo.save({"email": "a@x"}, {"id": "2"})  # freed by the update
        repo.delete_one({"id": "2"})
        repo.save({"id": "3", "email": "a@x"})  # freed by the delete
        assert sorted(d["email"] for d in repo.get_all()) == ["a@x", "c@x"]
    finally:
        repo.delete_all()
        backend.shutdown()


def test_racing_creators_of_one_value_have_one_winner(reg: odm.Registry) -> None:
    writers = 8
    barrier = threading.Barrier(writers)
    outcome: dict[int, BaseException | None] = {}

    def run(t: int) -> None:
        barrier.wait()
        try:
            Handle.create(uid=f"r{t}", handle="same")
            outcome[t] = None
        except BaseException as exc:  # asserted below
            outcome[t] = exc

    threads = [threading.Thread(target=run, args=(t,)) for t in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    winners = [t for t, exc in outcome.items() if exc is None]
    assert len(winners) == 1
    assert all(isinstance(exc, odm.DuplicateKey) for exc in outcome.values() if exc is not None)
    assert [h.uid for h in Handle.query()] == [f"r{winners[0]}"]


@pytest.fixture
def loose(make_registry: Callable[..., odm.Registry]) -> Iterator[Callable[..., odm.Registry]]:
    yield make_registry


def test_sync_refuses_values_stored_items_already_share(loose: Callable[..., odm.Registry]) -> None:
    old = loose(LooseHandle)
    if not old.backend.features.supports_unique_indexes:
        pytest.skip("this backend does not enforce unique indexes (features.supports_unique_indexes)")
    LooseHandle.insert_many([LooseHandle(uid="p", handle="twin"), LooseHandle(uid="q", handle="twin"),
                             LooseHandle(uid="r", handle="solo")])
    new = loose(StrictHandle, sync=False)
    with pytest.raises(odm.SchemaMismatch):
        new.sync()
    assert sorted((h.uid, h.handle) for h in LooseHandle.query()) == [("p", "twin"), ("q", "twin"), ("r", "solo")]
    # Once the stored values are unique, the same sync builds the index and enforces it.
    LooseHandle.get("q").update(handle="other")
    new.sync()
    with pytest.raises(odm.DuplicateKey):
        StrictHandle.create(uid="s", handle="solo")
    StrictHandle.create(uid="s", handle="fresh")
