"""DynamoDB-only behaviour against DynamoDB Local: plans and read costs, batches, limits, schema."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import Model, fields

from ..conftest import registries

pytest.importorskip("boto3")

UTC = dt.timezone.utc


class DyItem(Model):
    code = fields.String(required=True)
    cat = fields.String()
    n = fields.Integer()
    tags = fields.Set(fields.String())
    blob = fields.Bytes()
    price = fields.Decimal()
    expires = fields.DateTime()

    class Meta:
        name = "dy_items"
        hash_key = "code"
        gsi = {"by_cat": {"hash_key": "cat", "range_key": "n"}}
        ttl = {"attribute": "expires", "seconds": 3600}


class DyLog(Model):
    stream = fields.String(required=True)
    seq = fields.Integer(required=True)
    level = fields.String()

    class Meta:
        name = "dy_logs"
        hash_key = "stream"
        range_key = "seq"
        lsi = {"by_level": {"range_key": "level"}}
        read_capacity = 5
        write_capacity = 5


class DyStrict(Model):
    key = fields.String(required=True)
    size = fields.Integer()

    class Meta:
        name = "dy_strict"
        hash_key = "key"
        allow_scan = False


@pytest.fixture
def dynamo(_targets: Callable[[str], Any]) -> Iterator[Callable[..., odm.Registry]]:
    """Registries on the session's DynamoDB Local (tables prefixed per run); items removed afterwards."""
    yield from registries(_targets("dynamodb"))


def client(reg: odm.Registry) -> Any:
    return reg.backend.client  # type: ignore[attr-defined]


def run_counted(reg: odm.Registry, plan: dict[str, Any]) -> dict[str, Any]:
    """Run an explain()ed request as DynamoDB counts it: ScannedCount (items read) and Count (matched)."""
    req = dict(plan["request"])
    op = client(reg).query if plan["operation"] == "Query" else client(reg).scan
    return op(**req, Select="COUNT")  # type: ignore[no-any-return]


