"""The fast Decimal128 reader (odm.backends.mongodb.codec.decimal_of) gives exactly what pymongo's
``to_decimal()`` gives: the same digits, exponent and sign, for every encoding and edge."""

from __future__ import annotations

import random

import pytest
from bson.decimal128 import Decimal128

from odm.backends.mongodb.codec import decimal_of

EDGES = ["0", "-0", "1234.56", "-1234.56", "1E+6144", "9.999999999999999999999999999999999E+6144", "1E-6176",
         "-0E-10", "0E+100", "NaN", "-NaN", "Infinity", "-Infinity", "123456789012345678901234567890.1234", "1.000",
         "100", "0.1", "-1E-6143"]


def _random(n: int) -> list[str]:
    rnd = random.Random(11)
    out = []
    for _ in range(n):
        digits = rnd.randint(1, 34)
        out.append(f"{rnd.choice(['', '-'])}{rnd.randint(0, 10**digits - 1)}E{rnd.randint(-6176, 6111)}")
    return out


@pytest.mark.parametrize("text", EDGES)
def test_edges_read_as_pymongo_reads_them(text: str) -> None:
    value = Decimal128(text)
    want, got = value.to_decimal(), decimal_of(value)
    assert (want.is_nan() and got.is_nan()) or (str(got) == str(want) and got.as_tuple() == want.as_tuple())


def test_random_values_read_as_pymongo_reads_them() -> None:
    for text in _random(5000):
        value = Decimal128(text)
        assert decimal_of(value).as_tuple() == value.to_decimal().as_tuple(), text


def test_non_canonical_coefficients_read_as_zero_like_pymongo() -> None:
    # A coefficient above 10**34 - 1 in the usual encoding: Decimal128 says it is 0.
    high = (6176 << 49) | ((1 << 49) - 1)
    value = Decimal128.from_bid((((1 << 64) - 1) | (high << 64)).to_bytes(16, "little"))
    assert decimal_of(value).as_tuple() == value.to_decimal().as_tuple()


def test_the_fast_writer_packs_what_pymongo_packs_and_refuses_what_it_refuses() -> None:
    import decimal

    import odm
    from odm.backends.mongodb.codec import to_decimal128

    rnd = random.Random(13)
    texts = ["0", "-0", "-0.0000", "1E+6145", "1E+6112", "1E-6177", "0E+7000", "9" * 34, "9" * 35, "1" + "0" * 40]
    texts += [f"{rnd.choice(['', '-'])}{rnd.randint(0, 10**rnd.randint(1, 36) - 1)}E{rnd.randint(-6200, 6200)}"
              for _ in range(5000)]
    for text in texts:
        value = decimal.Decimal(text)
        try:
            want: object = Decimal128(value).bid
        except (decimal.Inexact, decimal.Overflow, decimal.Underflow, decimal.InvalidOperation):
            want = "refused"
        try:
            got: object = to_decimal128(value).bid
        except odm.ValidationError:
            got = "refused"
        assert got == want, text
