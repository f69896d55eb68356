"""A number reads back with the same spelling on every backend, and physical limits are refused up front.

Found by the conformance suite (issue 9): PostgreSQL and DynamoDB have no negative zero, DynamoDB
drops a Decimal's trailing zeros, PostgreSQL writes ``5.6E+9`` out as ``5600000000``. Every backend
now stores the one canonical form (docs/semantics.md, "Numbers"), so what one backend reads back,
all do. What a backend physically cannot store is declared in its features and refused with a
ValidationError before any request, leaving the stored item as it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

import odm
from odm import Model, fields


class Reading(Model):
    key = fields.String(required=True)
    x = fields.Float()
    d = fields.Decimal()
    ds = fields.List(fields.Decimal())
    extra = fields.Dict()
    code = fields.String()

    class Meta:
        name = "suite_canonical_numbers"
        hash_key = "key"
        indexes = ["code"]


@pytest.fixture
def reg(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    return make_registry(Reading)


def _spelled(value: D) -> tuple[int, tuple[int, ...], int | str]:
    return value.as_tuple()


def test_negative_zero_and_decimal_digits_read_back_alike(reg: odm.Registry) -> None:
    r = Reading.create(key="a", x=-0.0, d=D("1.10"), ds=[D("5.6E+9"), D("-0.000"), D("12.3400")],
                       extra={"z": -0.0, "d": D("2.50"), "e": D("1E+3"), "deep": [D("0.10"), 2.5, 3.0, 7]})
    # The instance already holds what every backend reads back.
    assert math.copysign(1, r.x) == 1.0
    got = Reading.get("a")
    assert math.copysign(1, got.x) == 1.0 and got.x == 0.0
    assert _spelled(got.d) == _spelled(D("1.1"))
    assert [_spelled(v) for v in got.ds] == [_spelled(D("5600000000")), _spelled(D("0")), _spelled(D("12.34"))]
    # Untyped numbers read back by value: an int when integral, else an exact Decimal.
    assert got.extra == {"z": 0, "d": D("2.5"), "e": 1000, "deep": [D("0.1"), D("2.5"), 3, 7]}
    assert [type(v) for v in (got.extra["z"], got.extra["d"], got.extra["e"], *got.extra["deep"])] == [
        int, D, int, D, D, int, int]
    assert _spelled(got.extra["d"]) == _spelled(D("2.5"))
    assert _spelled(got.extra["deep"][0]) == _spelled(D("0.1"))
    # Any spelling of the same number finds it.
    for probe in (D("1.1"), D("1.10"), D("1.1000"), D("11E-1")):
        assert Reading.query(Reading.d == probe).count() == 1


def test_untyped_numbers_in_the_go_layer(target: Any) -> None:
    backend = odm.Backend(target.name, target.registry().backend)
    repo = backend.define_repository("nums", {"name": "suite_canonical_go", "hashKey": "id", "hashKeyType": "S"})
    try:
        repo.save({"id": "a", "f": 2.5, "i": 3.0, "d": D("1.10"), "big": D("12345678901234567890.123456789"),
                   "z": -0.0, "n": [0.1, D("1E+2")]})
        got = repo.get_one({"id": "a"})
        assert got == {"id": "a", "f": D("2.5"), "i": 3, "d": D("1.1"), "big": D("12345678901234567890.123456789"),
                       "z": 0, "n": [D("0.1"), 100]}
        assert [type(got[k]) for k in ("f", "i", "d", "big", "z")] == [D, int, D, D, int]
        assert _spelled(got["d"]) == _spelled(D("1.1"))
        assert repo.get_one({"i": 3})["id"] == "a" and repo.get_one({"f": D("2.50")})["id"] == "a"
    finally:
        repo.delete_all()
        backend.shutdown()


def test_decimal_arithmetic_reads_back_canonical(reg: odm.Registry) -> None:
    r = Reading.create(key="a", d=D("1.05"))
    r.update(d=odm.inc(D("0.05")))  # 1.10 in decimal arithmetic on every server
    assert _spelled(r.d) == _spelled(D("1.1"))
    assert _spelled(Reading.get("a").d) == _spelled(D("1.1"))


def test_empty_string_in_an_index_key(reg: odm.Registry) -> None:
    Reading.create(key="a", code="x")
    if reg.backend.features.empty_string_index_keys:
        Reading.create(key="b", code="")
        assert Reading.get("b").code == ""
        assert [r.key for r in Reading.query(Reading.code == "")] == ["b"]
        Reading.get("a").update(code="")
        assert Reading.query(Reading.code == "").count() == 2
        return
    with pytest.raises(odm.ValidationError, match="empty string in 'code'") as info:
        Reading.create(key="b", code="")
    assert "code" in info.value.messages
    assert Reading.get_or_none("b") is None
    with pytest.raises(odm.ValidationError, match="empty string in 'code'"):
        Reading.get("a").update(code="")
    with pytest.raises(odm.ValidationError):
        Reading.insert_many([Reading(key="c", code="y"), Reading(key="d", code="")])
    assert Reading.get_or_none("d") is None
    assert Reading.get("a").code == "x"
    assert Reading.query(Reading.code == "").count() == 0  # no item can hold it: empty, not an error


@pytest.mark.parametrize("digits", [34, 36, 38])
def test_decimal_digits_up_to_the_declared_limit(reg: odm.Registry, digits: int) -> None:
    value = D("1." + "1" * (digits - 1))
    most = reg.backend.features.max_decimal_digits
    if most is None or digits <= most:
        Reading.create(key="a", d=value)
        assert _spelled(Reading.get("a").d) == _spelled(value)
        assert Reading.query(Reading.d == value).count() == 1
        return
    with pytest.raises(odm.ValidationError, match=f"at most {most} significant digits"):
        Reading.create(key="a", d=value)
    assert Reading.get_or_none("a") is None
    with pytest.raises(odm.QueryError):
        Reading.query(Reading.d == value).count()


def test_integral_untyped_numbers_beyond_64_bits_read_back_as_the_int_they_spell(reg: odm.Registry) -> None:
    """1e20 in a Dict reads back as 100000000000000000000 everywhere (SQLite once read it back as
    Decimal('1E+20'), the others as the int); a float's value is its shortest spelling, as for 2.5."""
    extra = {"a": 1e20, "b": -1e19, "c": 1.2345678901234568e22, "small": 3.0, "half": 2.5}
    Reading.create(key="big", extra=extra)
    got = Reading.get("big").extra
    assert got == {"a": 10**20, "b": -(10**19), "c": 12345678901234568000000, "small": 3, "half": D("2.5")}
    assert all(type(got[k]) is int for k in ("a", "b", "c", "small"))
