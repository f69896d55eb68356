"""Decimals compare, order, page and stay unique exactly, with all their digits, on every backend.

SQLite reads JSON numbers as doubles (15-17 significant digits); before the fix its queries on
Decimals differing beyond that answered as if they were equal. Every answer here is checked
against Python's own Decimal comparison of the same data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

import odm
from odm import Filter, Index, Model, fields

A = D("12345678901234567890.123456789")
VALUES = [
    A, D("12345678901234567890.123456788"), D("12345678901234567890.12345679"),
    D("-12345678901234567890.123456789"), D("-12345678901234567890.123456788"), D("-12345678901234567890.12345679"),
    D("1E-100"), D("0"), D("-1E-100"), D("0.1"), D("0.1000000000000000001"), D("0.09999999999999999999"),
    D("9999999999999999999999999999999999"), D("-9999999999999999999999999999999998"),
    D("1.2"), D("1.23"), D("-1.2"), D("-1.23"), D("9007199254740993"),  # 2**53 + 1: an exact SQL integer
]
PROBES = [*VALUES, D("12345678901234567890.1234567895"), D("1E-101"), D("0.10000000000000000005"), D("1.200"),
          D("9007199254740992.5")]


class Amount(Model):
    g = fields.String(required=True)
    amount = fields.Decimal(required=True)
    other = fields.Decimal()
    many = fields.List(fields.Decimal())

    class Meta:
        name = "suite_dec_amounts"
        hash_key = "g"
        range_key = "amount"


class Priced(Model):
    code = fields.String(required=True)
    price = fields.Decimal()

    class Meta:
        name = "suite_dec_priced"
        hash_key = "code"
        indexes = [Index("price", unique=True)]


@pytest.fixture
def amounts(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    reg = make_registry(Amount)
    Amount.insert_many([Amount(g="x", amount=v, other=v, many=[D("7"), v]) for v in VALUES])
    return reg


def _got(query: Any) -> list[D]:
    return sorted(a.amount for a in query)


OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def test_comparisons_are_exact_on_fields_and_range_keys(amounts: odm.Registry) -> None:
    for probe in PROBES:
        for name, op in OPS.items():
            want = sorted(v for v in VALUES if op(v, probe))
            assert _got(Amount.query(op(Amount.other, probe))) == want, f"other {name} {probe}"
            assert _got(Amount.query(Amount.g == "x", op(Amount.amount, probe))) == want, f"amount {name} {probe}"
        assert Amount.query(Amount.other == probe).count() == sum(v == probe for v in VALUES)
        assert _got(Amount.query(Amount.many.contains(probe))) == sorted(v for v in VALUES if v == probe), probe


def test_between_and_in_are_exact(amounts: odm.Registry) -> None:
    bounds = [(A, A), (D("12345678901234567890.123456788"), A), (D("-1E-100"), D("1E-100")),
              (D("0.1"), D("0.1000000000000000001")), (D("-12345678901234567890.123456789"), D("-1.2")), (D("1E-101"), D("0.1"))]
    for low, high in bounds:
        want = sorted(v for v in VALUES if low <= v <= high)
        assert _got(Amount.query(Amount.other.between(low, high))) == want, (low, high)
        assert _got(Amount.query(Amount.g == "x", Amount.amount.between(low, high))) == want, (low, high)
    for values in ([A], [D("12345678901234567890.1234567895"), D("0.1")], [D("1E-101"), D("-1.23"), D("1.200")]):
        assert _got(Amount.query(Amount.other.in_(values))) == sorted(v for v in VALUES if v in values), values
        assert _got(Amount.query(Amount.other.not_in(values))) == sorted(v for v in VALUES if v not in values), values


def test_order_by_and_pages_follow_every_digit(amounts: odm.Registry) -> None:
    ascending = sorted(VALUES)
    query = Amount.query(Amount.g == "x")
    assert [a.amount for a in query.order_by(Amount.amount)] == ascending
    assert [a.amount for a in query.order_by(-Amount.amount)] == ascending[::-1]
    if amounts.backend.features.supports_arbitrary_order:
        assert [a.other for a in Amount.query().order_by(Amount.other)] == ascending
        assert [a.other for a in Amount.query().order_by(-Amount.other)] == ascending[::-1]
    for descending in (False, True):
        seen: list[D] = []
        cursor = None
        while True:
            page = query.order_by(-Amount.amount if descending else Amount.amount).page(size=4, cursor=cursor)
            seen += [a.amount for a in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == (ascending[::-1] if descending else ascending)


def test_unique_index_tells_many_digit_decimals_apart(make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(Priced)
    if not reg.backend.features.supports_unique_indexes:
        pytest.skip("this backend does not enforce unique indexes (features.supports_unique_indexes)")
    # 27 digits: the MongoDB test server (SecantusDB 0.7) keys its unique indexes on 28 digits.
    wide = D("1234567890123456789.12345678")
    Priced.create(code="a", price=wide)
    Priced.create(code="b", price=D("1234567890123456789.12345677"))  # refused as a duplicate before the fix
    Priced.create(code="c", price=D("1.5"))
    with pytest.raises(odm.DuplicateKey):
        Priced.create(code="d", price=D("1.50"))  # the same number
    assert sorted(p.code for p in Priced.query(Priced.price == wide)) == ["a"]
    assert Priced.query().count() == 3


def test_conditions_on_writes_are_exact(amounts: odm.Registry) -> None:
    item = Amount.get("x", A)
    with pytest.raises(odm.ConditionFailed):
        item.save(condition=Amount.other == D("12345678901234567890.123456788"))
    item.save(condition=Amount.other > D("12345678901234567890.123456788"))


def test_go_layer_decimal_values_match_exactly(target: Any) -> None:
    reg = target.registry()
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("decimals", {"name": "go_decimals", "hashKey": "id", "hashKeyType": "S"})
    try:
        for i, value in enumerate(VALUES):
            repo.save({"id": f"i{i}", "v": value})
        repo.save({"id": "text", "v": "12345678901234567890.123456789"})
        for probe in PROBES:
            want = sorted(f"i{i}" for i, v in enumerate(VALUES) if v == probe)
            assert sorted(d["id"] for d in repo.get_all({"v": probe})) == want, probe
        both = [A, D("0.1000000000000000001")]
        got = sorted(d["id"] for d in repo.get_all(Filter().match_any("v", both)))
        assert got == sorted(f"i{i}" for i, v in enumerate(VALUES) if v in both)
    finally:
        repo.delete_all()
        backend.shutdown()


def test_sqlite_decimal_indexes_serve_queries(tmp_path: Path) -> None:
    """Decimal fields are indexed on the exact key expression the queries use (any file connection)."""
    path = tmp_path / "d.db"
    reg = odm.Registry("sqlite", path=str(path))
    reg.register(Priced)
    reg.sync()
    Priced.create(code="a", price=A)
    Priced.create(code="b", price=D("12345678901234567890.123456788"))  # 29 digits, unique apart
    with pytest.raises(odm.DuplicateKey):
        Priced.create(code="c", price=D("12345678901234567890.1234567890"))
    for query in (Priced.query(Priced.price == A), Priced.query(Priced.price > D("1")),
                  Priced.query(Priced.price.between(D("1"), A)), Priced.query().order_by(Priced.price)):
        plan = query.explain()["plan"]
        assert any("suite_dec_priced__ix_price_uniq" in step for step in plan), plan
    assert [p.code for p in Priced.query(Priced.price >= A)] == ["a"]  # streamed from a second connection
    reg.close()
    with closing(sqlite3.connect(path)) as conn:  # the index is an expression index on odm_dec
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'suite_dec_priced__ix_price_uniq'").fetchone()
    assert "odm_dec(" in sql


def test_decimals_of_thousands_of_digits_where_the_backend_declares_no_limit(make_registry: Callable[..., odm.Registry]) -> None:
    """9E+6144 is 6,145 integral digits: more than CPython's int()/str() takes (4,300), which once
    escaped as a raw ValueError on the SQL backends' JSON path. Stored, read, incremented exactly."""
    import decimal

    reg = make_registry(Priced)
    big = D("9E+6144")
    limit = reg.backend.features.max_decimal_digits
    if limit is not None:  # one significant digit: MongoDB's Decimal128 holds it, DynamoDB's range does not
        try:
            Priced.create(code="big", price=big)
        except odm.ValidationError as refused:
            assert "9.000E+6144 (6145 digits)" in str(refused) and len(str(refused)) < 300  # shown by its size
            assert Priced.get_or_none("big") is None
        else:
            assert Priced.get("big").price == big
        return  # an increment past the declared digits: see docs/semantics.md (known differences)
    item = Priced.create(code="big", price=big)
    assert Priced.get("big").price == big
    item.update(price=odm.inc(D("1E-6000")))
    exact = decimal.Context(prec=20000).add(big, D("1E-6000"))
    assert item.price == Priced.get("big").price == exact
    assert [p.code for p in Priced.query(Priced.price > 1)] == ["big"]
