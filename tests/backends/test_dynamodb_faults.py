"""DynamoDB under faults: throttling and partial batches through a proxy, and a server killed mid-stream.

The proxy (tests/dynamo_proxy.py) sits between boto3 and the session's DynamoDB Local. Every
check compares what the ODM reports with what a direct client finds on the server.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import odm
from odm import Model, fields
from odm.backends.dynamodb.retry import RetryPolicy
from odm.schema import Index

from .. import servers
from ..dynamo_proxy import DynamoFaultProxy

pytest.importorskip("boto3")


class FaultLog(Model):
    stream = fields.String(required=True)
    seq = fields.Integer(required=True)
    pad = fields.String()

    class Meta:
        name = "fault_logs"
        hash_key = "stream"
        range_key = "seq"


class Direct:
    """The session's DynamoDB Local seen without the proxy: the raw client and the tables' prefix."""

    def __init__(self, reg: odm.Registry) -> None:
        self.reg = reg
        self.backend: Any = reg.backend
        self.endpoint: str = self.backend.endpoint
        self.prefix: str = self.backend.prefix

    def items(self, model: type[Model]) -> list[dict[str, Any]]:
        table = self.prefix + model._meta.name
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = self.backend.client.scan(**kwargs)
            out += page["Items"]
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def seqs(self, model: type[Model]) -> list[int]:
        return sorted(int(item["seq"]["N"]) for item in self.items(model))


@pytest.fixture
def direct(_targets: Callable[[str], Any]) -> Iterator[Direct]:
    """The FaultLog table synced on the session's server; the model is then free to bind elsewhere."""
    target = _targets("dynamodb")
    target.new_scope()
    setup = target.registry()
    try:
        setup.register(FaultLog)
        setup.sync()
        FaultLog.query().delete()
    finally:
        setup.close()
    watcher = target.registry()
    yield Direct(watcher)
    watcher.close()


#: The default attempts (what the tests count) with a tenth of the waits between them: the
#: backoff's length is not what these tests check, and at full throttling it is seconds per call.
FAST_RETRY = RetryPolicy(base=RetryPolicy.base / 10, cap=RetryPolicy.cap / 10)


@pytest.fixture(autouse=True)
def fast_batch_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch calls' waits between rounds of unprocessed items, a tenth as long (as FAST_RETRY)."""
    from odm.backends.dynamodb import repository

    monkeypatch.setattr(repository, "BACKOFF_BASE", repository.BACKOFF_BASE / 10)
    monkeypatch.setattr(repository, "BACKOFF_CAP", repository.BACKOFF_CAP / 10)


def through(proxy: DynamoFaultProxy, direct: Direct) -> odm.Registry:
    reg = odm.Registry("dynamodb", endpoint=proxy.endpoint, awsRegion="us-east-1", awsSecretKeyId="test",
                       awsSecretAccessKey="test", tablePrefix=direct.prefix)
    reg.backend.retry = FAST_RETRY  # type: ignore[attr-defined]
    reg.register(FaultLog)
    return reg


PAD = "x" * 4000  # 300 items are over 1 MB: queries take two pages


def test_every_write_lands_and_every_read_is_complete_under_throttling(direct: Direct) -> None:
    with DynamoFaultProxy(direct.endpoint, throttle=0.5, trim=0.5, conflict=0.3, seed=8) as proxy:
        reg = through(proxy, direct)
        try:
            FaultLog.insert_many([FaultLog(stream="s", seq=i, pad=PAD) for i in range(300)])
            assert direct.seqs(FaultLog) == list(range(300))  # every write landed, on the server

            got = FaultLog.batch_get([("s", i) for i in range(300)])
            assert [x.seq for x in got] == list(range(300)) and all(x.pad == PAD for x in got)

            streamed = list(FaultLog.query(FaultLog.stream == "s"))
            assert [x.seq for x in streamed] == list(range(300))
            assert FaultLog.query(FaultLog.stream == "s").count() == 300
            assert FaultLog.query(FaultLog.stream == "s", FaultLog.seq >= 100).count() == 200

            for i in range(300, 320):  # single-item calls too
                FaultLog.create(stream="s", seq=i)
                assert FaultLog.get("s", i).seq == i
            assert FaultLog.delete_many(FaultLog.query(FaultLog.stream == "s", FaultLog.seq >= 150)) == 170
            assert direct.seqs(FaultLog) == list(range(150))
        finally:
            reg.close()
        # The faults really happened, and the retries stayed within a budget: the calls above
        # need about 90 requests unthrottled; at 50% throttling about 180 are expected.
        assert proxy.requests("throttled") > 30 and proxy.requests("trimmed") > 0, proxy.counts
        assert proxy.requests() < 400, proxy.counts


