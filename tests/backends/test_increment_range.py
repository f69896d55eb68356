"""An increment never leaves its field's range: refused before it lands, nothing changed, on every backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import odm
from odm import Model, fields


class Counter(Model):
    k = fields.String(required=True)
    n = fields.Integer()
    f = fields.Float()

    class Meta:
        name = "suite_counters"
        hash_key = "k"


def test_integer_increment_past_64_bits_is_refused(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Counter)
    top = Counter.create(k="top", n=2**63 - 2)
    top.update(n=odm.inc(1))
    assert Counter.get("top").n == 2**63 - 1
    with pytest.raises(odm.ValidationError, match="out of range") as info:
        top.update(n=odm.inc(1))
    assert "n" in info.value.messages
    assert Counter.get("top").n == 2**63 - 1
    bottom = Counter.create(k="bottom", n=-(2**63) + 1)
    with pytest.raises(odm.ValidationError, match="out of range"):
        bottom.update(n=odm.inc(-2))
    assert Counter.get("bottom").n == -(2**63) + 1
    fresh = Counter.create(k="fresh")
    assert fresh.update(n=odm.inc(2**63 - 1)).n == 2**63 - 1


def test_float_increment_past_the_largest_value_is_refused(make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(Counter)
    most = reg.backend.features.max_number
    big = Counter.create(k="big", f=most)
    with pytest.raises(odm.ValidationError, match="range"):  # DynamoDB's own words: "larger than supported range"
        big.update(f=odm.inc(most))
    assert Counter.get("big").f == most
    assert big.update(f=odm.inc(-most)).f == 0.0


def test_a_user_condition_still_fails_as_a_condition(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Counter)
    c = Counter.create(k="c", n=1)
    with pytest.raises(odm.ConditionFailed):
        c.update(n=odm.inc(1), condition=Counter.n > 5)
    assert c.update(n=odm.inc(1), condition=Counter.n < 5).n == 2