def test_explain_and_read_costs_for_table_gsi_and_lsi(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(DyItem, DyLog)
    DyItem.insert_many([DyItem(code=f"c{i}", cat="a" if i % 10 == 0 else "b", n=i) for i in range(100)])
    DyLog.insert_many([DyLog(stream="s" if i % 4 else "t", seq=i, level="err" if i % 8 == 0 else "info") for i in range(80)])

    gsi = DyItem.query(DyItem.cat == "a", DyItem.n >= 0).explain()
    assert (gsi["operation"], gsi["index"], gsi["index_kind"]) == ("Query", "by_cat", "GSI")
    counted = run_counted(reg, gsi)
    assert counted["Count"] == counted["ScannedCount"] == 10  # no scan: only the matching items were read
    items = list(DyItem.query(DyItem.cat == "a", DyItem.n >= 0))
    repo = DyItem._bound().repo
    assert len(items) == 10 and repo.last_read.scanned == 10  # type: ignore[attr-defined]
    list(DyItem.query(DyItem.n >= 0))  # the same question without the GSI key is a Scan over all 100
    assert repo.last_read.operation == "Scan" and repo.last_read.scanned == 100  # type: ignore[attr-defined]

    table = DyLog.query(DyLog.stream == "t", DyLog.seq < 40).explain()
    assert (table["operation"], table["index"]) == ("Query", None)
    assert table["key_condition"] == "#0 = :0 AND #1 < :1"
    counted = run_counted(reg, table)
    assert counted["Count"] == counted["ScannedCount"] == 10

    lsi = DyLog.query(DyLog.stream == "t", DyLog.level == "err").explain()
    assert (lsi["operation"], lsi["index"], lsi["index_kind"]) == ("Query", "by_level", "LSI")
    counted = run_counted(reg, lsi)
    assert counted["Count"] == counted["ScannedCount"] == 10


def test_limit_counts_matching_items_across_pages(dynamo: Callable[..., odm.Registry]) -> None:
    dynamo(DyLog)
    DyLog.insert_many([DyLog(stream="p", seq=i, level="hit" if i % 50 == 49 else "miss") for i in range(300)])
    # 300 items are read to find 4 matches: DynamoDB's own Limit would have stopped after 4 read.
    got = list(DyLog.query(DyLog.stream == "p", DyLog.level.contains("it")).limit(4))
    assert [x.seq for x in got] == [49, 99, 149, 199]
    assert len(list(DyLog.query(DyLog.stream == "p", DyLog.level.contains("it")).limit(100))) == 6
    q = DyLog.query(DyLog.stream == "p", DyLog.level.contains("iss")).limit(3).offset(2)
    assert [x.seq for x in q] == [2, 3, 4] and q.count() == 3
    assert DyLog.query(DyLog.stream == "p").order_by(-DyLog.seq).first().seq == 299  # type: ignore[union-attr]


def test_batch_writes_retry_unprocessed_items(dynamo: Callable[..., odm.Registry], monkeypatch: pytest.MonkeyPatch) -> None:
    reg = dynamo(DyItem)
    real = client(reg).batch_write_item
    calls: list[int] = []
    # insert_many writes through conditional transactions; delete_many batches with BatchWriteItem.
    DyItem.insert_many([DyItem(code=f"b{i}", n=i) for i in range(60)] + [DyItem(code="x0"), DyItem(code="x1")])

    def flaky(**kwargs: Any) -> dict[str, Any]:
        # The server is real; only the response is made to look throttled for the first few calls.
        (table, requests), = kwargs["RequestItems"].items()
        calls.append(len(requests))
        if len(calls) <= 3 and len(requests) > 2:
            out = real(RequestItems={table: requests[:-2]})
            out["UnprocessedItems"] = {table: requests[-2:]}
            return out  # type: ignore[no-any-return]
        return real(**kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(client(reg), "batch_write_item", flaky)
    assert DyItem.delete_many(DyItem.code.startswith("b")) == 60
    assert DyItem.query().count() == 2
    assert calls[:4] == [25, 2, 25, 2] and max(calls) == 25

    def stuck(**kwargs: Any) -> dict[str, Any]:
        return {"UnprocessedItems": kwargs["RequestItems"]}

    monkeypatch.setattr("odm.backends.dynamodb.repository.BACKOFF_BASE", 0.001)
    monkeypatch.setattr(client(reg), "batch_write_item", stuck)
    with pytest.raises(odm.BackendUnavailable, match="not deleted: 'x[01]', 'x[01]'"):
        DyItem.delete_many()


def test_insert_many_never_overwrites_and_lists_clashes(dynamo: Callable[..., odm.Registry]) -> None:
    dynamo(DyItem)
    DyItem.create(code="keep", n=1)
    with pytest.raises(odm.DuplicateKey, match="'keep'.*'twice'"):
        DyItem.insert_many([DyItem(code="keep", n=2), DyItem(code="twice"), DyItem(code="twice", n=3), DyItem(code="new")])
    assert DyItem.get("keep").n == 1 and DyItem.get("new") and DyItem.get("twice").n is None


def test_item_over_400kb_is_refused_before_any_request(dynamo: Callable[..., odm.Registry], monkeypatch: pytest.MonkeyPatch) -> None:
    reg = dynamo(DyItem)

    def no_request(**kwargs: Any) -> None:
        raise AssertionError("a request was sent")

    monkeypatch.setattr(client(reg), "put_item", no_request)
    with pytest.raises(odm.ValidationError, match=r"DyItem.*4\d\d\d\d\d bytes.*400 KB") as info:
        DyItem.create(code="big", blob=b"x" * 420_000)
    assert info.value.model == "DyItem"
    with pytest.raises(odm.ValidationError, match="price.*38"):
        DyItem.create(code="dec", price=Decimal("1." + "1" * 40))


def test_stored_forms_on_the_server(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(DyItem)
    at = odm.utcnow() + dt.timedelta(hours=2)
    DyItem.create(code="f", tags={"x", "y"}, blob=b"\x00\x01", price=Decimal("1.50"), expires=at)
    raw = client(reg).get_item(TableName=DyItem._bound().repo.table, Key={"code": {"S": "f"}})["Item"]  # type: ignore[attr-defined]
    assert sorted(raw["tags"]["SS"]) == ["x", "y"] and raw["blob"] == {"B": b"\x00\x01"}
    assert "N" in raw["expires"] and abs(Decimal(raw["expires"]["N"]) - Decimal(at.timestamp())) < 1
    got = DyItem.get("f")
    assert got.expires == at and got.tags == {"x", "y"} and got.price == Decimal("1.5")
    ttl = client(reg).describe_time_to_live(TableName=DyItem._bound().repo.table)["TimeToLiveDescription"]  # type: ignore[attr-defined]
    assert ttl["AttributeName"] == "expires" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")


def test_billing_modes_from_meta(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(DyItem, DyLog)
    items = client(reg).describe_table(TableName=DyItem._bound().repo.table)["Table"]  # type: ignore[attr-defined]
    logs = client(reg).describe_table(TableName=DyLog._bound().repo.table)["Table"]  # type: ignore[attr-defined]
    assert items["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert logs["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert [i["IndexName"] for i in logs["LocalSecondaryIndexes"]] == ["by_level"]


def test_scan_refused_when_allow_scan_is_false(dynamo: Callable[..., odm.Registry]) -> None:
    dynamo(DyStrict)
    DyStrict.create(key="a", size=3)
    with pytest.raises(odm.QueryError, match="allow_scan = False"):
        list(DyStrict.query(DyStrict.size == 3))
    assert DyStrict.query(DyStrict.key == "a").first().size == 3  # type: ignore[union-attr]


def test_order_by_a_non_range_key_names_the_index(dynamo: Callable[..., odm.Registry]) -> None:
    dynamo(DyItem)
    with pytest.raises(odm.QueryError, match="GSI index 'by_cat'"):
        list(DyItem.query().order_by(-DyItem.n))
    DyItem.insert_many([DyItem(code=f"o{i}", cat="c", n=i) for i in (3, 1, 2)])
    assert [x.n for x in DyItem.query(DyItem.cat == "c", DyItem.n > 0).order_by(-DyItem.n)] == [3, 2, 1]


def test_tampered_cursor_is_rejected(dynamo: Callable[..., odm.Registry]) -> None:
    dynamo(DyLog)
    DyLog.insert_many([DyLog(stream="c", seq=i) for i in range(5)])
    q = DyLog.query(DyLog.stream == "c")
    first = q.page(size=2)
    assert first.next_cursor and [x.seq for x in first.items] == [0, 1]
    body, mac = first.next_cursor.rsplit(".", 1)
    with pytest.raises(odm.QueryError, match="cursor"):
        q.page(size=2, cursor=body[:-2] + "AA." + mac)
    assert [x.seq for x in q.page(size=10, cursor=first.next_cursor).items] == [2, 3, 4]


def test_sync_refuses_another_key_schema_and_adds_a_gsi(dynamo: Callable[..., odm.Registry]) -> None:
    name = f"dy_evolve_{uuid.uuid4().hex[:6]}"

    def model(hash_key: str, **meta: Any) -> type[Model]:
        attrs = {"key": fields.String(), "other": fields.String(), "n": fields.Integer(),
                 "Meta": type("Meta", (), {"name": name, "hash_key": hash_key, **meta})}
        return type("Evolving", (Model,), attrs)

    V1 = model("key")
    reg = dynamo(V1)
    V1.create(key="k", n=5)
    with pytest.raises(odm.SchemaMismatch, match=f"{name}.*hash key"):
        dynamo(model("other"))
    V2 = model("key", gsi={"by_n": {"hash_key": "n"}})
    actions = dynamo(V2, sync=False).sync()
    assert [str(a) for a in actions] == [f"created GSI {name}.by_n (n)"]
    desc = client(reg).describe_table(TableName=V2._bound().repo.table)["Table"]  # type: ignore[attr-defined]
    assert [g["IndexName"] for g in desc["GlobalSecondaryIndexes"]] == ["by_n"]
    assert V2.query(V2.n == 5).explain()["index"] == "by_n" and V2.query(V2.n == 5).first().key == "k"  # type: ignore[attr-defined,union-attr]
    assert dynamo(V2, sync=False, rebind=True).sync() == []


def test_unreachable_endpoint_is_backend_unavailable_without_secrets() -> None:
    from ..servers import free_port

    reg = odm.Registry("dynamodb", endpoint=f"http://127.0.0.1:{free_port()}", awsSecretKeyId="AKIDSECRETID",
                       awsSecretAccessKey="very-secret")
    try:
        with pytest.raises(odm.BackendUnavailable, match="127.0.0.1") as info:
            reg.register(DyStrict)
            DyStrict.get_or_none("a")
        assert "very-secret" not in str(info.value) and "very-secret" not in repr(reg.backend)
    finally:
        reg.close()


def test_expired_items_are_filtered_though_dynamodb_local_keeps_them(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(DyItem)
    DyItem.create(code="old", cat="z", n=1, expires=odm.utcnow() - dt.timedelta(seconds=2))
    DyItem.create(code="new", cat="z", n=2)
    raw = client(reg).scan(TableName=DyItem._bound().repo.table)["Items"]  # type: ignore[attr-defined]
    assert {i["code"]["S"] for i in raw} >= {"old", "new"}  # still stored...
    assert [x.code for x in DyItem.query(DyItem.cat == "z", DyItem.n > 0)] == ["new"]  # ...but never read
    assert DyItem.query(DyItem.cat == "z", DyItem.n > 0).count() == 1
    assert DyItem.create(code="old", n=9).n == 9


def test_sync_refuses_ttl_on_another_attribute_before_any_change(dynamo: Callable[..., odm.Registry]) -> None:
    """DynamoDB keeps one TTL attribute per table: a definition declaring it elsewhere is refused by
    the plan and by sync before the missing GSI is added (it was refused only afterwards, half-way).
    dy_items already has TTL on 'expires' (no new TTL-enabled table on the shared server)."""
    reg = dynamo(DyItem)
    table = DyItem._bound().repo.table

    def moved(**meta: Any) -> type[Model]:
        attrs = {"code": fields.String(required=True), "cat": fields.String(), "n": fields.Integer(),
                 "until": fields.DateTime(), "Meta": type("Meta", (), {"name": "dy_items", "hash_key": "code", **meta})}
        return type("DyItemMoved", (Model,), attrs)

    Moved = moved(gsi={"by_cat": {"hash_key": "cat", "range_key": "n"}, "by_n": {"hash_key": "n"}},
                  ttl={"attribute": "until", "seconds": 3600})
    other = dynamo(Moved, sync=False, rebind=True)
    with pytest.raises(odm.SchemaMismatch, match="TTL on the attribute 'expires'.*declares it on 'until'.*Nothing was changed"):
        other.plan()
    with pytest.raises(odm.SchemaMismatch, match="TTL on the attribute 'expires'"):
        other.sync()
    desc = client(reg).describe_table(TableName=table)["Table"]
    assert [g["IndexName"] for g in desc["GlobalSecondaryIndexes"]] == ["by_cat"]  # the GSI was not added
    ttl = client(reg).describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires"
