"""MongoDB-only behaviour against the real server: stored forms, injection safety, indexes, errors, explain."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import Index, Model, fields

from ..conftest import registries
from ..servers import free_port

pymongo = pytest.importorskip("pymongo")

UTC = dt.timezone.utc


class MgItem(Model):
    code = fields.String(required=True)
    name = fields.String()
    n = fields.Integer()
    slug = fields.String()
    price = fields.Decimal()
    blob = fields.Bytes()
    at = fields.DateTime()
    day = fields.Date()
    ref = fields.UUID()
    labels = fields.Set(fields.String())
    extra = fields.Dict()
    expires = fields.DateTime()

    class Meta:
        name = "mg_items"
        hash_key = "code"
        indexes = ["name", Index("n", "name"), Index("slug", unique=True)]
        ttl = {"attribute": "expires", "seconds": 3600}


class MgPair(Model):
    h = fields.String(required=True)
    r = fields.Integer(required=True)

    class Meta:
        name = "mg_pairs"
        hash_key = "h"
        range_key = "r"


class MgPlain(Model):
    key = fields.String(required=True)
    n = fields.Integer()

    class Meta:
        name = "mg_conflict"
        hash_key = "key"
        indexes = [Index("n", name="ix_n")]


@pytest.fixture
def mongo(_targets: Callable[[str], Any]) -> Iterator[Callable[..., odm.Registry]]:
    """Registries on the session's MongoDB database; documents are removed afterwards."""
    yield from registries(_targets("mongodb"))


def raw(reg: odm.Registry, name: str) -> Any:
    """The collection through pymongo itself (plain codec options), to see what is really stored."""
    from bson.codec_options import CodecOptions

    return reg.backend.db.get_collection(name, codec_options=CodecOptions(tz_aware=True, tzinfo=UTC))  # type: ignore[attr-defined]


def fresh(reg: odm.Registry, *names: str) -> None:
    """Start from no collection (the session's database outlives each test)."""
    db = reg.backend.db  # type: ignore[attr-defined]
    for name in names:
        db.drop_collection(name)
        db["_odm_schema"].delete_one({"_id": name})


def test_stored_forms_are_native_bson(mongo: Callable[..., odm.Registry]) -> None:
    reg = mongo(MgItem)
    ref = uuid.uuid4()
    MgItem.create(code="a", price=Decimal("12345678901234567890.123456789"), blob=b"\x00\xff",
                  at=dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), day=dt.date(2024, 2, 29), ref=ref,
                  labels={"b", "a"}, extra={"k": [1]})
    doc = raw(reg, "mg_items").find_one({"_id": "a"})
    from bson.decimal128 import Decimal128

    assert isinstance(doc["price"], Decimal128) and doc["price"].to_decimal() == Decimal("12345678901234567890.123456789")
    assert doc["blob"] == b"\x00\xff"
    assert doc["at"] == "2024-01-02T03:04:05.678901Z"  # fixed-width ISO, every microsecond (as on SQL/DynamoDB)
    assert isinstance(doc["expires"], dt.datetime)  # a BSON date under the TTL index
    assert doc["day"] == "2024-02-29" and doc["ref"] == str(ref) and doc["labels"] == ["a", "b"]
    assert doc["code"] == "a"  # the key stays an ordinary attribute too
    got = MgItem.get("a")
    assert got.price == Decimal("12345678901234567890.123456789") and got.blob == b"\x00\xff"
    with pytest.raises(odm.ValidationError, match="Decimal128"):
        MgItem.create(code="b", price=Decimal("1." + "1" * 40))
    assert MgItem.get_or_none("b") is None


def test_hash_and_range_key_is_one_id(mongo: Callable[..., odm.Registry]) -> None:
    reg = mongo(MgPair)
    MgPair.create(h="s", r=1)
    MgPair.create(h="s", r=2)
    assert raw(reg, "mg_pairs").find_one({"_id": {"h": "s", "r": 2}}) is not None
    with pytest.raises(odm.DuplicateKey, match="'s', 1"):
        MgPair.create(h="s", r=1)
    assert [p.r for p in MgPair.query(MgPair.h == "s").order_by(-MgPair.r)] == [2, 1]


