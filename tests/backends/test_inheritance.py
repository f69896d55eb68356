"""Inheritance on every backend: abstract bases (fields and Meta) and polymorphic models in one table."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import Index, Model, fields


class Owned(Model):
    """An abstract base: its key, index and fields go to every child."""

    code = fields.String(required=True)
    owner = fields.String()

    class Meta:
        abstract = True
        hash_key = "code"
        indexes = ["owner"]


class Ticket(Owned):
    seat = fields.Integer()

    class Meta(Owned.Meta):
        name = "suite_tickets"


class Animal(Model):
    name = fields.String(required=True)
    legs = fields.Integer()

    class Meta:
        name = "suite_animals"
        polymorphic = True
        indexes = [Index("name")]


class Dog(Animal):
    bark = fields.String()
    price = fields.Decimal()


class Puppy(Dog):
    toy = fields.String()

    class Meta:
        discriminator = "pup"


class Cat(Animal):
    lives = fields.Integer()


class Reading(Model):
    """A polymorphic family with a composite key."""

    sensor = fields.String(required=True)
    at = fields.Integer(required=True)

    class Meta:
        name = "suite_readings"
        hash_key = "sensor"
        range_key = "at"
        polymorphic = True
        discriminator_attribute = "kind"


class Heat(Reading):
    celsius = fields.Float()


class Wind(Reading):
    speed = fields.Float()


@pytest.fixture
def zoo(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    reg = make_registry(Animal)
    Animal.create(id="a", name="generic", legs=0)
    Dog.create(id="d", name="rex", legs=4, bark="woof", price=Decimal("10.10"))
    Puppy.create(id="p", name="bit", legs=4, bark="yip", toy="ball")
    Cat.create(id="c", name="tom", legs=4, lives=9)
    return reg


def _ids(objs: Any) -> list[tuple[str, str]]:
    return sorted((type(o).__name__, o.id) for o in objs)


# -- abstract bases ---------------------------------------------------------------------


def test_abstract_base_key_index_and_fields_reach_the_child(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Ticket)
    Ticket.create(code="T1", owner="ann", seat=3)
    with pytest.raises(odm.DuplicateKey):
        Ticket.create(code="T1", owner="bob")
    got = Ticket.get("T1")
    assert got == Ticket(code="T1", owner="ann", seat=3) and "id" not in got.to_dict()
    assert [t.code for t in Ticket.query(owner="ann")] == ["T1"]


# -- polymorphic: reads ---------------------------------------------------------------------


def test_base_query_returns_each_items_own_class(zoo: odm.Registry) -> None:
    assert _ids(Animal.query()) == [("Animal", "a"), ("Cat", "c"), ("Dog", "d"), ("Puppy", "p")]
    pup = next(o for o in Animal.query() if o.id == "p")
    assert pup == Puppy(id="p", name="bit", legs=4, bark="yip", toy="ball")
    assert Animal.get("d").price == Decimal("10.10")


def test_subclass_query_reads_only_its_own_and_its_subclasses(zoo: odm.Registry) -> None:
    assert _ids(Dog.query()) == [("Dog", "d"), ("Puppy", "p")]
    assert _ids(Puppy.query()) == [("Puppy", "p")]
    assert _ids(Cat.query()) == [("Cat", "c")]
    assert _ids(Dog.query(Dog.legs == 4)) == [("Dog", "d"), ("Puppy", "p")]
    assert _ids(Cat.query(Cat.name == "rex")) == []  # on the index, still only cats
    assert _ids(Dog.query(Dog.id == "c")) == []  # on the key: a cat is not a dog
    if zoo.backend.features.supports_arbitrary_order:
        assert [o.id for o in Dog.query().order_by("name")] == ["p", "d"]


def test_subclass_count_first_exists_page_are_limited_to_its_type(zoo: odm.Registry) -> None:
    assert (Animal.query().count(), Dog.query().count(), Puppy.query().count(), Cat.query().count()) == (4, 2, 1, 1)
    assert Cat.query(Cat.legs == 4).count() == 1
    first = Puppy.query().first()
    assert isinstance(first, Puppy) and first.id == "p"
    assert Cat.query(Cat.name == "tom").exists() and not Cat.query(Cat.name == "rex").exists()
    seen: list[Any] = []
    page = Dog.query().page(size=1)
    seen += page.items
    while page.next_cursor:
        page = Dog.query().page(size=1, cursor=page.next_cursor)
        seen += page.items
    assert _ids(seen) == [("Dog", "d"), ("Puppy", "p")]


def test_get_of_another_type_is_not_found(zoo: odm.Registry) -> None:
    assert isinstance(Animal.get("p"), Puppy) and isinstance(Dog.get("p"), Puppy)
    with pytest.raises(odm.NotFound):
        Dog.get("c")
    with pytest.raises(odm.NotFound):
        Puppy.get("d")
    assert Cat.get_or_none("d") is None
    assert _ids(Dog.batch_get(["c", "p", "d", "a"])) == [("Dog", "d"), ("Puppy", "p")]
    assert _ids(Animal.batch_get(["c", "p"])) == [("Cat", "c"), ("Puppy", "p")]


def test_base_query_on_a_subclass_field_finds_that_subclass(zoo: odm.Registry) -> None:
    assert _ids(Animal.query(Dog.bark == "woof")) == [("Dog", "d")]
    assert _ids(Animal.query(Cat.lives.exists())) == [("Cat", "c")]
    assert _ids(Cat.query(Dog.bark == "woof")) == []
    with pytest.raises(odm.QueryError, match="Animal has no field 'bark'"):
        Animal.query(bark="woof")


# -- polymorphic: writes ----------------------------------------------------------------------


def test_subclass_delete_and_delete_many_leave_other_types(zoo: odm.Registry) -> None:
    assert Dog.query().delete() == 2
    assert _ids(Animal.query()) == [("Animal", "a"), ("Cat", "c")]
    assert Cat.delete_many(Cat.legs == 4) == 1
    assert _ids(Animal.query()) == [("Animal", "a")]


def test_update_save_and_reload_keep_the_type(zoo: odm.Registry) -> None:
    pup = Puppy.get("p")
    pup.update(toy="bone", legs=odm.inc(-1))
    assert isinstance(pup, Puppy) and (pup.toy, pup.legs) == ("bone", 3)
    pup.bark = "arf"
    pup.save()
    again = Animal.get("p")
    assert isinstance(again, Puppy) and (again.bark, again.toy) == ("arf", "bone")
    assert isinstance(pup.reload(), Puppy)
    assert Puppy.query(Puppy.toy == "bone").count() == 1


def test_subclass_query_update_changes_only_its_type(zoo: odm.Registry) -> None:
    assert Dog.query().update(legs=3) == 2
    assert sorted((o.id, o.legs) for o in Animal.query()) == [("a", 0), ("c", 4), ("d", 3), ("p", 3)]
    assert all(type(o) is Puppy for o in Puppy.query()) and isinstance(Animal.get("d"), Dog)
    with pytest.raises(odm.ValidationError, match="_type: Unknown field"):
        Cat.query().update(_type="Dog")


def test_base_insert_many_stores_each_instances_type(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Animal)
    Animal.insert_many([Dog(id="d1", name="a", bark="x"), Cat(id="c1", name="b", lives=3), {"id": "a1", "name": "c"}])
    assert _ids(Animal.query()) == [("Animal", "a1"), ("Cat", "c1"), ("Dog", "d1")]
    Dog.insert_many([Puppy(id="p1", name="d", toy="t")])
    assert _ids(Dog.query()) == [("Dog", "d1"), ("Puppy", "p1")]


def test_forged_discriminator_in_input_is_refused(zoo: odm.Registry) -> None:
    with pytest.raises(odm.ValidationError, match="_type: Unknown field"):
        Animal.create(id="f", name="forged", _type="Dog")
    with pytest.raises(odm.ValidationError, match="_type: Unknown field"):
        Animal.insert_many([{"id": "f", "name": "forged", "_type": "pup"}])
    with pytest.raises(odm.ValidationError, match="bark: Unknown field"):
        Animal.create(id="f", name="forged", bark="woof")  # a Dog's field does not make a Dog
    assert Animal.get_or_none("f") is None
    cat = Cat.get("c")
    with pytest.raises(odm.ValidationError, match="_type: Unknown field"):
        cat.update(_type="Dog")
    with pytest.raises(odm.ValidationError, match="bark: Unknown field"):
        cat.update(bark="meow")
    assert isinstance(Animal.get("c"), Cat) and Dog.get_or_none("c") is None


def test_a_write_never_changes_an_items_type(zoo: odm.Registry) -> None:
    with pytest.raises(odm.ConditionFailed):
        Dog(id="c", name="not a cat").save()  # the key holds a Cat
    with pytest.raises(odm.ConditionFailed):
        Animal(id="p", name="plain").save()  # nor turns a Puppy into a plain Animal
    with pytest.raises(odm.DuplicateKey):
        Dog.create(id="c", name="x")
    assert isinstance(Animal.get("c"), Cat) and isinstance(Animal.get("p"), Puppy)
    stale = Dog.get("d")
    stale.delete()
    Cat.create(id="d", name="new cat", lives=1)  # the key now holds a Cat
    with pytest.raises(odm.ConditionFailed):
        stale.update(bark="grr")
    with pytest.raises(odm.ConditionFailed):
        stale.delete()
    with pytest.raises(odm.NotFound):
        stale.reload()
    assert Animal.get("d") == Cat(id="d", name="new cat", lives=1)
    Dog(id="new", name="fresh").save()  # no stored item: saved
    Animal(id="a", name="renamed").save()  # its own type: replaced
    assert isinstance(Animal.get("new"), Dog) and Animal.get("a").name == "renamed"
    assert Dog.get("p").update(bark="ok").bark == "ok"  # a Puppy through Dog's class: still its own type


def test_composite_key_family_with_its_own_discriminator_attribute(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Wind)  # registering a subclass registers its base
    Heat.create(sensor="s", at=1, celsius=20.5)
    Wind.create(sensor="s", at=2, speed=3.0)
    assert isinstance(Reading.get("s", 1), Heat) and isinstance(Reading.get("s", 2), Wind)
    with pytest.raises(odm.NotFound):
        Heat.get("s", 2)
    assert [r.at for r in Heat.query(Heat.sensor == "s")] == [1]
    assert [type(r).__name__ for r in Reading.query(Reading.sensor == "s").order_by("at")] == ["Heat", "Wind"]


def test_items_without_a_type_read_as_the_base_and_unknown_types_are_an_error(
        zoo: odm.Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Animal._bound().repo
    Animal._run(repo.insert_op({"id": "old", "name": "before polymorphic"}))  # written before Meta.polymorphic
    old = Animal.get("old")
    assert type(old) is Animal and old.name == "before polymorphic"
    old.update(legs=2)  # the base may write it (and then stores its type)
    assert Animal.get("old").legs == 2 and Animal.query(Animal.name == "before polymorphic").count() == 1
    assert Dog.get_or_none("old") is None
    family = Animal._meta.family
    assert family is not None
    monkeypatch.delitem(family.by_value, "Cat")  # as if Cat's module were not imported
    with pytest.raises(odm.ConfigError, match=r"'[^']*suite_animals' holds an item of type 'Cat' .*define or import"):
        Animal.get("c")


def test_a_subclass_defined_after_registration_is_bound(zoo: odm.Registry) -> None:
    class Parrot(Animal):
        words = fields.List(fields.String())

    Parrot.create(id="q", name="polly", words=["hello"])
    assert _ids(Animal.query(Animal.name == "polly")) == [("Parrot", "q")]
    assert Parrot.query().count() == 1 and Parrot.get("q").words == ["hello"]


def test_awaited_reads_dispatch_and_filter_too(target: Any) -> None:
    async def main() -> None:
        async with target.registry() as reg:
            reg.register(Animal, rebind=True)
            await reg.async_sync()
            try:
                await Dog.acreate(id="d", name="rex")
                await Cat.acreate(id="c", name="tom")
                assert isinstance(await Animal.aget("d"), Dog)
                with pytest.raises(odm.NotFound):
                    await Cat.aget("d")
                assert [o.id async for o in Cat.query()] == ["c"]
                assert await Dog.query().acount() == 1
                assert _ids(await Animal.query().aall()) == [("Cat", "c"), ("Dog", "d")]
            finally:
                await Animal.query().adelete()

    asyncio.run(main())


# -- polymorphic: an index on the discriminator ----------------------------------------------


class Vehicle(Model):
    """A base that indexes its discriminator, so a subclass's query is served by that index."""

    name = fields.String(required=True)

    class Meta:
        name = "suite_vehicles"
        polymorphic = True
        indexes = [Index("_type", "name")]
        # A narrow index a polymorphic query can read: it must hold the type (the key comes along).
        gsi = {"by_name": {"hash_key": "name", "projection": ["_type"]}}