def test_full_throttling_ends_in_a_clear_error_naming_what_was_not_written(direct: Direct) -> None:
    with DynamoFaultProxy(direct.endpoint, throttle=1.0, seed=8) as proxy:
        reg = through(proxy, direct)
        try:
            with pytest.raises(odm.BackendUnavailable, match=r"60 .*not written: \('s', 0\), \('s', 1\)"):
                FaultLog.insert_many([FaultLog(stream="s", seq=i) for i in range(60)])
            assert direct.seqs(FaultLog) == []
            assert proxy.requests() <= 32, proxy.counts  # bounded: no endless retrying

            proxy.set(throttle=0.0)
            FaultLog.insert_many([FaultLog(stream="s", seq=i) for i in range(60)])
            # Reads pass, every delete is throttled: the error names what was not deleted.
            proxy.set(throttle=1.0, only=frozenset({"BatchWriteItem"}))
            before = proxy.requests()
            with pytest.raises(odm.BackendUnavailable, match=r"25 item\(s\) not deleted: \('s', 0\).*\('s', 24\)"
                                                             r".*0 item\(s\) were deleted.*Later matches.*not deleted"):
                FaultLog.delete_many(FaultLog.query(FaultLog.stream == "s"))
            assert direct.seqs(FaultLog) == list(range(60))
            assert proxy.requests() - before <= 18, proxy.counts

            proxy.set(only=frozenset({"BatchGetItem", "Query", "GetItem"}))
            before = proxy.requests()
            for call in (lambda: FaultLog.batch_get([("s", 1)]), lambda: FaultLog.query(FaultLog.stream == "s").count(),
                         lambda: FaultLog.get("s", 1)):
                with pytest.raises(odm.BackendUnavailable, match="ProvisionedThroughputExceededException.*attempts"):
                    call()
            assert proxy.requests() - before == 48, proxy.counts  # 16 attempts each, then the error
        finally:
            reg.close()


def test_lost_answers_are_reported_as_unconfirmed_not_as_unwritten(direct: Direct) -> None:
    with DynamoFaultProxy(direct.endpoint, seed=8) as proxy:
        reg = through(proxy, direct)
        try:
            FaultLog.insert_many([FaultLog(stream="s", seq=i) for i in range(60)])
            # Every batch delete reaches the server, which applies it; the answer never comes back.
            proxy.set(drop=1.0, only=frozenset({"BatchWriteItem"}))
            with pytest.raises(odm.BackendUnavailable, match="cannot be reached") as info:
                FaultLog.delete_many(FaultLog.query(FaultLog.stream == "s"))
        finally:
            reg.close()
    message = str(info.value)
    assert re.search(r"25 item\(s\) not confirmed deleted: \('s', 0\).*\('s', 24\)\. They may or may not", message)
    assert "Later matches of the query were not deleted either" in message
    assert direct.seqs(FaultLog) == list(range(25, 60))  # the unconfirmed ones did land; no other was touched
    assert proxy.requests("dropped") == 4, proxy.counts  # the same request, sent 4 times, then the error


# -- a server stopped mid-stream ---------------------------------------------------------------


def _start_local(port: int, data: Path) -> servers.Process:
    return servers.Process("dynamodb-local-disk", servers.dynamodb_local_argv("-dbPath", str(data), "-port", str(port)), port)


#: Items of PAD (4 KB) streamed when the server is killed: over 1 MB, so the query takes two pages.
STREAMED = 300


