"""Golden tests: the shared expression tree compiled to MongoDB filter documents (no database)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("pymongo")

from bson.decimal128 import Decimal128  # noqa: E402

import odm  # noqa: E402
from odm import EmbeddedModel, Model, fields  # noqa: E402
from odm.backends.mongodb.codec import MongoCodec  # noqa: E402
from odm.backends.mongodb.compiler import END, MongoCompiler, and_filters  # noqa: E402
from odm.expressions.nodes import (  # noqa: E402
    And,
    Compare,
    Exists,
    In,
    Like,
    Node,
    Not,
    Or,
    Path,
    holds_for_missing,  # noqa: E402
)
from odm.fields import SortKey  # noqa: E402
from odm.golayer import definition_spec  # noqa: E402

UTC = dt.timezone.utc
NOT_ARRAY = {"$not": {"$type": "array"}}


class Loc(EmbeddedModel):
    city = fields.String()


class Doc(Model):
    pk = fields.String()
    n = fields.Integer()
    f = fields.Float()
    d = fields.Decimal()
    at = fields.DateTime()
    day = fields.Date()
    ref = fields.UUID()
    s = fields.String(data_key="S")
    tags = fields.List(fields.String())
    extra = fields.Dict()
    loc = fields.Embedded(Loc)

    class Meta:
        name = "mongo_docs"
        hash_key = "pk"


class Pair(Model):
    h = fields.String()
    r = fields.Integer()
    exp = fields.DateTime()

    class Meta:
        name = "mongo_pairs"
        hash_key = "h"
        range_key = "r"
        ttl = {"attribute": "exp", "seconds": 60}


def compile_(node: Node, model: type[Model] = Doc) -> Any:
    assert model._spec is not None
    return MongoCompiler(model._spec, MongoCodec()).compile(node)


@pytest.mark.parametrize(
    "node, expected",
    [
        (Doc.n == 3, {"n": {"$eq": 3}}),
        (Doc.n != 3, {"n": {"$ne": 3}}),
        (Doc.n < 3, {"n": {"$lt": 3}}),
        (Doc.n <= 3, {"n": {"$lte": 3}}),
        (Doc.n > 3, {"n": {"$gt": 3}}),
        (Doc.n >= 3, {"n": {"$gte": 3}}),
        (Doc.n.in_([1, 2]), {"n": {"$in": [1, 2]}}),
        (Doc.n.in_([]), {"n": {"$in": []}}),
        (Doc.n.not_in([1]), {"n": {"$nin": [1]}}),
        (Doc.n.between(1, 5), {"n": {"$gte": 1, "$lte": 5}}),
        (Doc.n.exists(), {"n": {"$ne": None}}),
        (Doc.n.not_exists(), {"n": {"$eq": None}}),
        (Doc.n == None, {"n": {"$eq": None}}),  # noqa: E711
        (Doc.n != None, {"n": {"$ne": None}}),  # noqa: E711
        (Doc.s.startswith("a.b*"), {"S": {"$regex": "^a\\.b\\*"}}),
        (Doc.s.contains("x+y"), {"S": {"$regex": "x\\+y"}}),
        (Doc.tags.contains("dev"), {"tags": {"$elemMatch": {"$eq": "dev"}}}),
        (Doc.loc.city == "Paris", {"loc.city": {"$eq": "Paris"}}),
        (Doc.pk == "k", {"_id": {"$eq": "k"}}),
        (Doc.pk.in_(["a", "b"]), {"_id": {"$in": ["a", "b"]}}),
        ((Doc.n > 1) & (Doc.s == "x"), {"n": {"$gt": 1}, "S": {"$eq": "x"}}),
        ((Doc.n > 1) & (Doc.n < 5), {"$and": [{"n": {"$gt": 1}}, {"n": {"$lt": 5}}]}),
        ((Doc.n > 1) | (Doc.s == "x"), {"$or": [{"n": {"$gt": 1}}, {"S": {"$eq": "x"}}]}),
        (~(Doc.n < 3), {"$nor": [{"n": {"$lt": 3}}]}),
        (~Doc.s.startswith("a"), {"$nor": [{"S": {"$regex": "^a"}}]}),
        (~((Doc.n > 1) | Doc.tags.contains("x")), {"$nor": [{"$or": [{"n": {"$gt": 1}},
                                                                       {"tags": {"$elemMatch": {"$eq": "x"}}}]}]}),
    ],
)
def test_operator_golden(node: Node, expected: Any) -> None:
    assert compile_(node) == expected


def test_ttl_attribute_compares_date_and_microsecond_remainder() -> None:
    at = dt.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    ms = at.replace(microsecond=123000)
    assert compile_(Pair.exp == at, Pair) == {"exp": ms, "_odm_ttl_us": {"$eq": 456}}
    assert compile_(Pair.exp < at, Pair) == {"$or": [{"exp": {"$lt": ms}}, {"exp": ms, "_odm_ttl_us": {"$not": {"$gte": 456}}}]}
    assert compile_(Pair.exp >= ms, Pair) == {"exp": {"$gte": ms}}  # a whole millisecond needs no remainder
    assert compile_(Pair.exp == ms, Pair) == {"exp": ms, "_odm_ttl_us": {"$in": [0, None]}}


def test_values_are_converted_to_stored_forms() -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    got = compile_(Doc.at >= when)
    assert got == {"at": {"$gte": "2024-05-01T10:00:00.000000Z"}}  # ISO text: every microsecond, as on SQL
    assert compile_(Doc.d > Decimal("10.5")) == {"d": {"$gt": Decimal128("10.5")}}
    assert compile_(Doc.day == dt.date(2024, 2, 29)) == {"day": {"$eq": "2024-02-29"}}
    ref = uuid.uuid4()
    assert compile_(Doc.ref == ref) == {"ref": {"$eq": str(ref)}}
    assert compile_(Doc.loc == Loc(city="Rome")) == {"loc": {"$eq": {"city": "Rome"}}}


def test_decimal_beyond_decimal128_is_a_query_error() -> None:
    with pytest.raises(odm.QueryError, match="d: .*34 significant digits"):
        compile_(Doc.d == Decimal("1." + "1" * 40))


def test_user_values_stay_data() -> None:
    # Strings starting with "$" and dicts of operators are operands of $eq: literal data.
    assert compile_(Doc.s == "$gt") == {"S": {"$eq": "$gt"}}
    assert compile_(Doc.extra == {"ne": None}) == {"extra": {"$eq": {"ne": None}}}
    assert compile_(Doc.extra != {"ne": None}) == {"extra": {"$ne": {"ne": None}}}
    # A "$" key inside a value is refused on every backend (no item can hold one), never sent.
    for query in (Doc.extra == {"$ne": None}, Doc.extra != {"$ne": None}, Doc.extra.in_([{"$gt": 1}])):
        with pytest.raises(odm.QueryError, match="starts with '\\$'"):
            compile_(query)
    # $in refuses dicts with nested "$" keys, so dict values become $eq alternatives.
    assert compile_(Doc.extra.in_([{"gt": 1}])) == {"$or": [{"extra": {"$eq": {"gt": 1}}}]}
    # Regex metacharacters in prefixes and substrings are escaped.
    assert compile_(Doc.s.startswith("^.*$")) == {"S": {"$regex": "^" + re.escape("^.*$")}}


@pytest.mark.parametrize("name", ["a.b", "$where", "", "x\x00"])
def test_unsafe_attribute_names_are_refused(name: str) -> None:
    with pytest.raises(odm.QueryError, match="cannot be queried on MongoDB"):
        compile_(Compare("eq", Path((name,)), 1))
    with pytest.raises(odm.QueryError):
        compile_(Exists(Path(("ok", name))))


def test_regex_objects_are_not_values() -> None:
    with pytest.raises(odm.QueryError, match="regular expression"):
        compile_(In(Path(("x",)), (re.compile("a.*"),)))


def test_like_is_an_anchored_escaped_dotall_regex() -> None:
    node = Like(Path(("email",)), "a\\%b_%.c")
    assert compile_(node) == {"email": {"$regex": "^a%b..*\\.c" + END, "$options": "s", **NOT_ARRAY}}
    pattern = compile_(node)["email"]["$regex"]
    assert re.match(pattern, "a%bX@x.c", re.S) and re.match(pattern, "a%b\n\n.c", re.S)
    assert not re.match(pattern, "a%bX@x.c\n", re.S) and not re.match(pattern, "A%bX@x.c", re.S)


def test_untyped_paths_do_not_match_arrays_for_scalars() -> None:
    # The Go layer's plain dicts: a scalar never equals an array holding it (as on SQL and DynamoDB).
    spec = definition_spec("things", {"name": "things", "hashKey": "email"})
    comp = MongoCompiler(spec, MongoCodec())
    assert comp.compile(Compare("eq", Path(("name",)), "Ann")) == {"name": {"$eq": "Ann", **NOT_ARRAY}}
    # A list equals only an equal array, never an array holding it.
    assert comp.compile(Compare("eq", Path(("tags",)), ["a"])) == {
        "$and": [{"tags": {"$eq": ["a"]}}, {"$expr": {"$eq": ["$tags", {"$literal": ["a"]}]}}]}
    assert comp.compile(In(Path(("name",)), ("a", "b"))) == {"name": {"$in": ["a", "b"], **NOT_ARRAY}}
    assert comp.compile(Not(Compare("eq", Path(("name",)), "Ann"))) == {"$nor": [{"name": {"$eq": "Ann", **NOT_ARRAY}}]}
    assert comp.compile(Compare("eq", Path(("email",), spec.hash_key.field), "a@b.c")) == {"_id": {"$eq": "a@b.c"}}


def test_hash_and_range_keys_stay_attributes() -> None:
    assert Pair._spec is not None
    comp = MongoCompiler(Pair._spec, MongoCodec())
    assert comp.compile((Pair.h == "s") & (Pair.r > 2)) == {"h": {"$eq": "s"}, "r": {"$gt": 2}}
    assert comp.key_id(("s", 2)) == {"h": "s", "r": 2}
    assert comp.sort((SortKey(Pair.r.path, True), SortKey(Pair.h.path, False))) == [("r", -1), ("h", 1)]


def test_sort_uses_id_for_a_hash_only_key() -> None:
    assert Doc._spec is not None
    comp = MongoCompiler(Doc._spec, MongoCodec())
    assert comp.sort((SortKey(Doc.n.path, False), SortKey(Doc.pk.path, False))) == [("n", 1), ("_id", 1)]


def test_and_filters_merges_or_nests() -> None:
    assert and_filters({}, {"a": 1}) == {"a": 1}
    assert and_filters({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    assert and_filters({"a": 1}, {"a": 2}) == {"$and": [{"a": 1}, {"a": 2}]}


def test_holds_for_missing_follows_two_valued_logic() -> None:
    assert not holds_for_missing(Doc.n == 1)
    assert holds_for_missing(Doc.n != 1)
    assert holds_for_missing(Doc.pk.not_exists())
    assert not holds_for_missing(And.of(Doc.pk.not_exists(), Doc.n > 1))
    assert holds_for_missing(Or.of(Doc.n > 1, Doc.n.not_in([2])))
