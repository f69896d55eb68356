"""Model inheritance, without a database: abstract bases (fields and Meta) and polymorphic families' rules."""

from __future__ import annotations

from pathlib import Path

import pytest

import odm
from odm import Index, Model, fields
from odm.expressions.nodes import Compare, In


class Keyed(Model):
    email = fields.String(required=True)
    age = fields.Integer()

    class Meta:
        abstract = True
        name = "never_used"
        hash_key = "email"
        indexes = ["age"]
        version_field = None


# -- abstract bases -------------------------------------------------------------------------


def test_child_inherits_fields_and_hash_key_without_an_auto_id() -> None:
    class Member(Keyed):
        nick = fields.String()

    assert list(Member._fields) == ["email", "age", "nick"]
    assert Member._spec is not None and Member._spec.hash_key.parts == ("email",)
    assert [ix.name for ix in Member._spec.indexes] == ["ix_age"]


def test_name_and_abstract_are_never_inherited() -> None:
    class Member(Keyed):
        pass

    assert Member._meta.name == "member" and not Member._meta.abstract
    assert Member._spec is not None and Member._spec.name == "member"


@pytest.mark.parametrize("subclass_meta", [False, True])
def test_own_meta_overrides_only_the_keys_it_sets(subclass_meta: bool) -> None:
    if subclass_meta:
        class Member(Keyed):
            class Meta(Keyed.Meta):
                name = "members"
                indexes = [Index("age", unique=True)]
    else:
        class Member(Keyed):  # type: ignore[no-redef]
            class Meta:
                name = "members"
                indexes = [Index("age", unique=True)]

    spec = Member._spec
    assert spec is not None
    assert spec.name == "members" and spec.hash_key.parts == ("email",)
    assert [(ix.name, ix.unique) for ix in spec.indexes] == [("ix_age_uniq", True)]


def test_abstract_bases_chain_nearest_wins() -> None:
    class Ranged(Keyed):
        at = fields.Integer(required=True)

        class Meta:
            abstract = True
            range_key = "at"
            indexes: list[str] = []

    class Reading(Ranged):
        pass

    spec = Reading._spec
    assert spec is not None and spec.key_paths[0].parts == ("email",) and spec.range_key is not None
    assert spec.range_key.parts == ("at",) and spec.indexes == ()


def test_plain_option_classes_are_inherited_by_meta() -> None:
    class Common:
        hash_key = "email"

    class Member(Model):
        email = fields.String(required=True)

        class Meta(Common):
            name = "m"

    assert Member._spec is not None and Member._spec.hash_key.parts == ("email",)


def test_an_abstract_base_without_a_key_gives_each_child_its_own_auto_id() -> None:
    class Plain(Model):
        title = fields.String()

        class Meta:
            abstract = True

    class Note(Plain):
        pass

    class Keyed2(Plain):
        code = fields.String(required=True)

        class Meta:
            hash_key = "code"

    assert "id" not in Plain._fields
    assert list(Note._fields) == ["id", "title"] and Note._fields["id"].model is Note
    assert "id" not in Keyed2._fields


def test_inherited_fields_are_bound_to_the_child() -> None:
    class Member(Keyed):
        pass

    assert Member.email.path.field.model is Member and Keyed.email.path.field.model is Keyed
    assert Member._spec is not None and Member._spec.label == "Member"
    with pytest.raises(odm.ValidationError, match="Invalid Member"):
        Member(age="old")


def test_nested_element_fields_are_copied_too() -> None:
    class Base(Model):
        grid = fields.List(fields.List(fields.Integer()))

        class Meta:
            abstract = True

    class Child(Base):
        pass

    inner = Child._fields["grid"].inner.inner  # type: ignore[attr-defined]
    assert inner.model is Child and Base._fields["grid"].inner.inner.model is Base  # type: ignore[attr-defined]
    with pytest.raises(odm.ValidationError, match="Invalid Child"):
        Child(grid=[["x"]])


def test_child_of_an_abstract_base_may_retype_a_field() -> None:
    class Member(Keyed):
        age = fields.String()  # its own table: nothing else stores 'age'

    assert Member(email="a", age="old").age == "old"
    assert Keyed._fields["age"].kind == "int"


def test_an_abstract_bases_bad_option_names_the_base() -> None:
    with pytest.raises(odm.ConfigError, match=r"Base\.Meta has an unknown option 'hash'"):
        class Base(Model):
            class Meta:
                abstract = True
                hash = "x"


