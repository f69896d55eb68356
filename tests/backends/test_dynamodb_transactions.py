"""DynamoDB transactions: insert_many's conflicts and throttling, and what a transaction block sends.

The backend repeats a throttled call, or a transaction cancelled only by conflicts/throttling
(retry.py); insert_many resends a chunk without its refused items, and stops when the backend
gives up, naming what was written.

The server is real (DynamoDB Local); only some answers of ``TransactWriteItems`` are made to
look cancelled by conflicts or throttled, as DynamoDB does under load (the same technique as
test_dynamodb_specific's batch tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import odm
from odm import Model, fields
from odm.backends.dynamodb.retry import RetryPolicy

from ..conftest import registries
from .models import Note
from .test_transactions import HOSTILE, Spot, Tally

pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402


class Crate(Model):
    k = fields.String(required=True)
    n = fields.Integer()

    class Meta:
        name = "dyt_crates"
        hash_key = "k"


@pytest.fixture
def dynamo(_targets: Callable[[str], Any]) -> Iterator[Callable[..., odm.Registry]]:
    yield from registries(_targets("dynamodb"))


def client(reg: odm.Registry) -> Any:
    return reg.backend.client  # type: ignore[attr-defined]


def cancelled(actions: int, code: str) -> ClientError:
    reasons = [{"Code": code, "Message": "simulated"} for _ in range(actions)]
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": f"cancelled [{code}]"},
                        "CancellationReasons": reasons}, "TransactWriteItems")


def test_conflicts_and_throttling_are_retried_until_every_item_lands_once(
        dynamo: Callable[..., odm.Registry], monkeypatch: pytest.MonkeyPatch) -> None:
    reg = dynamo(Crate)
    Crate.create(k="c007", n=-1)
    real = client(reg).transact_write_items
    calls: list[int] = []

    def flaky(**kwargs: Any) -> Any:
        calls.append(len(kwargs["TransactItems"]))
        if len(calls) == 1:
            raise cancelled(calls[-1], "TransactionConflict")
        if len(calls) == 4:
            raise cancelled(calls[-1], "ThrottlingError")
        return real(**kwargs)

    reg.backend.retry = RetryPolicy(base=0.001)  # type: ignore[attr-defined]
    monkeypatch.setattr(client(reg), "transact_write_items", flaky)
    with pytest.raises(odm.DuplicateKey, match=r"wrote 249 of 250 item\(s\); 1 were not written .*'c007' \(key exists\)"):
        Crate.insert_many([Crate(k=f"c{i:03d}", n=i) for i in range(250)])
    # conflict (the backend repeats it), c007 refused, the other 99; 100 throttled, again; 50
    assert calls == [100, 100, 99, 100, 100, 50]
    assert Crate.query().count() == 250 and Crate.get("c007").n == -1


def test_a_budget_that_runs_out_says_what_was_written(dynamo: Callable[..., odm.Registry],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    reg = dynamo(Crate)
    real = client(reg).transact_write_items
    calls: list[int] = []

    def throttled_after_first(**kwargs: Any) -> Any:
        calls.append(len(kwargs["TransactItems"]))
        if len(calls) == 1:
            return real(**kwargs)
        if len(calls) % 2:
            raise cancelled(calls[-1], "ProvisionedThroughputExceeded")
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                          "TransactWriteItems")

    reg.backend.retry = RetryPolicy(base=0.001)  # type: ignore[attr-defined]
    monkeypatch.setattr(client(reg), "transact_write_items", throttled_after_first)
    with pytest.raises(odm.BackendUnavailable, match=r"Of 150 item\(s\), 100 are confirmed written: 'k000', 'k001'.*"
                                                     r"50 were not written: 'k100', 'k101'") as info:
        Crate.insert_many([Crate(k=f"k{i:03d}") for i in range(150)])
    error: Any = info.value
    assert error.written == [(f"k{i:03d}",) for i in range(100)] and error.unconfirmed == []
    assert error.unwritten == [(f"k{i:03d}",) for i in range(100, 150)]
    assert len(calls) == 1 + reg.backend.retry.throttled_attempts  # type: ignore[attr-defined]  # one budget, not two
    monkeypatch.setattr(client(reg), "transact_write_items", real)
    assert Crate.query().count() == 100
    Crate.insert_many([Crate(k=f"k{i:03d}") for i in range(100, 150)])  # the rerun of what was not written
    assert Crate.query().count() == 150


# -- registry.transaction(): the shape of the one TransactWriteItems a block sends -------------------

def spy(reg: odm.Registry, monkeypatch: pytest.MonkeyPatch) -> list[list[dict[str, Any]]]:
    """The TransactItems of every TransactWriteItems sent (still sent to the server)."""
    real = client(reg).transact_write_items
    sent: list[list[dict[str, Any]]] = []

    def recording(**kwargs: Any) -> Any:
        sent.append(kwargs["TransactItems"])
        return real(**kwargs)

    monkeypatch.setattr(client(reg), "transact_write_items", recording)
    return sent


def test_update_actions_are_one_update_with_placeholders(dynamo: Callable[..., odm.Registry],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    reg = dynamo(Tally)
    t = Tally.create(k="a", tags=["x"], labels={"p", "q"}, spot=Spot(city="Rome"))
    sent = spy(reg, monkeypatch)
    with reg.transaction():
        t.update(Tally.spot.city.set("it's.$x"), tags=odm.append(*HOSTILE), labels=odm.discard("p"), n=odm.inc(2))
    (action,), = sent
    body = action["Update"]
    expression, condition = body["UpdateExpression"], body["ConditionExpression"]
    assert "list_append(if_not_exists(" in expression and "if_not_exists(" in expression
    names = body["ExpressionAttributeNames"]
    assert "it's #0 :v" in names.values() and "version" in names.values()
    for text in (expression, condition):  # every name and value is a placeholder
        assert "it's" not in text and "$" not in text and "version" not in text and "Rome" not in text
    values = list(body["ExpressionAttributeValues"].values())
    assert {"N": "1"} in values  # the version read: checked by DynamoDB at the end
    assert {"SS": ["p", "q"]} in values  # the set as read: a discard is judged against it
    stored = Tally.get("a")
    assert stored.tags == ["x", *HOSTILE] and stored.labels == {"q"} and stored.spot.city == "it's.$x"
    assert stored.version == t.version == 2 and stored.updated == t.updated


def test_writes_of_one_item_become_one_action(dynamo: Callable[..., odm.Registry],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    reg = dynamo(Tally)
    sent = spy(reg, monkeypatch)
    with reg.transaction():
        t = Tally.create(k="f", n=1)
        t.update(n=odm.inc(2), tags=odm.append("a"))
        t.note = "x"
        t.save()
        g = Tally.create(k="g")
        g.delete()
    (put, delete), = sent
    assert put["Put"]["Item"]["n"] == {"N": "3"} and put["Put"]["Item"]["version"] == {"N": "3"}
    assert put["Put"]["ConditionExpression"].startswith("attribute_not_exists(")  # the create's condition
    assert delete["Delete"]["ConditionExpression"].startswith("attribute_not_exists(")  # g must not have existed
    assert Tally.get_or_none("g") is None and Tally.get("f").to_dict() == t.to_dict()
    # Failing at the end, the error names the first operation and those folded into it.
    with pytest.raises(odm.DuplicateKey, match=r"#1 \(create of 'f' in 'suite_tx_tally', then #2 update\)"):
        with reg.transaction():
            Tally.create(k="f").update(n=odm.inc(1))
    assert Tally.get("f").n == 3


def test_a_failed_call_undoes_its_folds(dynamo: Callable[..., odm.Registry]) -> None:
    """An operation refused while collecting (here: the 100-action limit) leaves the block as it was."""
    reg = dynamo(Crate, Note)
    with reg.transaction():
        for i in range(98):
            Crate.create(k=f"c{i}")
        note = Note.create(title="t", slug="s1")  # the item and its guard: 100 actions
        with pytest.raises(odm.QueryError, match="100"):
            note.update(slug="s2", title="changed")  # folds the item, then needs a 101st action
    got = Note.get(note.id)
    assert (got.slug, got.title) == ("s1", "t") and Crate.query().count() == 98
    with pytest.raises(odm.DuplicateKey):
        Note.create(title="other", slug="s1")
    Note.create(title="other", slug="s2")


def test_a_unique_value_moved_in_a_block_is_checked_not_kept(dynamo: Callable[..., odm.Registry],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    reg = dynamo(Note)
    sent = spy(reg, monkeypatch)
    with reg.transaction():
        note = Note.create(title="t", slug="s1")
        note.update(slug="s2")
    (item, *guards), = sent
    assert item["Put"]["Item"]["slug"] == {"S": "s2"} and "attribute_not_exists(" in item["Put"]["ConditionExpression"]
    kinds = sorted((next(iter(g)), next(iter(g.values()))["Key" if "Delete" in g else "Item"]["guard"]["S"])
                   for g in guards)
    assert [k for k, _ in kinds] == ["Delete", "Put"] and "s1" in kinds[0][1] and "s2" in kinds[1][1]
    # s1 was claimed then given back: a Delete on the claim's condition (free, or ours)
    assert "attribute_not_exists(" in next(iter(guards[0].values()))["ConditionExpression"]
    assert Note.get(note.id).slug == "s2"
