"""Fields and models without a database: validation, Meta parsing, schema, conversions."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

import marshmallow
import pytest

import odm
from odm import EmbeddedModel, Index, Model, fields


class Address(EmbeddedModel):
    street = fields.String()
    city = fields.String(required=True)


class Kind(enum.Enum):
    A = "a"
    B = "b"


class Person(Model):
    email = fields.String(required=True, validate=marshmallow.validate.Email())
    name = fields.String(data_key="fullName")
    age = fields.Integer(validate=marshmallow.validate.Range(min=0))
    score = fields.Float()
    active = fields.Boolean(default=True)
    tags = fields.List(fields.String())
    address = fields.Embedded(Address)
    balance = fields.Decimal()
    born = fields.Date()
    seen = fields.DateTime()
    ref = fields.UUID()
    blob = fields.Bytes()
    kind = fields.Enum(Kind)
    attrs = fields.Dict(values=fields.Integer())
    labels = fields.Set(fields.String())

    class Meta:
        name = "people"
        hash_key = "email"


def test_valid_input_is_converted() -> None:
    p = Person(email="a@b.co", fullName="Ann", age="31", score=1, active="yes", tags=("x",),
               address={"city": "Paris"}, balance=0.1, born="2020-02-29", seen="2024-01-01T10:00:00Z",
               ref=str(uuid.UUID(int=1)), blob="AAE=", kind="b", attrs={"x": "2"}, labels=["a", "a"])
    assert p.name == "Ann" and p.age == 31 and p.score == 1.0 and p.active is True and p.tags == ["x"]
    assert p.address == Address(city="Paris") and p.balance == Decimal("0.1") and p.born == dt.date(2020, 2, 29)
    assert p.seen == dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone.utc) and p.ref == uuid.UUID(int=1)
    assert p.blob == b"\x00\x01" and p.kind is Kind.B and p.attrs == {"x": 2} and p.labels == {"a"}


def test_errors_have_marshmallows_shape_and_messages() -> None:
    with pytest.raises(odm.ValidationError) as info:
        Person(email="nope", age=-1, score="x", active="maybe", tags=[1, "ok", 2], address={"street": "s"},
               born="2020-13-01", seen=dt.datetime(2020, 1, 1), ref="zzz", kind="c", attrs={"a": "b"}, bogus=1)
    m = info.value.messages
    assert m["email"] == ["Not a valid email address."]
    assert m["age"] == ["Must be greater than or equal to 0."]
    assert m["score"] == ["Not a valid number."]
    assert m["active"] == ["Not a valid boolean."]
    assert m["tags"] == {0: ["Not a valid string."], 2: ["Not a valid string."]}
    assert m["address"] == {"city": ["Missing data for required field."]}
    assert m["born"] == ["Not a valid date."]
    assert "aware" in m["seen"][0]
    assert m["ref"] == ["Not a valid UUID."]
    assert m["kind"] == ["Must be one of: a, b."]
    assert m["attrs"] == {"a": {"value": ["Not a valid integer."]}}
    assert m["bogus"] == ["Unknown field."]
    assert "Person" in str(info.value)


def test_required_and_null() -> None:
    with pytest.raises(odm.ValidationError) as info:
        Person()
    assert info.value.messages == {"email": ["Missing data for required field."]}
    with pytest.raises(odm.ValidationError) as info:
        Person(email=None)
    assert info.value.messages == {"email": ["Field may not be null."]}
    with pytest.raises(odm.ValidationError):
        Person(email="a@b.co", age=True)


def test_defaults_values_and_callables() -> None:
    class D(Model):
        n = fields.Integer(default=5)
        at = fields.DateTime(default=odm.utcnow)

    a, b = D(), D()
    assert a.n == 5 and isinstance(a.id, str) and a.id != b.id
    assert a.at.tzinfo is dt.timezone.utc


def test_to_dict_from_dict_round_trip() -> None:
    p = Person(email="a@b.co", name="Ann", address={"city": "X"}, kind=Kind.A)
    d = p.to_dict()
    assert d == {"email": "a@b.co", "name": "Ann", "active": True, "address": {"city": "X"}, "kind": Kind.A}
    assert Person.from_dict(d) == p
    with pytest.raises(odm.ValidationError):
        Person.from_dict({"email": 1})
    with pytest.raises(odm.ValidationError):
        Person.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]


def test_schema_is_a_marshmallow_schema() -> None:
    schema = Person.schema()
    assert isinstance(schema, marshmallow.Schema)
    loaded = schema.load({"email": "a@b.co", "fullName": "Ann", "age": 3, "address": {"city": "P"}})
    assert loaded["name"] == "Ann" and loaded["address"] == {"city": "P"}
    with pytest.raises(marshmallow.ValidationError) as info:
        schema.load({"email": "bad", "age": "x"})
    assert info.value.messages == {"email": ["Not a valid email address."], "age": ["Not a valid integer."]}


def test_validate_after_assignment() -> None:
    p = Person(email="a@b.co")
    p.age = "x"
    with pytest.raises(odm.ValidationError):
        p.validate()


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"hashkey": "a"}, "unknown option 'hashkey'"),
        ({"hash_key": "emial"}, "hash_key names 'emial', which is not a field of Bad; fields are: email"),
        ({"hashKey": "email", "hash_key": "name"}, "sets both"),
        ({"hash_key": "tags"}, "cannot be a key"),
        ({"range_key": "name"}, "needs a hash_key"),
        ({"hash_key": "email", "indexes": ["nope"]}, "indexes[0] names 'nope'"),
        ({"hash_key": "email", "indexes": [3]}, "must be a field name or odm.Index"),
        ({"hash_key": "email", "read_capacity": 5}, "must be given together"),
        ({"hash_key": "email", "read_capacity": -1, "write_capacity": 1}, "positive integer"),
        ({"hash_key": "email", "gsi": {"by_x": {"hash_key": "x"}}}, "gsi['by_x'].hash_key names 'x'"),
        ({"hash_key": "email", "gsi": {"by_n": {"hash_key": "name", "bogus": 1}}}, "unknown keys ['bogus']"),
        ({"hash_key": "email", "lsi": {"by_n": {"range_key": "name"}}}, "needs a range_key"),
        ({"hash_key": "email", "ttl": {"attribute": "name", "seconds": 5}}, "must be a top-level DateTime field"),
        ({"hash_key": "email", "ttl": {"attribute": "nope"}}, "ttl_attribute names 'nope'"),
        ({"hash_key": "email", "ttl": 60}, "ttl_attribute is required"),
        ({"hash_key": "email", "ttl": -3, "ttlAttribute": "at"}, "positive number"),
        ({"hash_key": "email", "version_field": "name"}, "Integer field"),
        ({"hash_key": "email", "gsi": {"g": {"hash_key": "name", "projection": "SOME"}}}, "projection"),
    ],
)
def test_bad_meta_is_config_error_naming_model_and_key(meta: dict[str, object], message: str) -> None:
    with pytest.raises(odm.ConfigError) as info:
        type("Bad", (Model,), {
            "email": fields.String(), "name": fields.String(), "tags": fields.List(fields.String()),
            "at": fields.DateTime(), "Meta": type("Meta", (), meta),
        })
    assert message in str(info.value) and "Bad.Meta" in str(info.value)


def test_seed_spellings_are_accepted() -> None:
    class Seed(Model):
        email = fields.String()
        name = fields.String()
        expires = fields.DateTime()

        class Meta:
            name = "seed"
            hashKey = "email"
            readCapacity = 5
            writeCapacity = 5
            GSI = {"name": {"readCapacity": 1, "writeCapacity": 1}}
            enableTtl = True
            ttlAttribute = "expires"
            ttl = 86400

    spec = Seed._spec
    assert spec is not None
    assert spec.hash_key.parts == ("email",) and spec.read_capacity == 5
    assert spec.secondary[0].hash_key is not None and spec.secondary[0].hash_key.parts == ("name",)
    assert (spec.ttl_attribute, spec.ttl_seconds) == ("expires", 86400)

    class Off(Model):
        expires = fields.DateTime()

        class Meta:
            enableTtl = False
            ttlAttribute = "expires"
            ttl = 10

    assert Off._spec is not None and Off._spec.ttl_attribute is None


def test_auto_id_and_index_specs() -> None:
    class Auto(Model):
        slug = fields.String()

        class Meta:
            indexes = [Index("slug", unique=True), "slug"]

    spec = Auto._spec
    assert spec is not None and spec.hash_key.parts == ("id",) and spec.name == "auto"
    assert [(i.unique, i.paths[0].parts) for i in spec.indexes] == [(True, ("slug",)), (False, ("slug",))]


def test_embedded_model_takes_no_meta() -> None:
    with pytest.raises(odm.ConfigError, match="embedded"):
        type("E", (EmbeddedModel,), {"Meta": type("Meta", (), {})})


def test_expressions_have_no_truth_value() -> None:
    with pytest.raises(TypeError, match="truth value"):
        bool(Person.age == 3)
    with pytest.raises(odm.QueryError):
        Person.age > None  # noqa: B015
    with pytest.raises(odm.QueryError, match="contains"):
        Person.age.contains(3)
    with pytest.raises(odm.QueryError, match="startswith"):
        Person.age.startswith("3")


def test_inc_requires_a_number() -> None:
    with pytest.raises(odm.QueryError):
        odm.inc("1")  # type: ignore[arg-type]
    assert repr(odm.inc(2)) == "odm.inc(2)"