def test_a_bad_inherited_key_is_reported_on_the_child() -> None:
    class Base(Model):
        class Meta:
            abstract = True
            hash_key = "email"

    with pytest.raises(odm.ConfigError, match=r"Child\.Meta\.hash_key names 'email', which is not a field of Child"):
        class Child(Base):
            name = fields.String()


def test_subclassing_a_concrete_model_says_what_to_do() -> None:
    class Account(Model):
        owner = fields.String()

    with pytest.raises(odm.ConfigError) as err:
        class Savings(Account):
            rate = fields.Float()
    assert str(err.value) == (
        "Savings subclasses Account, a concrete model with its own table 'account'. Make Account abstract "
        "(Meta.abstract = True) to give Savings a table of its own with Account's fields and Meta, or polymorphic "
        "(Meta.polymorphic = True) to store both in one table.")


# -- polymorphic families: rules checked when the class is defined ----------------------------


class Animal(Model):
    name = fields.String()
    legs = fields.Integer()

    class Meta:
        polymorphic = True
        name = "animals"
        indexes = ["name"]


class Dog(Animal):
    bark = fields.String()


class Puppy(Dog):
    toy = fields.String()

    class Meta:
        discriminator = "pup"


class Cat(Animal):
    lives = fields.Integer()


def test_members_share_the_base_table_key_and_spec() -> None:
    assert Dog._spec is Animal._spec and Puppy._spec is Animal._spec
    assert list(Puppy._fields) == ["id", "name", "legs", "bark", "toy"]
    assert (Animal._meta.discriminator, Dog._meta.discriminator, Puppy._meta.discriminator) == ("Animal", "Dog", "pup")
    family = Animal._meta.family
    assert family is not None and family is Puppy._meta.family and family.attribute == "_type"


def test_query_filters_by_the_subtree_of_discriminators() -> None:
    assert Animal.query().spec.where is None
    dog = Dog.query().spec.where
    assert isinstance(dog, In) and dog.path.parts == ("_type",) and list(dog.values) == ["Dog", "pup"]
    pup = Puppy.query().spec.where
    assert isinstance(pup, Compare) and pup.value == "pup"


def test_discriminator_is_not_a_field_so_input_cannot_forge_it() -> None:
    with pytest.raises(odm.ValidationError, match="_type: Unknown field"):
        Animal.from_dict({"name": "x", "_type": "Dog"})
    with pytest.raises(odm.ValidationError, match="bark: Unknown field"):
        Animal(name="x", bark="woof")  # a subclass's field is not the base's
    assert "_type" not in Dog(name="x").to_dict()


def test_two_subclasses_with_one_name_in_different_modules_clash() -> None:
    with pytest.raises(odm.ConfigError) as err:
        class Dog(Animal):  # noqa: F811 (another module's Dog)
            __module__ = "kennel.models"
    assert "Dog (kennel.models) and Dog (tests.unit.test_meta_inheritance) both store their items in 'Animal' with " \
        "the discriminator 'Dog'; give one of them another Meta.discriminator." in str(err.value)

    class OtherDog(Animal):
        __module__ = "kennel.models"
        __qualname__ = "Dog"

        class Meta:
            discriminator = "kennel.Dog"

    assert OtherDog._meta.discriminator == "kennel.Dog"


def test_a_class_defined_again_in_the_same_place_replaces_itself() -> None:
    def define() -> type[Model]:
        class Bird(Animal):
            wings = fields.Integer()

        return Bird

    first, second = define(), define()
    family = Animal._meta.family
    assert family is not None and family.by_value["Bird"] is second and first is not second


def test_a_member_field_retyping_a_base_field_is_refused() -> None:
    with pytest.raises(odm.ConfigError, match=r"Snake\.legs redefines Animal\.legs as a String stored as 'legs' "
                                              r"\(it is a Integer stored as 'legs' there\)"):
        class Snake(Animal):
            legs = fields.String()

    class Spider(Animal):
        legs = fields.Integer(required=True)  # same type and stored name: allowed

    assert Spider._fields["legs"].required


