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
    with pytest.raises(odm.ValidationError, match="Number out of range: adding"):
        big.update(f=odm.inc(most))
    assert Counter.get("big").f == most
    assert big.update(f=odm.inc(-most)).f == 0.0


def test_a_rounding_tie_cannot_pass_the_float_guard(make_registry: Callable[..., odm.Registry]) -> None:
    """``most - 1.5 ulp`` rounds up to ``most - ulp``: a naive bound lets the sum round to infinity."""
    import math

    reg = make_registry(Counter)
    most = reg.backend.features.max_number
    ulp = math.ulp(most)
    for sign in (1, -1):
        c = Counter.create(k=f"tie{sign}", f=sign * (most - ulp))
        with pytest.raises(odm.ValidationError, match="Number out of range: adding"):
            c.update(f=odm.inc(sign * 1.5 * ulp))
        assert Counter.get(f"tie{sign}").f == sign * (most - ulp)


def test_overflow_and_a_failing_condition_is_a_condition_failure(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Counter)
    c = Counter.create(k="both", n=2**63 - 1)
    with pytest.raises(odm.ConditionFailed) as info:
        c.update(n=odm.inc(1), condition=Counter.n < 0)
    assert not isinstance(info.value, odm.ValidationError)
    assert Counter.get("both").n == 2**63 - 1


def test_an_increment_on_a_deleted_item_is_not_found(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Counter)
    c = Counter.create(k="gone", n=2**63 - 1)
    Counter.get("gone").delete()
    with pytest.raises(odm.NotFound):
        c.update(n=odm.inc(1))


def test_a_user_condition_still_fails_as_a_condition(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Counter)
    c = Counter.create(k="c", n=1)
    with pytest.raises(odm.ConditionFailed):
        c.update(n=odm.inc(1), condition=Counter.n > 5)
    assert c.update(n=odm.inc(1), condition=Counter.n < 5).n == 2


def test_a_stale_version_with_an_overflow_is_a_concurrent_modification(make_registry: Callable[..., odm.Registry]) -> None:
    from .models import Account

    make_registry(Account)
    mine = Account.create(owner="o", balance=2**63 - 1)
    Account.get("o").update(balance=5)  # someone else moves the version on
    with pytest.raises(odm.ConcurrentModification):
        mine.update(balance=odm.inc(1))
    assert Account.get("o").balance == 5