def _kill(proc: servers.Process) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.proc.wait(10)


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("ODM_TEST_DYNAMODB_ENDPOINT")), reason="needs a DynamoDB Local it can stop")
def test_server_killed_mid_stream_is_backend_unavailable_and_the_next_call_recovers(tmp_path: Path) -> None:
    port = servers.free_port()
    proc = _start_local(port, tmp_path)
    reg = odm.Registry("dynamodb", endpoint=f"http://127.0.0.1:{port}", awsRegion="us-east-1",
                       awsSecretKeyId="test", awsSecretAccessKey="test", tablePrefix=f"k{uuid.uuid4().hex[:6]}_")
    try:
        reg.register(FaultLog)
        reg.sync()
        FaultLog.insert_many([FaultLog(stream="s", seq=i, pad=PAD) for i in range(STREAMED)])  # over 1 MB: 2 pages
        seen = 0
        with pytest.raises(odm.BackendUnavailable, match="cannot be reached") as info:
            for _ in FaultLog.query(FaultLog.stream == "s"):
                seen += 1
                if seen == 10:  # the first page is in hand; the server goes away before the next
                    _kill(proc)
        assert 10 <= seen < STREAMED
        assert info.value.__cause__ is not None  # the driver's error, kept for debugging

        proc = _start_local(port, tmp_path)
        assert FaultLog.query(FaultLog.stream == "s").count() == STREAMED  # the next call recovers, data intact
        assert [x.seq for x in FaultLog.query(FaultLog.stream == "s")] == list(range(STREAMED))
    finally:
        reg.close()
        proc.stop()



# -- one write whose answer is lost -------------------------------------------------------------


class LostCounter(Model):
    name = fields.String(required=True)
    n = fields.Integer()
    version = fields.Integer()

    class Meta:
        name = "lost_counters"
        hash_key = "name"
        version_field = "version"


class LostHandle(Model):
    name = fields.String(required=True)
    handle = fields.String()
    n = fields.Integer()

    class Meta:
        name = "lost_handles"
        hash_key = "name"
        indexes = [Index("handle", unique=True)]


class LostNote(Model):
    name = fields.String(required=True)
    text = fields.String()

    class Meta:
        name = "lost_notes"
        hash_key = "name"


@pytest.fixture
def lost(_targets: Callable[[str], Any]) -> Iterator[tuple[DynamoFaultProxy, odm.Registry]]:
    """LostCounter and LostHandle synced on the session's server, then bound through a proxy."""
    target = _targets("dynamodb")
    target.new_scope()
    setup = target.registry()
    try:
        setup.register(LostCounter)
        setup.register(LostHandle)
        setup.register(LostNote)
        setup.sync()
        for model in (LostCounter, LostHandle, LostNote):
            model.query().delete()
        prefix = setup.backend.prefix
        endpoint = setup.backend.endpoint
    finally:
        setup.close()
    with DynamoFaultProxy(endpoint) as proxy:
        reg = odm.Registry("dynamodb", endpoint=proxy.endpoint, awsRegion="us-east-1", awsSecretKeyId="test",
                           awsSecretAccessKey="test", tablePrefix=prefix)
        reg.backend.retry = FAST_RETRY  # type: ignore[attr-defined]
        reg.register(LostCounter)
        reg.register(LostHandle)
        reg.register(LostNote)
        try:
            yield proxy, reg
        finally:
            reg.close()


UNCONFIRMED = r"lost the answer to {op} on '\S+lost_counters' \(key 'a'\): the write may or may not have been applied"


def test_an_increment_whose_answer_is_lost_is_applied_once_and_reported_unconfirmed(lost: Any) -> None:
    proxy, _ = lost
    c = LostCounter.create(name="a", n=0)
    proxy.drop_next.add("UpdateItem")  # the server applies the ADD; the answer never comes back
    with pytest.raises(odm.BackendUnavailable, match=UNCONFIRMED.format(op="update_item")):
        c.update(n=odm.inc(1))
    assert LostCounter.get("a").n == 1  # applied exactly once, never twice
    assert proxy.counts[("UpdateItem", "dropped")] == 1 and proxy.counts[("UpdateItem", "forwarded")] == 0


def test_a_create_whose_answer_is_lost_is_never_a_false_duplicate_key(lost: Any) -> None:
    proxy, _ = lost
    proxy.drop_next.add("PutItem")
    with pytest.raises(odm.BackendUnavailable, match=UNCONFIRMED.format(op="put_item")):
        LostCounter.create(name="a", n=1)
    assert LostCounter.get("a").n == 1  # it was written; the user was not told "nothing was written"