class Car(Vehicle):
    doors = fields.Integer()


class Bike(Vehicle):
    gears = fields.Integer()


def test_an_index_on_the_discriminator_serves_subclass_queries(make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(Vehicle)
    for i in range(6):
        Car.create(id=f"c{i}", name=f"car {i}", doors=i)
        Bike.create(id=f"b{i}", name=f"bike {i}", gears=i)
    assert _ids(Car.query(Car.name >= "car 4")) == [("Car", "c4"), ("Car", "c5")]
    assert Bike.query().count() == 6 and Vehicle.query().count() == 12
    assert [b.id for b in Bike.query(Bike.gears > 3)] in (["b4", "b5"], ["b5", "b4"])
    # Every backend's plan names the index it reads (DynamoDB: a Query on it, not a Scan).
    assert "ix__type_name" in str(Car.query().explain())
    assert [b.gears for b in Bike.query(Bike.name == "bike 2")] == [2]
    only = Vehicle.query(Vehicle.name == "car 3").only("name")
    assert [(type(v).__name__, v.id, v.name) for v in only] == [("Car", "c3", "car 3")]
    if reg.backend.features.index_projections:  # the narrow index serves it, type included
        assert "by_name" in str(only.explain())
    with pytest.raises(odm.ConfigError, match="_type"):
        class Plain(Model):  # only a polymorphic model has a discriminator to index
            name = fields.String()

            class Meta:
                name = "suite_plain_type_index"
                indexes = ["_type"]


class Shape(Model):
    """A family whose subclasses index their own fields (in the base's one table)."""

    name = fields.String(required=True)

    class Meta:
        name = "suite_shapes"
        polymorphic = True


class Circle(Shape):
    radius = fields.Integer()

    class Meta:
        indexes = ["radius"]


class Square(Shape):
    side = fields.Integer()
    color = fields.String()

    class Meta:
        indexes = [Index("color", name="ix_square_color")]


def test_a_subclass_indexes_its_own_fields_in_the_shared_table(make_registry: Callable[..., odm.Registry]) -> None:
    assert [ix.name for ix in Shape._spec.indexes] == ["ix_radius", "ix_square_color"]  # type: ignore[union-attr]
    assert Circle._spec is Shape._spec is Square._spec
    make_registry(Shape)
    for i in range(8):
        Circle.create(id=f"c{i}", name="circle", radius=i)
        Square.create(id=f"s{i}", name="square", side=i, color="red" if i % 2 else "blue")
    assert _ids(Circle.query(Circle.radius == 3)) == [("Circle", "c3")]
    assert sorted(s.side for s in Square.query(Square.color == "red")) == [1, 3, 5, 7]
    # The index exists on every backend (a query by the field alone, from the base, names it in its
    # plan; a subclass's own query also carries the type, and SecantusDB scans for such a conjunction).
    assert "ix_radius" in str(Shape.query(Circle.radius == 3).explain())
    assert "ix_square_color" in str(Shape.query(Square.color == "red").explain())
    assert _ids(Shape.query(Circle.radius == 5)) == [("Circle", "c5")]  # from the base, by a subclass's field
    with pytest.raises(odm.ConfigError, match="already registered"):
        class Triangle(Shape):  # too late: the table was synced without its index
            base = fields.Integer()

            class Meta:
                indexes = ["base"]
    with pytest.raises(odm.ConfigError, match="hash_key"):
        class Oval(Circle):  # the table's options stay the base's
            class Meta:
                hash_key = "name"