def test_user_values_never_become_operators(mongo: Callable[..., odm.Registry]) -> None:
    reg = mongo()
    backend = odm.Backend("mongodb", reg.backend)
    repo = backend.define_repository("inj", {"name": "mg_injection", "hashKey": "k"})
    repo.save({"k": "1", "v": "$gt", "d": {"ne": None}, "tags": ["a"]})
    repo.save({"k": "2", "v": "plain", "d": {"x": 1}, "n": 5})
    assert [d["k"] for d in repo.get_all({"v": "$gt"})] == ["1"]
    assert [d["k"] for d in repo.get_all({"d": {"ne": None}})] == ["1"]  # a dict is matched whole
    # A '$' key inside a value is refused on every backend (MongoDB cannot $set it), so it
    # can never reach MongoDB as an operator either.
    for operator in ({"v": {"$ne": None}}, {"n": {"$gt": 0}}, {"d": {"$ne": None}}):
        with pytest.raises(odm.QueryError, match="starts with '\\$'"):
            repo.get_all(operator)
    with pytest.raises(odm.QueryError, match="starts with '\\$'"):
        repo.get_all(odm.Filter().match_any("d", [{"$ne": None}]))
    with pytest.raises(odm.ValidationError, match="starts with '\\$'"):
        repo.save({"k": "3", "d": {"$ne": None}})
    assert repo.get_all({"tags": "a"}) == []  # a scalar never equals an array holding it
    assert [d["k"] for d in repo.get_all({"tags": ["a"]})] == ["1"]
    assert [d["k"] for d in repo.get_all(odm.Filter().match_pattern("v", "$%"))] == ["1"]
    for bad in ({"d.x": 1}, {"$where": "true"}, {"$or": [{"k": "1"}]}):
        with pytest.raises(odm.QueryError, match="must be an attribute name"):
            repo.get_all(bad)
    with pytest.raises(odm.ValidationError):
        repo.save({"k": "3", "$set": {"v": 1}})
    with pytest.raises(odm.ValidationError):
        repo.save({"k": "3", "_id": 1})
    with pytest.raises(odm.ValidationError):
        repo.save({"k": "3", "n": 2**70})
    with pytest.raises(odm.ValidationError):
        repo.save({"k": "3", "x": object()})
    assert "_id" not in repo.get_one({"k": "1"})
    assert len(repo.get_all()) == 2
    backend.shutdown()


def test_sync_creates_indexes_ttl_and_is_idempotent(mongo: Callable[..., odm.Registry]) -> None:
    reg = mongo(MgItem, MgPair, sync=False)
    fresh(reg, "mg_items", "mg_pairs")
    actions = [str(a) for a in reg.sync()]
    assert any("created collection mg_items" in a for a in actions)
    assert any("enabled TTL mg_items" in a for a in actions)
    info = raw(reg, "mg_items").index_information()
    by_key = {tuple(k for k, _ in v["key"]): v for v in info.values()}
    assert by_key[("expires",)]["expireAfterSeconds"] == 0
    assert ("name",) in by_key and ("n", "name") in by_key
    slug = by_key[("slug",)]
    assert slug["unique"] and dict(slug["partialFilterExpression"]) == {"slug": {"$exists": True}}
    assert ("code",) not in by_key  # the _id index serves the hash key
    pair_keys = {tuple(k for k, _ in v["key"]) for v in raw(reg, "mg_pairs").index_information().values()}
    assert ("h", "r") in pair_keys
    assert reg.sync() == []
    MgItem.create(code="x", slug="s")
    MgItem.create(code="y")
    MgItem.create(code="z")  # unique ignores items without the field
    with pytest.raises(odm.DuplicateKey, match="slug"):
        MgItem.create(code="w", slug="s")


def test_conflicting_index_is_schema_mismatch_and_changes_nothing(mongo: Callable[..., odm.Registry]) -> None:
    reg = mongo()
    fresh(reg, "mg_conflict")
    coll = raw(reg, "mg_conflict")
    coll.insert_one({"_id": "keep", "key": "keep"})
    reg.backend.db["_odm_schema"].replace_one(  # type: ignore[attr-defined]
        {"_id": "mg_conflict"}, {"_id": "mg_conflict", "keys": {"hash": ["key", "str"]}}, upsert=True)
    coll.create_index([("n", 1)], name="ix_n", unique=True)
    before = coll.index_information()
    reg.register(MgPlain)
    with pytest.raises(odm.SchemaMismatch, match="ix_n"):
        reg.sync()
    assert coll.index_information() == before
    assert coll.count_documents({}) == 1


def test_foreign_collection_is_schema_mismatch(mongo: Callable[..., odm.Registry]) -> None:
    reg = mongo()
    fresh(reg, "mg_foreign")
    raw(reg, "mg_foreign").insert_one({"name": "from the Go service"})

    class Foreign(Model):
        key = fields.String()

        class Meta:
            name = "mg_foreign"
            hash_key = "key"

    reg.register(Foreign)
    with pytest.raises(odm.SchemaMismatch, match="not created by odm"):
        reg.sync()
    fresh(reg, "mg_foreign")


