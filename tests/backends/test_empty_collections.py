"""An empty Set or List is a value, not a missing attribute, on every backend (issue 9, item 10).

DynamoDB has no empty set type; it stores an empty Set field as an empty list, so it reads back
as ``set()`` and answers ``== set()``, ``exists()`` and ``contains()`` as SQL and MongoDB do.
None stays different: it is no value at all.
"""

from __future__ import annotations

import odm

from .models import Note, User


def _titles(query: odm.Query[Note]) -> list[str]:
    return sorted(n.title for n in query)


def test_empty_set_reads_back_as_an_empty_set_and_queries_alike(reg: odm.Registry) -> None:
    empty = Note.create(title="empty", labels=set())
    Note.create(title="full", labels={"a"})
    Note.create(title="none")
    assert Note.get(empty.id).labels == set()
    assert Note.get(empty.id).labels is not None
    assert Note.query(Note.title == "none").first().labels is None  # None is no value: not an empty set
    assert _titles(Note.query(Note.labels == set())) == ["empty"]
    assert _titles(Note.query(Note.labels.exists())) == ["empty", "full"]
    assert _titles(Note.query(~Note.labels.exists())) == ["none"]
    assert _titles(Note.query(Note.labels.contains("a"))) == ["full"]
    assert _titles(Note.query(~Note.labels.contains("a"))) == ["empty", "none"]
    assert Note.query(Note.labels == set()).count() == 1
    # Emptying a set by update is stored the same way.
    full = Note.query(Note.title == "full").first()
    full.update(labels=set())
    assert Note.get(full.id).labels == set()
    assert _titles(Note.query(Note.labels == set())) == ["empty", "full"]
    # And a condition on it holds where the set is empty.
    full.update(condition=Note.labels == set(), count=3)
    assert Note.get(full.id).count == 3


def test_empty_list_reads_back_as_an_empty_list_and_queries_alike(reg: odm.Registry) -> None:
    User.create(email="empty@x.io", tags=[])
    User.create(email="full@x.io", tags=["a"])
    User.create(email="none@x.io")
    assert User.get("empty@x.io").tags == []
    assert User.get("none@x.io").tags is None
    assert sorted(u.email for u in User.query(User.tags == [])) == ["empty@x.io"]
    assert sorted(u.email for u in User.query(User.tags.exists())) == ["empty@x.io", "full@x.io"]
    assert sorted(u.email for u in User.query(User.tags.contains("a"))) == ["full@x.io"]
