"""Building a query (issue 11): keyword names are resolved once per model, and what is built is
what was built before: the same conditions, the same errors, each model naming itself."""

from __future__ import annotations

import dataclasses

import pytest

from odm import EmbeddedModel, Model, QueryError, fields
from odm.backends.base import QuerySpec
from odm.expressions.nodes import And, Compare, Exists, Not, Path


class Where(EmbeddedModel):
    city = fields.String()


class Person(Model):
    name = fields.String(required=True)
    age = fields.Integer()
    home = fields.Embedded(Where)

    class Meta:
        name = "query_building_person"


class Pet(Model):
    kind = fields.String()
    age = fields.Integer()

    class Meta:
        name = "query_building_pet"
        polymorphic = True


class Dog(Pet):
    pass


def test_keyword_conditions_equal_the_expressions_on_every_call() -> None:
    for _ in range(3):  # the first call resolves the names, the next ones reuse them
        assert Person.query(name="ann").spec.where == (Person.name == "ann")
        assert Person.query(home__city="Oslo").spec.where == (Person.home.city == "Oslo")
        assert Person.query(**{"home.city": "Oslo"}).spec.where == (Person.home.city == "Oslo")
        assert Person.query(name=None).spec.where == Not(Exists(Person.name.path))
        both = Person.query(Person.age > 3, name="ann").spec.where
        assert both == And((Person.age > 3, Person.name == "ann"))
        assert Person.query(name="ann").filter(age=4).spec.where == And(
            (Person.name == "ann", Person.age == 4))
        assert Person.query().order_by("-age").spec.order == (-Person.age,)


def test_errors_are_the_same_on_every_call_and_name_the_queried_model() -> None:
    for _ in range(2):
        with pytest.raises(QueryError, match=r"Person has no field 'nmae'; fields are: id, name, age, home\."):
            Person.query(nmae="ann")
        with pytest.raises(QueryError, match=r"Cannot compare Person\.age with 'x'"):
            Person.query(age="x")
        with pytest.raises(QueryError, match=r"Person\.home has no field 'town'"):
            Person.query(home__town="x")
        with pytest.raises(QueryError, match=r"Person\.home has no field '_x'"):
            Person.query(home___x="x")
    # A subclass resolves its own names (after the base has kept its own): errors name it.
    with pytest.raises(QueryError, match=r"Cannot compare Pet\.age with 'x'"):
        Pet.query(age="x")
    with pytest.raises(QueryError, match=r"Cannot compare Dog\.age with 'x'"):
        Dog.query(age="x")
    with pytest.raises(QueryError, match=r"Cannot compare Pet\.age with 'x'"):
        Pet.query(age="x")


def test_a_whole_table_query_has_the_empty_spec_and_a_polymorphic_child_its_type_filter() -> None:
    assert Person.query().spec == QuerySpec()
    narrowed = Person.query().limit(3)
    assert narrowed.spec.limit == 3 and Person.query().spec.limit is None  # nothing shared is changed
    assert Dog.query().spec.where is not None and Dog.query().spec.where == Dog.query().spec.where
    assert Dog.query(kind="x").spec.where == And((Dog.query().spec.where, Dog.kind == "x"))


def test_compare_is_still_a_frozen_checked_dataclass() -> None:
    node = Compare("eq", Path(("name",)), "ann")
    assert (node.op, node.path, node.value) == ("eq", Path(("name",)), "ann")
    assert node == Compare(op="eq", path=Path(("name",)), value="ann") and hash(node) == hash(Compare("eq", Path(("name",)), "ann"))
    assert dataclasses.replace(node, value="bob").value == "bob"
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.value = "bob"  # type: ignore[misc]
    with pytest.raises(QueryError, match="No stored value can hold it"):
        Compare("eq", Path(("name",)), "a\x00b")
    with pytest.raises(QueryError, match="No stored value can hold it"):
        Person.query(name="a\x00b")


def test_a_field_reference_names_the_class_it_was_read_from() -> None:
    for _ in range(2):  # made once per field and class, then reused
        assert (Pet.kind.label, Dog.kind.label, Pet.kind.label) == ("Pet.kind", "Dog.kind", "Pet.kind")
        assert Dog.kind.model is Dog and Pet.age.model is Pet
        assert Person.home.city.label == "Person.home.city"
    with pytest.raises(QueryError, match=r"Cannot compare Dog\.kind with 3"):
        Dog.kind == 3  # noqa: B015 - the comparison itself raises
