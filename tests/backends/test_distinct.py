"""Query.distinct and Query.count_by: the same Python values and counts on every backend."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import Model, fields
from odm.backends.base import Repository

from .models import Address, Color, Event, Note, Session, User
from .test_inheritance import Animal, Cat, Dog

UTC = dt.timezone.utc


class Tagged(Model):
    """A field whose stored name needs quoting in every query language."""

    key = fields.String(required=True)
    label = fields.String(data_key="we'ird $name")
    amount = fields.Decimal()

    class Meta:
        name = "suite_distinct_tagged"
        hash_key = "key"


@pytest.fixture
def people(reg: odm.Registry) -> odm.Registry:
    User.insert_many([
        User(email="a@x.io", name="it's", age=31, balance=Decimal("10.50"), color=Color.RED,
             address=Address(city="Paris"), created_at=dt.datetime(2024, 1, 1, tzinfo=UTC)),
        User(email="b@x.io", name='$a.b"c', age=17, balance=Decimal("0.1"), color=Color.BLUE,
             address=Address(city="Berlin"), created_at=dt.datetime(2024, 1, 1, tzinfo=UTC)),
        User(email="c@x.io", name="it's", age=31, balance=Decimal("10.5"),
             created_at=dt.datetime(2023, 3, 1, 12, 30, 0, 5, tzinfo=UTC)),
        User(email="d@x.io", age=-2, balance=Decimal("12345678901234567890.123456789"),
             address=Address(city="Paris"), created_at=dt.datetime(2025, 1, 1, tzinfo=UTC)),
        User(email="e@x.io", name="Zed", created_at=dt.datetime(2024, 1, 1, tzinfo=UTC)),
    ])
    return reg


def test_distinct_ints_strings_sorted_missing_left_out(people: odm.Registry) -> None:
    ages = User.query().distinct(User.age)
    assert ages == [-2, 17, 31] and all(type(a) is int for a in ages)
    assert User.query().distinct("name") == ['$a.b"c', "Zed", "it's"]  # code-point order


def test_distinct_decimals_exact_and_datetimes_aware(people: odm.Registry) -> None:
    balances = User.query().distinct(User.balance)
    assert balances == [Decimal("0.1"), Decimal("10.5"), Decimal("12345678901234567890.123456789")]
    assert all(isinstance(b, Decimal) for b in balances)
    times = User.query().distinct(User.created_at)
    assert times == [dt.datetime(2023, 3, 1, 12, 30, 0, 5, tzinfo=UTC), dt.datetime(2024, 1, 1, tzinfo=UTC),
                     dt.datetime(2025, 1, 1, tzinfo=UTC)]
    assert all(t.tzinfo is not None for t in times)


def test_distinct_enum_and_embedded_sub_field(people: odm.Registry) -> None:
    assert User.query().distinct(User.color) == [Color.BLUE, Color.RED]  # by stored value
    assert User.query().distinct(User.address.city) == ["Berlin", "Paris"]
    assert User.query().distinct("address.city") == ["Berlin", "Paris"]


def test_where_clause_limits_the_values(people: odm.Registry) -> None:
    assert User.query(User.age >= 18).distinct(User.name) == ["it's"]
    assert User.query(User.name == "nobody").distinct(User.age) == []
    assert User.query(User.age >= 18).count_by(User.name) == {"it's": 2}
    assert User.query(User.name == "nobody").count_by(User.age) == {}


def test_count_by_groups_missing_under_none_last(people: odm.Registry) -> None:
    got = User.query().count_by(User.age)
    assert got == {-2: 1, 17: 1, 31: 2, None: 1}
    assert list(got) == [-2, 17, 31, None]
    assert User.query().count_by("name") == {'$a.b"c': 1, "Zed": 1, "it's": 2, None: 1}
    assert User.query().count_by(User.address.city) == {"Berlin": 1, "Paris": 2, None: 2}
    # Decimal("10.50") and Decimal("10.5") are one value, as in queries.
    balances = User.query().count_by(User.balance)
    assert balances == {Decimal("0.1"): 1, Decimal("10.5"): 2, Decimal("12345678901234567890.123456789"): 1, None: 1}
    assert sum(User.query().count_by(User.created_at).values()) == User.query().count() == 5


def test_keys_and_a_key_condition(reg: odm.Registry) -> None:
    Event.insert_many([Event(stream="s", seq=i, kind="k" + str(i % 2)) for i in range(5)]
                      + [Event(stream="t", seq=9, kind="k9")])
    assert Event.query(Event.stream == "s").distinct(Event.kind) == ["k0", "k1"]
    assert Event.query(Event.stream == "s").count_by(Event.kind) == {"k0": 3, "k1": 2}
    assert Event.query().distinct(Event.stream) == ["s", "t"]
    assert Event.query(Event.stream == "s", Event.seq >= 3).distinct("seq") == [3, 4]


def test_grouped_where_the_backend_can(people: odm.Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """MongoDB and SQL group on the server and DynamoDB projects pages: never the whole-item stream."""
    streamed: list[object] = []
    generic = Repository.count_by_op

    def spy(self: Repository, *args: Any) -> Any:
        streamed.append(args)
        return generic(self, *args)

    monkeypatch.setattr(Repository, "count_by_op", spy)
    assert User.query(User.age >= 18).count_by(User.name) == {"it's": 2}
    assert User.query().distinct(User.balance)[0] == Decimal("0.1")
    assert streamed == []
    assert User.query(User.age == 31).limit(1).distinct(User.age) == [31]  # a window: streamed
    assert len(streamed) == 1


def test_ttl_attribute(reg: odm.Registry) -> None:
    """The TTL attribute (stored apart on MongoDB and DynamoDB) reads back to the microsecond."""
    soon = dt.datetime.now(UTC).replace(microsecond=123456) + dt.timedelta(hours=1)
    later = soon + dt.timedelta(minutes=5, microseconds=1)
    Session.insert_many([Session(token="a", user="u", expires_at=soon), Session(token="b", expires_at=soon),
                         Session(token="c", user="u", expires_at=later)])
    assert Session.query().distinct(Session.expires_at) == [soon, later]
    assert Session.query().count_by(Session.expires_at) == {soon: 2, later: 1}
    assert Session.query().count_by(Session.user) == {"u": 2, None: 1}


def test_a_subclass_query_sees_only_its_type(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Animal)
    Animal.insert_many([Dog(name="rex", legs=4, price=Decimal("2.50")), Cat(name="tom", legs=4),
                        Dog(name="fido", legs=3), Cat(name="kit", legs=4)])
    assert Dog.query().distinct(Dog.legs) == [3, 4]
    assert Dog.query().count_by(Animal.legs) == {3: 1, 4: 1}  # a base's field serves a subclass query
    assert Animal.query().count_by("legs") == {3: 1, 4: 3}
    assert Dog.query().count_by(Dog.price) == {Decimal("2.5"): 1, None: 1}
    with pytest.raises(odm.QueryError, match="fields are"):
        Animal.query().distinct(Dog.price)  # a subclass's field on the base's query


def test_window_is_respected(reg: odm.Registry) -> None:
    Event.insert_many([Event(stream="s", seq=i, kind="k" + str(i % 3)) for i in range(6)])
    q = Event.query(Event.stream == "s").order_by(-Event.seq).limit(3)  # seq 5, 4, 3
    assert q.distinct(Event.kind) == ["k0", "k1", "k2"]
    assert q.offset(1).limit(2).count_by(Event.kind) == {"k0": 1, "k1": 1}  # seq 4, 3
    assert Event.query(Event.stream == "s").order_by(Event.seq).limit(2).distinct(Event.seq) == [0, 1]


def test_field_name_needing_quoting(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Tagged)
    Tagged.insert_many([Tagged(key="1", label="x.y", amount=Decimal("1.25")), Tagged(key="2", label="$z"),
                        Tagged(key="3", label="x.y", amount=Decimal("-7")), Tagged(key="4")])
    assert Tagged.query().distinct(Tagged.label) == ["$z", "x.y"]
    assert Tagged.query().count_by("label") == {"$z": 1, "x.y": 2, None: 1}
    assert Tagged.query(Tagged.label == "x.y").distinct(Tagged.amount) == [Decimal("-7"), Decimal("1.25")]


def test_async_twins(target: Any) -> None:
    """One event loop opens the registry's async connections and closes them before it ends."""
    async def main() -> tuple[list[Any], dict[Any, int]]:
        async with target.registry() as reg:
            reg.register(User, rebind=True)
            await reg.async_sync()
            try:
                await User.ainsert_many([User(email="a@x.io", name="n", age=3, balance=Decimal("1.10")),
                                         User(email="b@x.io", age=3, balance=Decimal("1.1")),
                                         User(email="c@x.io", name="n", age=1)])
                return (await User.query().adistinct(User.balance),
                        await User.query(User.age > 0).acount_by(User.name))
            finally:
                await User.query().adelete()

    assert asyncio.run(main()) == ([Decimal("1.1")], {"n": 2, None: 1})


def test_unknown_field_lists_fields(reg: odm.Registry) -> None:
    with pytest.raises(odm.QueryError, match="no field 'nope'; fields are: email, name, age"):
        User.query().distinct("nope")
    with pytest.raises(odm.QueryError, match="fields are: email"):
        User.query().count_by(Note.title)  # another model's field
    with pytest.raises(odm.QueryError, match="fields are: email"):
        User.query().distinct(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["tags", "address"])
def test_non_scalar_fields_refused(reg: odm.Registry, name: str) -> None:
    with pytest.raises(odm.QueryError, match=f"'{name}', a (list|embedded) field"):
        User.query().distinct(name)
    with pytest.raises(odm.QueryError, match="a (set|dict) field"):
        Note.query().count_by(Note.extra if name == "address" else Note.labels)
