"""Hostile numbers cost time linear in their length; typos and stray arguments are errors, not silence."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

import odm
from odm import Model, fields


class Account(Model):
    email = fields.String(required=True)
    name = fields.String()
    age = fields.Integer()
    balance = fields.Decimal()
    score = fields.Float()

    class Meta:
        name = "hostile_accounts"
        hash_key = "email"


HUGE = ["1e1000000", "-1e1000000", "1e999999999", "9" * 200_000, "1E+19", "-9.3e18"]


@pytest.mark.parametrize("value", HUGE, ids=lambda v: v[:12])
def test_integer_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(odm.ValidationError) as info:
        Account(email="a", age=value)
    assert "out of range" in str(info.value)


def test_integer_range_edges_are_kept() -> None:
    assert Account(email="a", age="9.2e18").age == 9_200_000_000_000_000_000
    assert Account(email="a", age=Decimal("-9223372036854775808")).age == -(2**63)
    assert Account(email="a", age="0e1000000").age == 0


@pytest.mark.parametrize("value", ["1e7000", "-1e-7000", Decimal("1e999999999")], ids=str)
def test_decimal_exponent_beyond_every_backend_is_refused(value: object) -> None:
    with pytest.raises(odm.ValidationError, match="exponent"):
        Account(email="a", balance=value)


def test_query_values_out_of_range_are_query_errors() -> None:
    with pytest.raises(odm.QueryError, match="out of range"):
        Account.age == "1e300000"  # noqa: B015
    with pytest.raises(odm.QueryError, match="exponent"):
        Account.balance > "1e9999"  # noqa: B015


def test_hostile_numbers_do_not_hang() -> None:
    """Before the fix each conversion below took from seconds to hours (int() of a huge exponent).

    Run in a child process with a CPU limit: a regression is a killed child, not a slow suite.
    """
    code = textwrap.dedent("""
        import resource, odm
        from odm import Model, fields
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
        class T(Model):
            n = fields.Integer()
            d = fields.Decimal()
        for value in ["1e1000000", "1e300000", "-1e999999999", "1" + "0" * 1000000]:
            for name in ("n", "d"):
                try:
                    T(**{name: value})
                except odm.ValidationError:
                    pass
                try:
                    getattr(T, name) == value
                except odm.QueryError:
                    pass
        print("done")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "done"


def test_assigning_a_misspelled_attribute_names_the_close_field() -> None:
    acct = Account(email="a")
    with pytest.raises(AttributeError, match="Did you mean 'name'"):
        acct.nmae = "Ann"  # type: ignore[attr-defined]
    assert "nmae" not in acct.__dict__
    acct.name = "Ann"
    assert acct.name == "Ann"


def test_inc_with_a_non_number_is_a_query_error() -> None:
    for bad in ("1", None, True, [1]):
        with pytest.raises(odm.QueryError, match="takes a number"):
            odm.inc(bad)
    assert odm.inc(Decimal("1.5")).amount == Decimal("1.5")


def test_get_with_an_extra_key_value_on_a_hash_only_model() -> None:
    with odm.Registry("sqlite", path=":memory:") as reg:
        reg.register(Account)
        reg.sync()
        Account.create(email="a@x")
        with pytest.raises(odm.QueryError, match="only a hash key"):
            Account.get("a@x", "extra")
        with pytest.raises(odm.QueryError, match="only a hash key"):
            Account.get_or_none("a@x", 0)
        assert Account.get("a@x").email == "a@x"


def test_datetimes_that_overflow_utc_are_validation_errors() -> None:
    import datetime as dt

    class Stamp(Model):
        at = fields.DateTime()

    for value in (dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))), "0001-01-01T00:00:00+01:00",
                  dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-1)))):
        with pytest.raises(odm.ValidationError, match="Not a valid datetime"):
            Stamp(at=value)
        with pytest.raises(odm.QueryError):
            Stamp.at > value  # noqa: B015


def test_windows_beyond_64_bits_are_query_errors() -> None:
    with odm.Registry("sqlite", path=":memory:") as reg:
        reg.register(Account)
        reg.sync()
        Account.create(email="a@x")
        for call in (lambda: Account.query().limit(2**63), lambda: Account.query().offset(2**63),
                     lambda: Account.query().page(size=2**63), lambda: Account.query().page(size=0)):
            with pytest.raises(odm.QueryError, match="64-bit"):
                call()
        assert [a.email for a in Account.query().offset(2**63 - 1)] == []
        repo = odm.Backend("sqlite", reg.backend).define_repository("w", {"name": "hostile_window", "hashKey": "k"})
        with pytest.raises(odm.QueryError, match="64-bit"):
            repo.get_all({}, limit=2**64)


def test_none_inside_lists_and_sets() -> None:
    """Found by the fuzz suite: ``tags=[None]`` escaped as AttributeError from the codec."""

    class Bag(Model):
        tags = fields.List(fields.String())
        maybe = fields.List(fields.String(allow_none=True))
        counts = fields.Dict(values=fields.Integer(allow_none=True))
        labels = fields.Set(fields.String(allow_none=True))

        class Meta:
            name = "hostile_bags"

    with odm.Registry("sqlite", path=":memory:") as reg:
        reg.register(Bag)
        reg.sync()
        with pytest.raises(odm.ValidationError, match="may not be null"):
            Bag(tags=["a", None])
        with pytest.raises(odm.ValidationError, match="may not be null"):
            Bag(labels={"a", None})  # a set never holds None (DynamoDB cannot store it)
        with pytest.raises(odm.QueryError, match="may not be null"):
            Bag.query(tags=[None])
        bag = Bag.create(maybe=[None, "a"], counts={"x": None, "y": 2})
        got = Bag.get(bag.id)
        assert got.maybe == [None, "a"] and got.counts == {"x": None, "y": 2}
        assert Bag.query(Bag.maybe == [None, "a"]).count() == 1


def test_a_huge_value_in_a_refused_query_is_cut_in_the_message() -> None:
    class Sized(odm.Model):
        age = odm.fields.Integer()

    with pytest.raises(odm.QueryError, match=r"Cannot compare Sized\.age with 'x{10,}\.\.\. \(100002 characters\)") as refused:
        Sized.query(Sized.age == "x" * 100_000)
    assert len(str(refused.value)) < 300
    with pytest.raises(odm.QueryError, match=r"Cannot compare Sized\.age with 'old': Not a valid integer\.$"):
        Sized.query(age="old")
