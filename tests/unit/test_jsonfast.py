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
