"""Persistence: create, save, get, update, delete, batch operations."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

import odm

from .models import Account, Address, Color, Event, Note, User


def test_create_then_get_round_trips_every_type(reg: odm.Registry) -> None:
    ref = uuid.uuid4()
    note = Note.create(title="t", slug="s1", body="hello", when=dt.date(2024, 2, 29), ref=ref, blob=b"\x00\xff",
                       labels={"a", "b"}, extra={"k": [1, "two", {"n": True}]})
    assert isinstance(note.id, str) and uuid.UUID(note.id)
    got = Note.get(note.id)
    assert got == note
    assert got.when == dt.date(2024, 2, 29) and got.ref == ref and got.blob == b"\x00\xff"
    assert got.labels == {"a", "b"} and got.extra == {"k": [1, "two", {"n": True}]} and got.count == 0
    assert got.body == "hello"


def test_user_round_trip_decimal_datetime_enum_embedded(reg: odm.Registry) -> None:
    when = dt.datetime(2030, 5, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    User.create(email="a@x.io", name="Ann", age=30, score=9.25, balance=Decimal("12345678901234567890.123456789"),
                created_at=when, address=Address(city="Paris", street="Rue"), color=Color.BLUE, tags=["x", "y"])
    got = User.get("a@x.io")
    assert got.balance == Decimal("12345678901234567890.123456789")
    assert got.created_at == when  # every digit, on every backend (MongoDB included)
    assert got.created_at.tzinfo == dt.timezone.utc
    assert got.address == Address(city="Paris", street="Rue")
    assert got.color is Color.BLUE and got.tags == ["x", "y"] and got.score == 9.25 and got.active is True


def test_create_existing_key_is_duplicate_and_changes_nothing(reg: odm.Registry) -> None:
    User.create(email="a@x.io", name="Ann")
    with pytest.raises(odm.DuplicateKey):
        User.create(email="a@x.io", name="Other")
    assert User.get("a@x.io").name == "Ann"


def test_unique_index_rejects_second_value_but_ignores_missing(reg: odm.Registry) -> None:
    if not reg.backend.features.supports_unique_indexes:
        # Documented: such backends cannot enforce uniqueness; the index is an ordinary one.
        Note.create(title="a", slug="same")
        Note.create(title="b", slug="same")
        assert Note.query(Note.slug == "same").count() == 2
        return
    Note.create(title="a", slug="same")
    with pytest.raises(odm.DuplicateKey):
        Note.create(title="b", slug="same")
    Note.create(title="c")
    Note.create(title="d")
    assert Note.query().count() == 3


def test_save_inserts_then_replaces(reg: odm.Registry) -> None:
    u = User(email="b@x.io", name="Bob", age=20)
    u.save()
    u.name = "Bobby"
    u.age = None
    u.save()
    got = User.get("b@x.io")
    assert got.name == "Bobby" and got.age is None


def test_invalid_data_raises_before_any_write(reg: odm.Registry) -> None:
    u = User(email="c@x.io", name="C")
    u.age = "not a number"
    with pytest.raises(odm.ValidationError) as info:
        u.save()
    assert info.value.messages == {"age": ["Not a valid integer."]}
    assert User.get_or_none("c@x.io") is None
    with pytest.raises(odm.ValidationError):
        User.insert_many([User(email="d@x.io"), {"email": "e@x.io", "age": "x"}])
    assert User.query().count() == 0


def test_get_missing_raises_not_found_and_get_or_none(reg: odm.Registry) -> None:
    with pytest.raises(odm.NotFound, match="nobody@x.io"):
        User.get("nobody@x.io")
    assert User.get_or_none("nobody@x.io") is None


def test_hash_and_range_key(reg: odm.Registry) -> None:
    Event.create(stream="s", seq=1, kind="a")
    Event.create(stream="s", seq=2, kind="b")
    Event.create(stream="t", seq=1, kind="c")
    assert Event.get("s", 2).kind == "b"
    assert Event.get("t", 1).kind == "c"
    with pytest.raises(odm.DuplicateKey):
        Event.create(stream="s", seq=1)
    with pytest.raises(odm.NotFound):
        Event.get("t", 2)
    with pytest.raises(odm.ValidationError):
        Event.get("s")


def test_update_is_partial_atomic_and_refreshes(reg: odm.Registry) -> None:
    u = User.create(email="u@x.io", name="U", age=10, score=1.5)
    stale = User.get("u@x.io")
    u.update(name="V", age=odm.inc(5))
    stale.update(age=odm.inc(1), score=None)
    got = User.get("u@x.io")
    assert (got.name, got.age, got.score) == ("V", 16, None)
    assert (stale.name, stale.age) == ("V", 16)
    assert (u.name, u.age) == ("V", 15)


def test_update_validates_and_refuses_keys(reg: odm.Registry) -> None:
    u = User.create(email="v@x.io", age=1)
    with pytest.raises(odm.ValidationError):
        u.update(age="x")
    with pytest.raises(odm.ValidationError):
        u.update(email="w@x.io")
    with pytest.raises(odm.ValidationError):
        u.update(name=odm.inc(1))
    assert User.get("v@x.io").age == 1


def test_update_of_deleted_item_is_not_found(reg: odm.Registry) -> None:
    u = User.create(email="gone@x.io", age=1)
    User.get("gone@x.io").delete()
    with pytest.raises(odm.NotFound):
        u.update(age=2)
    assert User.get_or_none("gone@x.io") is None


def test_delete_and_reload(reg: odm.Registry) -> None:
    u = User.create(email="d@x.io", name="D")
    other = User.get("d@x.io")
    other.update(name="E")
    assert u.reload().name == "E"
    u.delete()
    assert User.get_or_none("d@x.io") is None
    u.delete()  # already gone: no error
    with pytest.raises(odm.NotFound):
        u.reload()


def test_conditional_save_update_delete(reg: odm.Registry) -> None:
    u = User.create(email="c@x.io", age=40)
    u.name = "new"
    with pytest.raises(odm.ConditionFailed):
        u.save(condition=User.age < 30)
    assert User.get("c@x.io").name is None
    u.save(condition=User.age >= 30)
    assert User.get("c@x.io").name == "new"
    with pytest.raises(odm.ConditionFailed):
        u.update(condition=User.name == "other", age=1)
    with pytest.raises(odm.ConditionFailed):
        u.delete(condition=User.name == "other")
    assert User.get("c@x.io").age == 40
    u.delete(condition=User.name == "new")
    assert User.get_or_none("c@x.io") is None


def test_conditional_save_of_new_item_evaluates_condition_on_missing_item(reg: odm.Registry) -> None:
    with pytest.raises(odm.ConditionFailed):
        User(email="n@x.io", age=1).save(condition=User.age < 30)
    assert User.get_or_none("n@x.io") is None
    User(email="n@x.io", age=1).save(condition=User.email.not_exists())
    assert User.get("n@x.io").age == 1


def test_version_field_detects_concurrent_saves(reg: odm.Registry) -> None:
    a = Account.create(owner="ann", balance=10)
    assert a.version == 1
    b = Account.get("ann")
    a.balance = 20
    a.save()
    assert a.version == 2
    b.balance = 99
    with pytest.raises(odm.ConcurrentModification):
        b.save()
    assert b.version == 1
    stored = Account.get("ann")
    assert (stored.balance, stored.version) == (20, 2)
    with pytest.raises(odm.ConcurrentModification):
        Account(owner="ann", balance=5).save()
    with pytest.raises(odm.ConcurrentModification):
        b.update(balance=odm.inc(1))
    with pytest.raises(odm.ConcurrentModification):
        b.delete()
    stored.update(balance=odm.inc(1))
    assert (stored.balance, stored.version) == (21, 3)
    assert isinstance(odm.ConcurrentModification("x"), odm.ConditionFailed)


def test_fresh_versioned_save_inserts_with_version_one(reg: odm.Registry) -> None:
    acc = Account(owner="bob").save()
    assert acc.version == 1 and Account.get("bob").version == 1


def test_batch_get_returns_existing_in_key_order(reg: odm.Registry) -> None:
    for i in range(5):
        User.create(email=f"{i}@x.io", age=i)
    got = User.batch_get(["3@x.io", "missing", "0@x.io", "4@x.io"])
    assert [u.email for u in got] == ["3@x.io", "0@x.io", "4@x.io"]
    Event.insert_many([Event(stream="s", seq=i) for i in range(3)])
    assert [e.seq for e in Event.batch_get([("s", 2), ("s", 9), ("s", 0)])] == [2, 0]


def test_insert_many_and_delete_many(reg: odm.Registry) -> None:
    users = User.insert_many([User(email=f"m{i}@x.io", age=i) for i in range(60)])
    assert len(users) == 60
    assert User.query().count() == 60
    assert User.delete_many(User.age < 10) == 10
    assert User.query().count() == 50
    assert User.delete_many() == 50
    assert User.query().count() == 0


def test_insert_many_duplicate_reports_keys(reg: odm.Registry) -> None:
    User.create(email="dup@x.io")
    with pytest.raises(odm.DuplicateKey, match="dup@x.io"):
        User.insert_many([User(email="new1@x.io"), User(email="dup@x.io")])
    if reg.backend.features.atomic_insert_many:
        assert User.get_or_none("new1@x.io") is None
    else:
        assert User.get("new1@x.io")


def test_unregistered_model_is_a_config_error() -> None:
    class Lonely(odm.Model):
        x = odm.fields.String()

    with pytest.raises(odm.ConfigError, match="register"):
        Lonely.get("a")