def test_insert_many_is_unordered_and_reports_every_failure(mongo: Callable[..., odm.Registry]) -> None:
    mongo(MgItem)
    MgItem.create(code="d1")
    MgItem.create(code="u0", slug="taken")
    items = [MgItem(code="n1"), MgItem(code="d1"), MgItem(code="n2"), MgItem(code="n2"), MgItem(code="n3", slug="taken")]
    with pytest.raises(odm.DuplicateKey) as info:
        MgItem.insert_many(items)
    message = str(info.value)
    assert "wrote 2 of 5" in message and "'d1'" in message and "'n2'" in message and "'n3'" in message
    assert "slug" in message
    assert info.value.failed == [("d1",), ("n2",), ("n3",)]  # type: ignore[attr-defined]
    assert {i.code for i in MgItem.query()} == {"d1", "u0", "n1", "n2"}


def test_expired_document_is_absent_before_the_ttl_monitor_runs(mongo: Callable[..., odm.Registry]) -> None:
    reg = mongo(MgItem)
    MgItem.create(code="old", name="x", expires=odm.utcnow() - dt.timedelta(seconds=30))
    assert raw(reg, "mg_items").count_documents({"_id": "old"}) == 1  # still stored
    assert MgItem.get_or_none("old") is None and MgItem.query(MgItem.name == "x").count() == 0
    assert MgItem.query(MgItem.name == "x").delete() == 0
    MgItem.create(code="old", name="y")
    assert MgItem.get("old").name == "y"


def test_explain_shows_what_is_sent(mongo: Callable[..., odm.Registry]) -> None:
    mongo(MgItem)
    plan = MgItem.query(MgItem.n > 3, name="a").order_by(-MgItem.n).limit(5).offset(2).explain()
    assert plan["backend"] == "mongodb" and plan["collection"] == "mg_items"
    flt = plan["filter"]
    assert flt["n"] == {"$gt": 3} and flt["name"] == {"$eq": "a"}
    assert "expires" in str(flt["$nor"])  # the TTL live filter (not expired) travels with every read
    assert plan["sort"] == [("n", -1), ("_id", 1)] or plan["sort"] == [("n", -1)]
    assert (plan["limit"], plan["skip"]) == (5, 2)
    assert isinstance(plan["plan"], dict)


def test_unreachable_server_is_backend_unavailable_without_the_password() -> None:
    port = free_port()
    secret = "s3cr3t-Pa55"
    reg = odm.Registry("mongodb", host=f"127.0.0.1:{port}", database="app", user="bob", timeout=0.3,
                       **{"pass": secret})
    assert secret not in repr(reg) and secret not in repr(reg.backend)
    reg.register(MgPair)
    with pytest.raises(odm.BackendUnavailable) as info:
        MgPair.get_or_none("a", 1)
    assert f"127.0.0.1:{port}" in str(info.value) and secret not in str(info.value)
    assert isinstance(info.value.__cause__, pymongo.errors.PyMongoError)
    reg.close()
    reg2 = odm.Registry("mongodb", uri=f"mongodb://bob:{secret}@127.0.0.1:{port}/app", timeout=0.3)
    reg2.register(MgPair)
    with pytest.raises(odm.BackendUnavailable) as info:
        MgPair.query().count()
    assert f"127.0.0.1:{port}" in str(info.value) and secret not in str(info.value)
    assert secret not in repr(reg2.backend)
    reg2.close()
    reg2.close()


def test_bad_uri_is_config_error_without_the_password() -> None:
    with pytest.raises(odm.ConfigError) as info:
        odm.Registry("mongodb", uri="mongodb://bob:hunter2@127.0.0.1:notaport/app")
    assert "hunter2" not in str(info.value) and "not usable" in str(info.value)
    with pytest.raises(odm.ConfigError, match="host"):
        odm.Registry("mongodb", database="app")


def test_closed_backend_is_backend_unavailable(mongo: Callable[..., odm.Registry]) -> None:
    reg = mongo(MgPair)
    MgPair.create(h="c", r=1)
    binding = MgPair._bound()
    reg.backend.close()
    with pytest.raises(odm.BackendUnavailable, match="closed"):
        binding.repo.get(("c", 1))


def test_document_over_16_mb_is_a_validation_error_naming_the_field(mongo: Callable[..., odm.Registry]) -> None:
    mongo(MgItem)
    big = b"x" * (17 * 1024 * 1024)
    with pytest.raises(odm.ValidationError, match="16 MB") as info:
        MgItem.create(code="big", blob=big)
    assert list(info.value.messages) == ["blob"]
    with pytest.raises(odm.ValidationError, match="16 MB"):
        MgItem(code="big", blob=big).save()
    assert MgItem.get_or_none("big") is None