def test_sibling_fields_sharing_a_stored_name_keep_one_type() -> None:
    class Fish(Animal):
        fins = fields.Integer()

    with pytest.raises(odm.ConfigError, match=r"Whale\.fins is a String stored as 'fins', but Fish stores a Integer"):
        class Whale(Animal):
            fins = fields.String()

    with pytest.raises(odm.ConfigError, match=r"Shark\.count is a String stored as 'fins'"):
        class Shark(Animal):
            count = fields.String(data_key="fins")

    class Eel(Animal):
        fins = fields.Integer()  # the same type: one attribute, readable by both

    assert Eel._fields["fins"].kind == "int"


def test_a_field_stored_as_the_discriminator_is_refused() -> None:
    with pytest.raises(odm.ConfigError, match=r"Cow\.kind is stored as '_type', which Animal uses for each item's type"):
        class Cow(Animal):
            kind = fields.String(data_key="_type")
    with pytest.raises(odm.ConfigError, match=r"Thing\.kind is stored as 'kind'"):
        class Thing(Model):
            kind = fields.String()

            class Meta:
                polymorphic = True
                discriminator_attribute = "kind"


@pytest.mark.parametrize("attribute", ["$t", "a.b", "_id", ""])
def test_discriminator_attribute_follows_the_name_rule(attribute: str) -> None:
    with pytest.raises(odm.ConfigError, match="discriminator_attribute cannot be used"):
        class Thing(Model):
            class Meta:
                polymorphic = True
                discriminator_attribute = attribute


@pytest.mark.parametrize("value", ["", 3, "a\x00b"])
def test_discriminator_value_must_be_text(value: object) -> None:
    with pytest.raises(odm.ConfigError, match="Meta.discriminator must be a non-empty string"):
        class Frog(Animal):
            class Meta:
                discriminator = value


def test_a_member_sets_no_table_options() -> None:
    with pytest.raises(odm.ConfigError, match=r"Horse\.Meta sets name, version_field, but Horse stores its items "
                                              r"in Animal's table.*only Meta\.discriminator and Meta\.indexes"):
        class Horse(Animal):
            mane = fields.String()

            class Meta:
                name = "horses"
                version_field = "mane"
                indexes = ["mane"]  # allowed: added to Animal's table
    with pytest.raises(odm.ConfigError, match=r"Pony\.Meta\.indexes\[0\] names 'hooves', which is not a field of Pony"):
        class Pony(Animal):
            mane = fields.String()

            class Meta:
                indexes = ["hooves"]


def test_discriminator_options_need_a_polymorphic_model() -> None:
    with pytest.raises(odm.ConfigError, match=r"Plain\.Meta\.discriminator only applies to a polymorphic model"):
        class Plain(Model):
            class Meta:
                discriminator = "p"
    with pytest.raises(odm.ConfigError, match=r"polymorphic must be True or False"):
        class Odd(Model):
            class Meta:
                polymorphic = "yes"


def test_polymorphic_is_not_abstract_and_not_inherited_from_an_abstract_base() -> None:
    with pytest.raises(odm.ConfigError, match=r"Pet\.Meta\.polymorphic cannot be combined with abstract"):
        class Pet(Model):
            class Meta:
                abstract = True
                polymorphic = True

    class Named(Model):
        name = fields.String()

        class Meta:
            abstract = True
            discriminator_attribute = None

    class Plain(Named):
        pass

    assert Plain._meta.family is None


def test_registering_a_member_binds_the_whole_family(tmp_path: Path) -> None:
    class Zoo(Model):
        class Meta:
            polymorphic = True

    class Lion(Zoo):
        mane = fields.String()

    with odm.Registry("sqlite", path=str(tmp_path / "z.db")) as registry:
        assert registry.register(Lion) is Lion
        assert registry.models == [Zoo]
        assert Zoo._odm_binding is not None and Lion._odm_binding is not None

        class Tiger(Zoo):  # defined after the registration: bound at once
            stripes = fields.Integer()

        assert Tiger._odm_binding is not None and Tiger._odm_binding.repo is Zoo._bound().repo
    with pytest.raises(odm.ConfigError, match="closed"):
        Tiger.query().count()


def _doc_blocks(section: str) -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in body.split("```python\n")[1:]]


def test_the_documented_inheritance_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _doc_blocks("Inheritance")
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "docs/models.md", "exec"), {"__name__": "docs_models"})  # noqa: S102
    assert capsys.readouterr().out == "Invalid Animal: _type: Unknown field.\n"
