"""DynamoDB unique indexes: guard items in ``<table>.unique``, seen through the server itself.

The cross-backend behaviour is in test_unique_indexes.py; here: the guard table holds exactly
one guard per held value and nothing else, the model's table holds only items, messages name
the index and value, a refused sync creates nothing, an expired item's value is free, and sync
repairs guards that a bypassing tool lost or left behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import odm
from odm import Index, Model, fields

from ..conftest import registries
from ..dynamo_proxy import DynamoFaultProxy

pytest.importorskip("boto3")


class Badge(Model):
    uid = fields.String(required=True)
    handle = fields.String()
    city = fields.String()

    class Meta:
        name = "dyu_badges"
        hash_key = "uid"
        indexes = [Index("handle", unique=True), "city"]


class TtlBadge(Model):
    uid = fields.String(required=True)
    handle = fields.String()
    expires = fields.DateTime()

    class Meta:
        name = "dyu_ttl"
        hash_key = "uid"
        indexes = [Index("handle", unique=True)]
        ttl = {"attribute": "expires"}


class LooseBadge(Model):
    uid = fields.String(required=True)
    handle = fields.String()

    class Meta:
        name = "dyu_later"
        hash_key = "uid"


class StrictBadge(Model):
    uid = fields.String(required=True)
    handle = fields.String()

    class Meta:
        name = "dyu_later"
        hash_key = "uid"
        indexes = [Index("handle", unique=True)]


@pytest.fixture
def dynamo(_targets: Callable[[str], Any]) -> Iterator[Callable[..., odm.Registry]]:
    yield from registries(_targets("dynamodb"))


def client(reg: odm.Registry) -> Any:
    return reg.backend.client  # type: ignore[attr-defined]


def table(model: type[Model]) -> str:
    return model._bound().repo.table  # type: ignore[attr-defined, no-any-return]


def scan(reg: odm.Registry, name: str) -> list[dict[str, Any]]:
    return client(reg).scan(TableName=name, ConsistentRead=True)["Items"]  # type: ignore[no-any-return]


def guards(reg: odm.Registry, model: type[Model]) -> dict[str, str]:
    """guard key -> owner, as stored."""
    return {g["guard"]["S"]: g["owner"]["S"] for g in scan(reg, table(model) + ".unique")}


def test_guards_live_in_their_own_table_and_reads_never_see_them(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(Badge)
    Badge.insert_many([Badge(uid="a", handle="x", city="Oslo"), Badge(uid="b", handle="y", city="Oslo"), Badge(uid="c")])
    assert guards(reg, Badge) == {'u#ix_handle_uniq#[["S","x"]]': '[["S","a"]]', 'u#ix_handle_uniq#[["S","y"]]': '[["S","b"]]'}
    assert sorted(i["uid"]["S"] for i in scan(reg, table(Badge))) == ["a", "b", "c"]
    assert Badge.query().count() == 3 and len(Badge.query(city="Oslo").page(size=10).items) == 2
    Badge.get("a").update(handle="x2")
    Badge.get("b").delete()
    assert guards(reg, Badge) == {'u#ix_handle_uniq#[["S","x2"]]': '[["S","a"]]'}
    assert Badge.delete_many() == 2 and guards(reg, Badge) == {}


def test_duplicate_names_the_index_and_value(dynamo: Callable[..., odm.Registry]) -> None:
    dynamo(Badge)
    Badge.create(uid="a", handle="taken")
    with pytest.raises(odm.DuplicateKey, match=r"unique index 'ix_handle_uniq' \(handle\) value 'taken'"):
        Badge.create(uid="b", handle="taken")
    with pytest.raises(odm.DuplicateKey, match=r"'b' \(the unique index 'ix_handle_uniq' \(handle\) value 'taken' is taken\)"
                                               r".*'d' \(the unique index .* repeats in this call\)") as info:
        Badge.insert_many([Badge(uid="b", handle="taken"), Badge(uid="c", handle="new"), Badge(uid="d", handle="new")])
    assert info.value.failed == [("b",), ("d",)] and info.value.written == [("c",)]  # type: ignore[attr-defined]


def test_an_expired_items_value_is_free(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(TtlBadge, sync=False)
    # Tables made by hand, without server-side TTL: DynamoDB Local runs one never-ending job per
    # TTL table in a 10-thread pool, and the session's server has enough of them already
    # (docs/backends/dynamodb.md). Expired items are absent to the ODM either way.
    for name, key in ((table(TtlBadge), "uid"), (table(TtlBadge) + ".unique", "guard")):
        try:
            client(reg).create_table(TableName=name, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                                     AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                                     BillingMode="PAY_PER_REQUEST")
        except client(reg).exceptions.ResourceInUseException:
            pass
    past = odm.utcnow() - dt.timedelta(minutes=1)
    TtlBadge.create(uid="old", handle="h", expires=past)
    TtlBadge.create(uid="new", handle="h")  # the expired holder counts as absent, as for keys
    assert [b.uid for b in TtlBadge.query()] == ["new"]
    assert guards(reg, TtlBadge) == {'u#ix_handle_uniq#[["S","h"]]': '[["S","new"]]'}
    TtlBadge.get("new").update(expires=past)  # the guard carries the new expiry
    TtlBadge.create(uid="third", handle="h")
    assert [b.uid for b in TtlBadge.query()] == ["third"]


def test_refused_sync_creates_nothing_and_sync_repairs_guards(dynamo: Callable[..., odm.Registry]) -> None:
    old = dynamo(LooseBadge)
    LooseBadge.insert_many([LooseBadge(uid="p", handle="twin"), LooseBadge(uid="q", handle="twin"),
                            LooseBadge(uid="r", handle="solo")])
    new = dynamo(StrictBadge, sync=False)
    with pytest.raises(odm.SchemaMismatch, match=r"value 'twin' is held by '[pq]' and '[pq]'.*Nothing was changed"):
        new.sync()
    names = client(old).list_tables()["TableNames"]
    assert table(StrictBadge) + ".unique" not in names
    assert client(old).describe_table(TableName=table(StrictBadge))["Table"].get("GlobalSecondaryIndexes") is None

    LooseBadge.get("q").update(handle="other")
    new.sync()
    held = {'u#ix_handle_uniq#[["S","twin"]]': '[["S","p"]]', 'u#ix_handle_uniq#[["S","other"]]': '[["S","q"]]',
            'u#ix_handle_uniq#[["S","solo"]]': '[["S","r"]]'}
    assert guards(new, StrictBadge) == held
    assert new.sync() == []  # nothing to do: no writes
    # A tool that bypasses the guards loses one and leaves a stale one: sync repairs both.
    guard_table = table(StrictBadge) + ".unique"
    client(new).delete_item(TableName=guard_table, Key={"guard": {"S": 'u#ix_handle_uniq#[["S","solo"]]'}})
    client(new).put_item(TableName=guard_table, Item={"guard": {"S": 'u#ix_handle_uniq#[["S","gone"]]'},
                                                     "owner": {"S": '[["S","zz"]]'}, "of": {"M": {"uid": {"S": "zz"}}}})
    actions = [str(a) for a in new.sync()]
    assert actions == ["built unique guards dyu_later (ix_handle_uniq) (1 claimed, 1 stale removed)"]
    assert guards(new, StrictBadge) == held
    StrictBadge.create(uid="s", handle="gone")


def test_sync_hands_an_orphaned_guard_to_the_item_now_holding_its_value(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(Badge)
    Badge.create(uid="Y", handle="a")
    # A tool that bypasses the guards moves Y to 'b' and writes X with 'a': the data has no clash,
    # but the guard of 'a' still names Y.
    client(reg).update_item(TableName=table(Badge), Key={"uid": {"S": "Y"}}, UpdateExpression="SET handle = :b",
                            ExpressionAttributeValues={":b": {"S": "b"}})
    client(reg).put_item(TableName=table(Badge), Item={"uid": {"S": "X"}, "handle": {"S": "a"}})
    actions = [str(a) for a in reg.sync()]
    assert actions == ["built unique guards dyu_badges (ix_handle_uniq) (2 claimed, 0 stale removed)"]
    assert guards(reg, Badge) == {'u#ix_handle_uniq#[["S","a"]]': '[["S","X"]]', 'u#ix_handle_uniq#[["S","b"]]': '[["S","Y"]]'}
    assert reg.sync() == []
    with pytest.raises(odm.DuplicateKey, match="value 'a'"):
        Badge.create(uid="Z", handle="a")
    Badge.get("X").update(handle="c")  # X owns its guard: it can move, and 'a' is free again
    Badge.create(uid="Z", handle="a")


class SameBadge(Model):
    """Badge's table, for a second writer on its own registry."""

    uid = fields.String(required=True)
    handle = fields.String()
    city = fields.String()

    class Meta:
        name = "dyu_badges"
        hash_key = "uid"
        indexes = [Index("handle", unique=True), "city"]


