"""Queries DynamoDB used to refuse while other backends answer: every backend must give the same answer.

Issue 9, items 1-3: ordering comparisons on Booleans, equality with "" on key attributes,
and number query values outside DynamoDB's range. Each test runs on every backend (the
shared ``target`` fixture) and asserts the same items everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

import odm
from odm import Model, fields


class Item(Model):
    pk = fields.String(required=True)
    sk = fields.Integer(required=True)
    flag = fields.Boolean()
    g = fields.String()
    lk = fields.String()
    f = fields.Float()
    d = fields.Decimal()
    nums = fields.List(fields.Float())

    class Meta:
        name = "conf_dyn_items"
        hash_key = "pk"
        range_key = "sk"
        gsi = {"by_g": {"hash_key": "g", "range_key": "sk"}}
        lsi = {"by_lk": {"range_key": "lk"}}


class Strict(Model):
    """No Scan allowed on DynamoDB: a query must name a hash key."""

    pk = fields.String(required=True)
    n = fields.Integer()

    class Meta:
        name = "conf_dyn_strict"
        hash_key = "pk"
        allow_scan = False


Keys = Callable[..., list[tuple[str, int]]]


def keys(q: odm.Query[Item]) -> list[tuple[str, int]]:
    return sorted((i.pk, i.sk) for i in q)


@pytest.fixture
def flags(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    reg = make_registry(Item)
    Item.insert_many([Item(pk="a", sk=1, flag=True, g="x", lk="l1"), Item(pk="a", sk=2, flag=False, g="x", lk="l2"),
                      Item(pk="b", sk=3)])
    return reg


# -- 1. ordering comparisons on a Boolean field (False < True) ---------------------------------------------


def test_boolean_ordering_comparisons(flags: odm.Registry) -> None:
    assert keys(Item.query(Item.flag >= True)) == [("a", 1)]
    assert keys(Item.query(Item.flag > False)) == [("a", 1)]
    assert keys(Item.query(Item.flag < True)) == [("a", 2)]
    assert keys(Item.query(Item.flag <= False)) == [("a", 2)]
    assert keys(Item.query(Item.flag <= True)) == [("a", 1), ("a", 2)]
    assert keys(Item.query(Item.flag >= False)) == [("a", 1), ("a", 2)]
    assert keys(Item.query(Item.flag > True)) == []
    assert keys(Item.query(Item.flag < False)) == []
    # Missing never matches an ordering comparison; its negation does.
    assert keys(Item.query(~(Item.flag < True))) == [("a", 1), ("b", 3)]
    assert Item.query(Item.flag > False).count() == 1
    assert keys(Item.query(Item.pk == "a", Item.flag < True)) == [("a", 2)]
    assert keys(Item.query((Item.flag > False) | (Item.sk == 3))) == [("a", 1), ("b", 3)]


def test_boolean_between(flags: odm.Registry) -> None:
    assert keys(Item.query(Item.flag.between(False, False))) == [("a", 2)]
    assert keys(Item.query(Item.flag.between(True, True))) == [("a", 1)]
    assert keys(Item.query(Item.flag.between(False, True))) == [("a", 1), ("a", 2)]
    # Swapped bounds match nothing, as a number or string between does.
    assert keys(Item.query(Item.flag.between(True, False))) == []
    assert keys(Item.query(~Item.flag.between(True, False))) == [("a", 1), ("a", 2), ("b", 3)]
    assert Item.query(Item.pk == "a", Item.flag.between(False, False)).count() == 1


def test_boolean_ordering_in_write_conditions(flags: odm.Registry) -> None:
    low = Item.get("a", 2)
    low.g = "changed"
    low.save(condition=Item.flag < True)
    assert Item.get("a", 2).g == "changed"
    high = Item.get("a", 1)
    with pytest.raises(odm.ConditionFailed):
        high.save(condition=Item.flag < True)
    missing = Item.get("b", 3)
    with pytest.raises(odm.ConditionFailed):
        missing.save(condition=Item.flag.between(False, True))
    high.update(condition=Item.flag >= True, g="up")
    assert Item.get("a", 1).g == "up"
    with pytest.raises(odm.ConditionFailed):
        Item.get("a", 2).delete(condition=Item.flag > False)
    assert Item.query(Item.flag <= False).delete() == 1
    assert keys(Item.query()) == [("a", 1), ("b", 3)]


# -- 2. "" on key attributes (no stored item can have it on DynamoDB; none does here) ---------------------


def test_empty_string_on_keys_matches_nothing(flags: odm.Registry) -> None:
    for cond in (Item.pk == "", Item.g == "", Item.pk.in_([""])):
        q = Item.query(cond)
        assert keys(q) == []
        assert q.count() == 0
        assert not q.exists()
        assert q.first() is None
        assert q.page(size=5).items == []
        assert q.page(size=5).next_cursor is None
    assert keys(Item.query(Item.pk == "", Item.sk == 1)) == []
    assert keys(Item.query(Item.pk == "a", Item.lk == "")) == []
    assert keys(Item.query(Item.g == "", Item.sk >= 1)) == []
    assert Item.query(Item.pk == "").delete() == 0
    assert keys(Item.query()) == [("a", 1), ("a", 2), ("b", 3)]


def test_empty_string_on_keys_in_lists_ranges_and_negations(flags: odm.Registry) -> None:
    # What is left of an in_ list serves as the key condition (so the order by the range key can run).
    assert [(i.pk, i.sk) for i in Item.query(Item.pk.in_(["", "a"])).order_by(-Item.sk)] == [("a", 2), ("a", 1)]
    assert list(Item.query(Item.pk == "").order_by(Item.g)) == []
    # Every stored key is above "".
    assert keys(Item.query(Item.pk == "a", Item.lk > "")) == [("a", 1), ("a", 2)]
    assert keys(Item.query(Item.pk == "a", Item.lk >= "")) == [("a", 1), ("a", 2)]
    assert keys(Item.query(Item.pk == "a", Item.lk.between("", "l1"))) == [("a", 1)]
    assert keys(Item.query(Item.pk == "a", Item.lk.startswith(""))) == [("a", 1), ("a", 2)]
    assert keys(Item.query(Item.pk == "a", Item.lk <= "")) == []
    assert keys(Item.query(Item.pk == "a", Item.lk.between("l1", ""))) == []
    assert keys(Item.query(Item.g > "")) == [("a", 1), ("a", 2)]
    assert keys(Item.query(Item.pk.in_(["", "a"]))) == [("a", 1), ("a", 2)]
    assert keys(Item.query(Item.pk != "")) == [("a", 1), ("a", 2), ("b", 3)]
    assert keys(Item.query(Item.pk.not_in(["", "b"]))) == [("a", 1), ("a", 2)]
    assert keys(Item.query(Item.g != "")) == [("a", 1), ("a", 2), ("b", 3)]
    assert keys(Item.query((Item.pk == "") | (Item.sk == 3))) == [("b", 3)]
    assert keys(Item.query(Item.pk == "a", Item.lk.in_(["", "l2"]))) == [("a", 2)]
    assert Item.query(Item.pk.in_(["", "b"])).count() == 1


def test_empty_string_key_gets(flags: odm.Registry) -> None:
    assert Item.get_or_none("", 1) is None
    with pytest.raises(odm.NotFound):
        Item.get("", 1)
    assert [(i.pk, i.sk) for i in Item.batch_get([("", 1), ("a", 1), ("", 2)])] == [("a", 1)]
    assert Item.batch_get([("", 1)]) == []


def test_empty_string_key_without_scan(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Strict)
    Strict(pk="a", n=1).save()
    assert list(Strict.query(Strict.pk == "")) == []
    assert Strict.query(Strict.pk == "").count() == 0
    assert Strict.get_or_none("") is None
    assert [s.pk for s in Strict.query(Strict.pk.in_(["", "a"]))] == ["a"]


# -- 3. number query values outside DynamoDB's range ----------------------------------------------------------

NUMBERS = {1: 0.0, 2: 1.5, 3: -2.5, 4: 1e-100, 5: -1e-100, 6: 1e125, 7: -1e125}


@pytest.fixture
def numbers(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    reg = make_registry(Item)
    Item.insert_many([Item(pk="n", sk=k, f=v, nums=[v]) for k, v in NUMBERS.items()] + [Item(pk="n", sk=8)])
    return reg


def sks(q: odm.Query[Item]) -> set[int]:
    return {i.sk for i in q}


def where(test: Callable[[float], bool]) -> set[int]:
    return {k for k, v in NUMBERS.items() if test(v)}


@pytest.mark.parametrize("value", [1e-200, -1e-200, 1e300, -1e300, 5e-324, 1.7e308])
def test_float_comparisons_beyond_the_number_range(numbers: odm.Registry, value: float) -> None:
    assert sks(Item.query(Item.f > value)) == where(lambda v: v > value)
    assert sks(Item.query(Item.f >= value)) == where(lambda v: v >= value)
    assert sks(Item.query(Item.f < value)) == where(lambda v: v < value)
    assert sks(Item.query(Item.f <= value)) == where(lambda v: v <= value)
    assert sks(Item.query(Item.f == value)) == set()
    assert sks(Item.query(Item.f != value)) == set(range(1, 9))
    assert Item.query(Item.f < value).count() == len(where(lambda v: v < value))
    assert sks(Item.query(Item.pk == "n", Item.f > value)) == where(lambda v: v > value)
    assert sks(Item.query(Item.f.in_([value, 1.5]))) == {2}
    assert sks(Item.query(Item.f.not_in([value]))) == set(range(1, 9))
    assert sks(Item.query(Item.nums.contains(value))) == set()
    assert sks(Item.query(Item.f.between(value, 1e300))) == where(lambda v: value <= v)
    assert sks(Item.query(Item.f.between(-1e300, value))) == where(lambda v: v <= value)
    assert sks(Item.query(Item.f.between(value, 1.5))) == where(lambda v: value <= v <= 1.5)
    assert sks(Item.query(Item.f.between(1e300, value))) == (set() if value < 1e300 else where(lambda v: v == 1e300))


DECIMALS = {1: Decimal("1"), 2: Decimal("1.5"), 3: Decimal("-2"), 4: Decimal("1E-100"), 5: Decimal("2E+120")}


@pytest.fixture
def decimals(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    reg = make_registry(Item)
    Item.insert_many([Item(pk="d", sk=k, d=v) for k, v in DECIMALS.items()])
    return reg


def check_decimal_answers(value: Decimal) -> None:
    above = {k for k, v in DECIMALS.items() if v > value}
    assert sks(Item.query(Item.d > value)) == above
    assert sks(Item.query(Item.d >= value)) == above
    assert sks(Item.query(Item.d < value)) == set(DECIMALS) - above
    assert sks(Item.query(Item.d <= value)) == set(DECIMALS) - above
    assert sks(Item.query(Item.d == value)) == set()
    assert sks(Item.query(Item.d != value)) == set(DECIMALS)
    assert Item.query(Item.d.in_([value, Decimal("1.5")])).count() == 1
    assert sks(Item.query(Item.d.between(value, Decimal("1E+121")))) == above
    assert sks(Item.query(Item.d.between(Decimal("-1E+121"), value))) == set(DECIMALS) - above


@pytest.mark.parametrize("value", ["1E-200", "-1E-200", "1E+200", "-9E+300", "1E-6000"])
def test_decimal_query_values_beyond_the_number_range(decimals: odm.Registry, value: str) -> None:
    check_decimal_answers(Decimal(value))


MANY = Decimal("1.2345678901234567890123456789012345678901")  # 41 significant digits
THIRTY_EIGHT = Decimal("1.234567890123456789012345678901234567")


@pytest.mark.parametrize("value", [MANY, -MANY, MANY.scaleb(125), -MANY.scaleb(-131)])
def test_decimal_query_values_beyond_38_digits(decimals: odm.Registry, value: Decimal) -> None:
    """Answered exactly where 38-digit Decimals are stored; a backend holding fewer may refuse (QueryError)."""
    try:
        Item(pk="p", sk=0, d=THIRTY_EIGHT).save()
        Item.get("p", 0).delete()
        stores_38 = True
    except odm.ValidationError:
        stores_38 = False
    try:
        check_decimal_answers(value)
        assert sks(Item.query(Item.d.between(MANY, Decimal("1.5")))) == {2}
    except odm.QueryError:
        if stores_38:
            raise


def test_number_range_in_write_conditions(numbers: odm.Registry) -> None:
    item = Item.get("n", 4)  # 1e-100
    item.save(condition=Item.f > 1e-200)
    with pytest.raises(odm.ConditionFailed):
        item.save(condition=Item.f < 1e-200)
    with pytest.raises(odm.ConditionFailed):
        item.save(condition=Item.f == 1e300)
    item.save(condition=(Item.f != 1e300) & (Item.f < 1e300) & Item.f.between(-1e300, 1e-99))
    item.update(condition=Item.f.in_([1e300, 1e-100]), g="hit")
    assert Item.get("n", 4).g == "hit"
    assert Item.query(Item.f < -1e-200).delete() == 3
    assert sks(Item.query(Item.pk == "n")) == {1, 2, 4, 6, 8}


def test_largest_float_below_the_limit_round_trips(make_registry: Callable[..., odm.Registry]) -> None:
    """9.999999999999999e125 is the float 1e126 (just below DynamoDB's limit in exact value)."""
    make_registry(Item)
    big = 9.999999999999999e125
    Item(pk="big", sk=1, f=big, nums=[big, -big]).save()
    back = Item.get("big", 1)
    assert back.f == big and back.nums == [big, -big]
    assert sks(Item.query(Item.f == big)) == {1}
    assert sks(Item.query(Item.f >= 9e125)) == {1}
    assert sks(Item.query(Item.nums.contains(-big))) == {1}


def test_numbers_a_backend_cannot_store_are_refused_before_writing(make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(Item)
    features = reg.backend.features
    for value in (1e300, -1e300, 1e-200, -5e-324):
        storable = features.min_number <= abs(value) <= features.max_number
        obj = Item(pk="r", sk=1, f=value)
        if storable:
            obj.save()
            assert Item.get("r", 1).f == value
            Item.get("r", 1).delete()
        else:
            with pytest.raises(odm.ValidationError) as err:
                obj.save()
            assert "f" in str(err.value)
            assert Item.get_or_none("r", 1) is None
    for dec in (Decimal("1E+200"), Decimal("-1E-150")):
        obj = Item(pk="r", sk=2, d=dec)
        if features.min_number <= abs(dec) <= features.max_number:
            obj.save()
            assert Item.get("r", 2).d == dec
        else:
            with pytest.raises(odm.ValidationError):
                obj.save()
            assert Item.get_or_none("r", 2) is None
