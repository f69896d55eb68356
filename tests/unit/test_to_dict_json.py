"""``to_dict(json=True)``: values ``json.dumps`` takes as they are, and ``from_dict`` reads back."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from decimal import Decimal

import marshmallow
import pytest

import odm
from odm import EmbeddedModel, Model, fields


class Kind(enum.Enum):
    A = "a"
    B = 2


class Place(EmbeddedModel):
    city = fields.String(required=True)
    at = fields.DateTime()
    tags = fields.Set(fields.String())


class Everything(Model):
    name = fields.String(required=True)
    age = fields.Integer()
    score = fields.Float()
    ok = fields.Boolean()
    money = fields.Decimal()
    when = fields.DateTime()
    day = fields.Date()
    ref = fields.UUID()
    blob = fields.Bytes()
    kind = fields.Enum(Kind)
    items = fields.List(fields.Decimal())
    labels = fields.Set(fields.Integer())
    extra = fields.Dict()
    place = fields.Embedded(Place)
    places = fields.List(fields.Embedded(Place))

    class Meta:
        name = "json_everything"
        hash_key = "name"


WHEN = dt.datetime(2030, 5, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
REF = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _full() -> Everything:
    return Everything(
        name="n", age=2**62, score=1.5, ok=False, money=Decimal("12345678901234567890.000000001"), when=WHEN,
        day=dt.date(2024, 2, 29), ref=REF, blob=b"\x00\xff", kind=Kind.B, items=[Decimal("1.10"), Decimal("-3")],
        labels={10, 2, 33}, place={"city": "Paris", "at": WHEN, "tags": {"b", "a"}},
        places=[{"city": "Oslo"}],
        extra={"d": Decimal("0.1"), "t": WHEN, "b": b"x", "s": {"y", "x"}, "n": [1, None, {"u": REF}], "e": Kind.A})


def test_every_value_is_json_safe() -> None:
    out = _full().to_dict(json=True)
    assert json.loads(json.dumps(out)) == out  # no default= needed, nothing changes in the trip
    assert out == {
        "name": "n", "age": 2**62, "score": 1.5, "ok": False, "money": "12345678901234567890.000000001",
        "when": "2030-05-01T10:30:15.123456+00:00", "day": "2024-02-29", "ref": str(REF), "blob": "AP8=",
        "kind": 2, "items": ["1.1", "-3"], "labels": [2, 10, 33],
        "place": {"city": "Paris", "at": "2030-05-01T10:30:15.123456+00:00", "tags": ["a", "b"]},
        "places": [{"city": "Oslo"}],
        "extra": {"d": "0.1", "t": "2030-05-01T10:30:15.123456+00:00", "b": "eA==", "s": ["x", "y"],
                  "n": [1, None, {"u": str(REF)}], "e": "a"},
    }


def test_json_form_reads_back_as_the_same_instance() -> None:
    obj = _full()
    obj.extra = {"plain": [1, "two", True]}  # an untyped Dict keeps JSON types only
    again = Everything.from_dict(json.loads(json.dumps(obj.to_dict(json=True))))
    assert again == obj


def test_plain_to_dict_is_unchanged_and_unset_values_are_left_out() -> None:
    obj = Everything(name="n", when=WHEN, labels={1})
    assert obj.to_dict() == {"name": "n", "when": WHEN, "labels": {1}}
    assert obj.to_dict(json=True) == {"name": "n", "when": "2030-05-01T10:30:15.123456+00:00", "labels": [1]}


def test_mixed_kind_set_in_an_untyped_dict_still_dumps() -> None:
    # Only the Go layer's values reach an untyped Dict; a mixed set cannot be sorted by value, so it
    # is ordered by the converted values' text, still stable and JSON-safe.
    out = odm.model.json_value({"s": frozenset({1, "a"})})
    assert sorted(map(str, out["s"])) == ["1", "a"] and json.dumps(out)


def test_schema_returns_an_instance() -> None:
    schema = Everything.schema()
    assert isinstance(schema, marshmallow.Schema)
    assert isinstance(schema, Everything.schema_class())
    assert Everything.schema(many=True).many is True


@pytest.mark.parametrize("kwargs", [{"auto_now": True, "auto_now_add": True}, {"auto_now": True, "required": True},
                                    {"auto_now_add": True, "required": True}])
def test_auto_datetime_options_are_checked(kwargs: dict[str, bool]) -> None:
    with pytest.raises(odm.ConfigError):
        fields.DateTime(**kwargs)


def test_auto_now_in_an_embedded_model_is_refused() -> None:
    with pytest.raises(odm.ConfigError, match="Stamped.at: auto_now"):
        class Stamped(EmbeddedModel):
            at = fields.DateTime(auto_now=True)