def test_a_versioned_save_whose_answer_is_lost_is_not_a_false_concurrent_modification(lost: Any) -> None:
    proxy, _ = lost
    c = LostCounter.create(name="a", n=1)
    c.n = 2
    proxy.drop_next.add("PutItem")
    with pytest.raises(odm.BackendUnavailable, match=UNCONFIRMED.format(op="put_item")):
        c.save()
    stored = LostCounter.get("a")
    assert (stored.n, stored.version) == (2, 2)
    proxy.drop_next.add("DeleteItem")
    with pytest.raises(odm.BackendUnavailable, match=UNCONFIRMED.format(op="delete_item")):
        stored.delete()
    with pytest.raises(odm.NotFound):  # deleted once; not "does not match the delete condition"
        LostCounter.get("a")


def test_reads_and_unconditional_puts_whose_answer_is_lost_are_sent_again(lost: Any) -> None:
    proxy, _ = lost
    proxy.drop_next.add("PutItem")
    LostNote(name="a", text="t").save()  # no condition, no version: a second copy changes nothing
    proxy.drop_next.add("GetItem")
    assert LostNote.get("a").text == "t"
    assert proxy.counts[("PutItem", "dropped")] == 1 and proxy.counts[("PutItem", "forwarded")] == 1
    assert proxy.counts[("GetItem", "dropped")] == 1 and proxy.counts[("GetItem", "forwarded")] == 1


def test_guarded_writes_whose_answer_is_lost_land_once_and_succeed(lost: Any) -> None:
    """Writes that touch a unique value are transactions: their repeat carries the same token."""
    proxy, _ = lost
    proxy.drop_next.add("TransactWriteItems")
    h = LostHandle.create(name="a", handle="x", n=0)  # no false DuplicateKey from its own guard
    proxy.drop_next.add("TransactWriteItems")
    h.update(handle="y", n=odm.inc(1))
    assert (LostHandle.get("a").handle, LostHandle.get("a").n) == ("y", 1)  # the ADD applied once
    assert proxy.counts[("TransactWriteItems", "dropped")] == 2
    LostHandle.create(name="b", handle="x")  # the first guard was released, the second claimed
    with pytest.raises(odm.DuplicateKey):
        LostHandle.create(name="c", handle="y")


def _after_the_server(reg: odm.Registry, op: str, error: Exception) -> list[int]:
    """Make the client's next ``op`` reach the real server and then fail as if its answer went wrong."""
    client = reg.backend.client  # type: ignore[attr-defined]
    real = getattr(client, op)
    calls: list[int] = []

    def once(**kwargs: Any) -> Any:
        calls.append(1)
        out = real(**kwargs)
        if len(calls) == 1:
            raise error
        return out

    setattr(client, op, once)
    return calls


def test_a_server_error_after_an_increment_is_never_a_second_increment(lost: Any) -> None:
    import botocore.exceptions as bexc

    _, reg = lost
    c = LostCounter.create(name="a", n=0)
    err = bexc.ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")
    calls = _after_the_server(reg, "update_item", err)
    with pytest.raises(odm.BackendUnavailable, match=UNCONFIRMED.format(op="update_item")):
        c.update(n=odm.inc(1))
    assert LostCounter.get("a").n == 1 and len(calls) == 1


def test_a_read_timeout_is_repeated_for_reads_and_unconfirmed_for_writes(lost: Any) -> None:
    import botocore.exceptions as bexc

    _, reg = lost
    LostCounter.create(name="a", n=5)
    calls = _after_the_server(reg, "get_item", bexc.ReadTimeoutError(endpoint_url="http://x"))
    assert LostCounter.get("a").n == 5 and len(calls) == 2  # a read is sent again
    calls = _after_the_server(reg, "update_item", bexc.ReadTimeoutError(endpoint_url="http://x"))
    with pytest.raises(odm.BackendUnavailable, match=UNCONFIRMED.format(op="update_item")):
        LostCounter.get("a").update(n=odm.inc(1))
    assert LostCounter.get("a").n == 6 and len(calls) == 1
