"""insert_many's per-item shortcuts give exactly what the general paths give (issue 11, bench_bulk).

DynamoDB builds each item and its size in one pass (``_sized_item``) instead of ``_item`` then
``item_size``; MongoDB checks attribute names once per call (``_fulls``) instead of per document.
Both are compared here with the general path on awkward values, refusals included. No server:
a registry binds the models without sending a request.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import Model, ValidationError, fields
from odm.backends.dynamodb.codec import item_size


class Plain(Model):
    k = fields.String(required=True)

    class Meta:
        name = "bulk_items_plain"
        hash_key = "k"


class Indexed(Model):
    k = fields.String(required=True)
    tag = fields.String()

    class Meta:
        name = "bulk_items_indexed"
        hash_key = "k"
        gsi = {"bulk_items_by_tag": {"hash_key": "tag"}}


@pytest.fixture
def dynamo() -> Iterator[None]:
    reg = odm.Registry("dynamodb", endpoint="http://127.0.0.1:9", awsRegion="us-east-1", awsSecretKeyId="x",
                       awsSecretAccessKey="y")
    reg.register(Plain, Indexed)
    yield
    reg.close()


@pytest.fixture
def mongo() -> Iterator[None]:
    reg = odm.Registry("mongodb", uri="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=1", database="bulk_items")
    reg.register(Plain)
    yield
    reg.close()


DOCS: list[dict[str, Any]] = [
    {"k": "a", "s": "plain ascii", "n": 5, "neg": -12345, "neg2": -10, "neg4": -1000, "zero": 0},
    {"k": "é", "s": "ünïcødé 😀", "big": 10**37, "negbig": -(10**37) + 1},
    {"k": "b", "t": True, "f": False, "fl": 1.5, "d": Decimal("-12.340"), "none": None, "empty": set()},
    {"k": "c", "m": {"x": [1, "two", None, {"y": b"\x00\x01"}]}, "ss": {"b", "a"}, "ns": {3, 1}, "bs": {b"z"}},
    {"k": "clé", "ключ": "значение", "b": b"", "l": []},
]


def sized_general(repo: Any, doc: dict[str, Any]) -> tuple[dict[str, Any], int]:
    item = repo._item(doc)
    return item, item_size(item)


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d["k"]))
def test_dynamodb_item_and_size_match_the_general_path(dynamo: None, doc: dict[str, Any]) -> None:
    repo: Any = Plain._bound().repo
    assert repo._sized_item(doc) == sized_general(repo, doc)


def refusal(call: Any) -> Any:
    with pytest.raises(ValidationError) as info:
        call()
    return info.value.messages, info.value.model


@pytest.mark.parametrize("doc", [
    {"k": "big", "text": "x" * 409_600},  # over 400 KB with its key and name
    {"k": "bad", "v": object()},  # no AttributeValue for it
    {"k": "nan", "v": float("nan")},
])
def test_dynamodb_refusals_match_the_general_path(dynamo: None, doc: dict[str, Any]) -> None:
    repo: Any = Plain._bound().repo
    assert refusal(lambda: repo._sized_item(doc)) == refusal(lambda: sized_general(repo, doc))


def test_dynamodb_empty_index_key_is_refused_alike(dynamo: None) -> None:
    repo: Any = Indexed._bound().repo
    doc = {"k": "a", "tag": ""}
    assert refusal(lambda: repo._sized_item(doc)) == refusal(lambda: repo._item(doc))


def test_dynamodb_size_at_the_limit_is_accepted(dynamo: None) -> None:
    repo: Any = Plain._bound().repo
    doc = {"k": "a", "t": ""}
    doc["t"] = "x" * (repo.max_item_bytes - item_size(repo._item(doc)))
    item, size = repo._sized_item(doc)
    assert size == repo.max_item_bytes == item_size(item)
    doc["t"] += "é"
    refusal(lambda: repo._sized_item(doc))


def test_mongodb_documents_match_the_general_path(mongo: None) -> None:
    repo: Any = Plain._bound().repo
    docs = [{"k": f"k{i}", "n": i, "s": "é"} for i in range(5)] + [{"k": "x", "other": [1, 2]}]
    assert repo._fulls(docs) == [repo._full(d) for d in docs]


@pytest.mark.parametrize("bad", ["$set", "_id", "_odm_ttl_us", "a\x00b"])
def test_mongodb_a_bad_name_in_any_document_is_refused_alike(mongo: None, bad: str) -> None:
    repo: Any = Plain._bound().repo
    docs = [{"k": "a", "n": 1}, {"k": "b", bad: 2}, {"k": "c"}]
    assert refusal(lambda: repo._fulls(docs)) == refusal(lambda: [repo._full(d) for d in docs])