def test_delete_many_spares_a_match_changed_after_the_scan(dynamo: Callable[..., odm.Registry]) -> None:
    other = dynamo(SameBadge)
    backend: Any = other.backend
    SameBadge.insert_many([SameBadge(uid="a", handle="x", city="Oslo"), SameBadge(uid="b", handle="y", city="Oslo"),
                           SameBadge(uid="c", handle="z", city="Oslo")])

    def move() -> None:  # another writer, between delete_many's scan and its delete
        SameBadge.get("a").update(handle="x2", city="Bergen")  # a unique value too: its unit is refused, then re-read
        SameBadge.get("b").update(city="Bergen")

    with DynamoFaultProxy(backend.endpoint) as proxy:
        reg = odm.Registry("dynamodb", endpoint=proxy.endpoint, awsRegion="us-east-1", awsSecretKeyId="test",
                           awsSecretAccessKey="test", tablePrefix=backend.prefix)
        try:
            reg.register(Badge)
            proxy.before_next["TransactWriteItems"] = move
            assert Badge.delete_many(Badge.query(city="Oslo")) == 1
        finally:
            reg.close()
    assert sorted((b.uid, b.handle, b.city) for b in SameBadge.query()) == [("a", "x2", "Bergen"), ("b", "y", "Bergen")]
    assert guards(other, SameBadge) == {'u#ix_handle_uniq#[["S","x2"]]': '[["S","a"]]', 'u#ix_handle_uniq#[["S","y"]]': '[["S","b"]]'}
