"""DynamoDB insert_many transactions: conflicts and throttling are retried, then reported exactly.

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
