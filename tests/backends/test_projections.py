"""Projections: ``Query.only`` and ``get(only=...)`` read just some fields, as partial instances."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import fields

from .models import Account, Address, Event, Note, User

UTC = dt.timezone.utc


class Shape(odm.Model):
    """Polymorphic: the stored type comes along with every projection."""

    label = fields.String(required=True)
    colour = fields.String()

    class Meta:
        name = "proj_shapes"
        hash_key = "label"
        polymorphic = True


class Square(Shape):
    side = fields.Integer()


@pytest.fixture
def people(reg: odm.Registry) -> odm.Registry:
    User.insert_many([
        User(email="ann@x.io", name="Ann", age=31, tags=["dev"], address=Address(city="Paris"),
             balance=Decimal("12345678901234567890.123456789")),
        User(email="bob@x.io", name="Bob", age=17),
        User(email="eve@x.io", age=45),  # no name
    ])
    return reg


def test_query_only_fetches_those_fields_and_the_key(people: odm.Registry) -> None:
    found = {u.email: u for u in User.query(User.age >= 18).only(User.name, "age")}
    assert set(found) == {"ann@x.io", "eve@x.io"}
    ann = found["ann@x.io"]
    assert (ann.name, ann.age) == ("Ann", 31)
    assert ann.to_dict() == {"email": "ann@x.io", "name": "Ann", "age": 31}
    assert found["eve@x.io"].name is None  # asked for, absent from the item: None
    assert "tags" not in repr(ann) and "_odm_only" not in repr(ann)


def test_unfetched_attribute_raises_attribute_error_naming_only(people: odm.Registry) -> None:
    ann = User.query(User.email == "ann@x.io").only(User.name).first()
    assert ann is not None
    with pytest.raises(AttributeError, match=r"only\(") as info:
        ann.tags  # noqa: B018
    assert "tags" in str(info.value)
    assert getattr(ann, "age", "missing") == "missing"
    assert not hasattr(ann, "address")


def test_unknown_field_lists_the_fields(people: odm.Registry) -> None:
    with pytest.raises(odm.QueryError, match="fields are: email, name"):
        User.query().only("nope")
    with pytest.raises(odm.QueryError, match="fields are"):
        User.get("ann@x.io", only=["nope"])
    with pytest.raises(odm.QueryError, match="fields are"):
        User.query().only(User.address.city)  # top-level fields only


def test_get_only_and_a_decimal_stays_exact(people: odm.Registry) -> None:
    ann = User.get("ann@x.io", only=[User.balance])
    assert ann.balance == Decimal("12345678901234567890.123456789")
    assert ann.email == "ann@x.io"
    with pytest.raises(AttributeError, match="only"):
        ann.name  # noqa: B018
    with pytest.raises(odm.NotFound):
        User.get("nobody@x.io", only=[User.name])


def test_names_needing_quoting(reg: odm.Registry) -> None:
    # 'count' and 'when' are DynamoDB reserved words; body is stored as 'text' (data_key).
    note = Note.create(title="t", body="b", when=dt.date(2024, 1, 2), count=3, slug="s")
    got = Note.get(note.id, only=[Note.count, Note.when, Note.body])
    assert (got.count, got.when, got.body) == (3, dt.date(2024, 1, 2), "b")
    with pytest.raises(AttributeError):
        got.title  # noqa: B018
    [again] = Note.query(Note.slug == "s").only(Note.body, "count")
    assert (again.body, again.count) == ("b", 3)


def test_first_page_and_async_style_iteration(people: odm.Registry) -> None:
    first = User.query(User.email == "bob@x.io").only(User.age).first()
    assert first is not None and first.age == 17
    Event.insert_many([Event(stream="s", seq=i, kind=f"k{i}", at=dt.datetime(2024, 1, i, tzinfo=UTC))
                       for i in (1, 2, 3)])
    query = Event.query(Event.stream == "s").order_by(Event.seq).only(Event.kind)
    page = query.page(2)
    assert [(e.seq, e.kind) for e in page.items] == [(1, "k1"), (2, "k2")]
    assert page.next_cursor is not None
    rest = query.page(2, page.next_cursor)
    assert [e.kind for e in rest.items] == ["k3"] and rest.next_cursor is None
    with pytest.raises(AttributeError):
        rest.items[0].at  # noqa: B018


def test_async_iteration_aget_and_asave(target: Any) -> None:
    async def main() -> None:
        async with target.registry() as reg:  # one loop opens and closes the async connections
            reg.register(User, rebind=True)
            await reg.async_sync()
            try:
                await User.acreate(email="bob@x.io", name="Bob", age=17)
                await User.acreate(email="eve@x.io", age=45)
                names = {u.email: u.name async for u in User.query().only(User.name)}
                assert names == {"bob@x.io": "Bob", "eve@x.io": None}
                bob = await User.aget("bob@x.io", only=["age"])
                assert bob.age == 17
                with pytest.raises(AttributeError):
                    bob.name  # noqa: B018
                with pytest.raises(odm.QueryError, match="partial"):
                    await bob.asave()
                assert (await User.aget("bob@x.io")).name == "Bob"
            finally:
                await User.query().adelete()

    asyncio.run(main())


def test_partial_save_is_refused_and_writes_nothing(people: odm.Registry) -> None:
    ann = User.get("ann@x.io", only=[User.name])
    ann.name = "Changed"
    with pytest.raises(odm.QueryError, match="partial"):
        ann.save()
    with pytest.raises(odm.QueryError, match="partial"):
        User.insert_many([ann])
    whole = User.get("ann@x.io")
    assert (whole.name, whole.age, whole.tags) == ("Ann", 31, ["dev"])


def test_update_on_a_partial_instance_refreshes_it_whole(reg: odm.Registry) -> None:
    Account.create(owner="o", balance=5)
    acc = Account.get("o", only=[Account.balance])
    assert acc.version == 1  # the version field always comes along
    acc.update(balance=odm.inc(2))
    assert (acc.balance, acc.version) == (7, 2)
    acc.save()  # whole again after the update's refresh
    assert Account.get("o").balance == 7


def test_the_server_sends_only_those_attributes(people: odm.Registry) -> None:
    """The projection runs on the server (not only the decode's trimming)."""
    repo = User._bound().repo
    if type(repo.backend).__name__.startswith("SQLite") and sqlite3.sqlite_version_info < (3, 38):
        pytest.skip("SQLite before 3.38 reads whole documents (no '->'); the decode trims them")
    doc = repo.get(User._bound().key("ann@x.io"), ["email", "name"])
    assert doc is not None and set(doc) == {"email", "name"}
    docs = list(repo.find(User.query(User.email == "ann@x.io").only(User.age).spec))
    assert [set(d) for d in docs] == [{"email", "age"}]


def test_polymorphic_projection_keeps_each_type(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Shape)
    Shape.create(label="plain", colour="red")
    Square.create(label="sq", colour="blue", side=4)
    got = {s.label: s for s in Shape.query().only(Shape.colour)}
    assert type(got["sq"]) is Square and type(got["plain"]) is Shape
    assert got["sq"].colour == "blue"
    with pytest.raises(AttributeError, match="only"):
        got["sq"].side  # noqa: B018
    square = Square.get("sq", only=[Square.side])
    assert (type(square), square.side) == (Square, 4)
