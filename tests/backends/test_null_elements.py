"""None inside a list or dict value: refused unless the element field allows it, then stored as is everywhere."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import odm
from odm import Model, fields


class Bag(Model):
    k = fields.String(required=True)
    tags = fields.List(fields.String())
    maybe = fields.List(fields.String(allow_none=True))
    counts = fields.Dict(values=fields.Integer(allow_none=True))

    class Meta:
        name = "suite_bags"
        hash_key = "k"


def test_null_elements_round_trip_and_match(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Bag)
    with pytest.raises(odm.ValidationError, match="may not be null"):
        Bag.create(k="bad", tags=["a", None])
    assert Bag.get_or_none("bad") is None
    Bag.create(k="a", maybe=[None, "a"], counts={"x": None, "y": 2})
    got = Bag.get("a")
    assert got.maybe == [None, "a"] and got.counts == {"x": None, "y": 2}
    assert [b.k for b in Bag.query(Bag.maybe == [None, "a"])] == ["a"]
    with pytest.raises(odm.QueryError, match="may not be null"):
        Bag.query(tags=[None])
