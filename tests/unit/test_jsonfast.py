"""The SQL JSON encoder's C-speed path writes exactly what the exact writer writes."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from odm.backends.sql import jsonfast
from odm.fields import canonical_decimal


def exact(doc: object) -> str:
    out: list[str] = []
    jsonfast._dump_exact(doc, out)
    return "".join(out)


EDGES = ["0", "-0", "1", "-7", "0.1", "-12.5", "12.50", "1E+16", "1E-7", "1e-400", "9007199254740993",
         "0.30000000000000004", "123456789012345678901234567890.123456789", "NaN", "Infinity", "-Infinity", "sNaN"]


@pytest.mark.parametrize("text", EDGES)
def test_edges(text: str) -> None:
    value = Decimal(text)
    doc = {"n": value, "l": [value, {"k": value}], "s": "é\u2028", "f": 0.5, "i": 3}
    try:
        expected = exact(doc)
    except ArithmeticError as exc:  # the exact writer refuses it: so does the fast one
        with pytest.raises(type(exc)):
            jsonfast.dumps(doc)
        return
    assert jsonfast.dumps(doc) == expected


def test_random_decimals() -> None:
    rng = random.Random(11)
    fast = 0
    for _ in range(5000):
        value = Decimal(rng.randint(-10**rng.randint(1, 25), 10**rng.randint(1, 25))).scaleb(-rng.randint(0, 30))
        for v in (value, canonical_decimal(value), Decimal(repr(rng.uniform(-1e6, 1e6)))):
            assert jsonfast.dumps([v]) == exact([v])
            assert jsonfast.loads_exact(jsonfast.dumps([v])) == [v]
            fast += jsonfast.dumps([v]) == jsonfast._encode([float(v)])
    assert fast > 2500  # most Decimals take the C path


def test_other_types_still_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonfast.dumps({"x": object()})


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice([0, -1, 2**63 - 1, -(2**63), rng.randint(-10**12, 10**12)])
    if kind == 1:
        return rng.choice([0.0, -0.0, 1e-5, 1e16, 1e22, 5e-324, 1.7976931348623157e308, rng.uniform(-1e-3, 1e-3), rng.uniform(-1e20, 1e20)])
    if kind == 2:
        return Decimal(rng.randint(-10**20, 10**20)).scaleb(-rng.randint(0, 25))
    if kind == 3:
        return "".join(chr(rng.choice([0, 9, 10, 31, 34, 47, 92, 127, 233, 0x2028, 0x1F600, rng.randint(32, 0xD7FF)])) for _ in range(rng.randint(0, 8)))
    if kind == 4:
        return rng.choice([True, False, None])
    if kind == 5:
        return rng.choice(["", "$", "a.b", "x\x00y"])
    if kind in (6, 7):
        return {f"k{i}\"\\.{rng.randint(0, 9)}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def test_orjson_and_json_writers_store_the_same_values() -> None:
    """The fast writer (orjson) and the json module's give texts that read back alike: the
    same values, Decimals digit for digit (floats may differ only in how the exponent is spelt)."""
    rng = random.Random(5)
    for _ in range(3000):
        doc = {"v": _random_value(rng)}
        fast = jsonfast.dumps(doc)
        slow = jsonfast._encode(doc) if not _has_inexact(doc) else exact(doc)
        assert jsonfast.loads_exact(fast) == jsonfast.loads_exact(slow)
        assert [str(d) for d in _decimals(jsonfast.loads_exact(fast))] == [str(d) for d in _decimals(jsonfast.loads_exact(slow))]


def _decimals(value: object) -> list[Decimal]:
    if isinstance(value, Decimal):
        return [value]
    if isinstance(value, dict):
        return [d for v in value.values() for d in _decimals(v)]
    if isinstance(value, list):
        return [d for v in value for d in _decimals(v)]
    return []


def _has_inexact(doc: object) -> bool:
    try:
        jsonfast._encode(doc)
    except jsonfast._Inexact:
        return True
    return False


class Name(str):
    pass


@pytest.mark.parametrize("doc", [
    {"big": 2**64, "d": Decimal("1.5")},      # beyond 64 bits: orjson refuses, the json writer does not
    {"s": Name("x"), "n": 1},                  # a str subclass is written as the json module writes it
    {"d": Decimal("1E+5000")},                 # a Decimal beyond int()'s digit limit
], ids=["int-beyond-64-bits", "str-subclass", "huge-decimal"])
def test_what_orjson_refuses_is_written_by_the_json_writer(doc: dict[str, object]) -> None:
    assert jsonfast.loads_exact(jsonfast.dumps(doc)) == {k: (str(v) if isinstance(v, Name) else v) for k, v in doc.items()}


def test_lone_surrogate_is_refused_as_before() -> None:
    """orjson refuses a lone surrogate; the json writer then decides, as it always did."""
    assert jsonfast.dumps({"s": "\ud800"}) == jsonfast._encode({"s": "\ud800"})


def test_non_finite_decimals_never_reach_orjson() -> None:
    with pytest.raises(ArithmeticError):
        jsonfast.dumps({"d": Decimal("sNaN")})
