"""The async path on DynamoDB Local: the same operations awaited on aiobotocore (odm.ops, issue 10).

Every test runs its coroutine with ``asyncio.run`` and closes the backend's async client
(``await backend.aclose()``) before the loop ends. Repository calls are the ``a``-prefixed
twins of the sync ones (``binding.repo.aget``...); model objects go through their binding's
encode/decode, as the model layer does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

import odm
from odm import Index, Model, fields
from odm.backends.base import QuerySpec

from ..conftest import registries

pytest.importorskip("aiobotocore")

T = TypeVar("T")


class AsyncItem(Model):
    code = fields.String(required=True)
    cat = fields.String()
    n = fields.Integer()
    slug = fields.String()
    pad = fields.String()

    class Meta:
        name = "async_items"
        hash_key = "code"
        indexes = [Index("slug", unique=True)]
        gsi = {"by_cat": {"hash_key": "cat", "range_key": "n"}}


class AsyncLog(Model):
    stream = fields.String(required=True)
    seq = fields.Integer(required=True)
    text = fields.String()

    class Meta:
        name = "async_logs"
        hash_key = "stream"
        range_key = "seq"


@pytest.fixture
def dynamo(_targets: Callable[[str], Any]) -> Iterator[Callable[..., odm.Registry]]:
    """Registries on the session's DynamoDB Local only (this file is DynamoDB's async suite)."""
    target = _targets("dynamodb")
    target.new_scope()
    yield from registries(target)


def arun(reg: odm.Registry, main: Callable[[], Awaitable[T]]) -> T:
    """``main()`` in a fresh event loop; the backend's async client is closed before the loop ends."""

    async def wrapped() -> T:
        try:
            return await main()
        finally:
            await reg.backend.aclose()

    return asyncio.run(wrapped())


def repo_of(model: type[Model]) -> Any:
    binding = model._odm_binding
    assert binding is not None
    return binding.repo


def encode(obj: Model) -> dict[str, Any]:
    binding = type(obj)._odm_binding
    assert binding is not None
    return binding.encode(obj)


def decode(model: type[Model], doc: dict[str, Any] | None) -> Any:
    binding = model._odm_binding
    assert binding is not None
    return None if doc is None else binding.decode(doc)


def key(model: type[Model], *values: Any) -> tuple[Any, ...]:
    binding = model._odm_binding
    assert binding is not None
    return binding.key(*values)


def test_async_crud_round_trips_and_shares_data_with_sync(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(AsyncItem, AsyncLog)
    items, logs = repo_of(AsyncItem), repo_of(AsyncLog)
    AsyncItem.create(code="sync", cat="c", n=0, slug="s-sync")  # written by the sync API

    async def main() -> None:
        # What a sync call wrote, an async call reads; and back.
        assert decode(AsyncItem, await items.aget(key(AsyncItem, "sync"))) == AsyncItem.get("sync")
        a = AsyncItem(code="a", cat="c", n=1, slug="s-a")
        await items.ainsert(encode(a))
        assert decode(AsyncItem, await items.aget(key(AsyncItem, "a"))) == a
        assert AsyncItem.get("a") == a
        with pytest.raises(odm.DuplicateKey):
            await items.ainsert(encode(AsyncItem(code="a", slug="other")))
        with pytest.raises(odm.DuplicateKey):  # the unique guard, through TransactWriteItems
            await items.ainsert(encode(AsyncItem(code="b", slug="s-a")))
        assert await items.aget(key(AsyncItem, "b")) is None

        # put with a condition, update with increments, delete with a condition.
        a.n = 5
        await items.aput(encode(a), AsyncItem.n == 1)
        with pytest.raises(odm.ConditionFailed):
            await items.aput(encode(a), AsyncItem.n == 1)
        doc = await items.aupdate(key(AsyncItem, "a"), {}, {"n": 2}, [])
        assert decode(AsyncItem, doc).n == 7
        doc = await items.aupdate(key(AsyncItem, "a"), {"slug": "s-a2"}, {}, [])  # guarded update
        assert decode(AsyncItem, doc).slug == "s-a2"
        await items.ainsert(encode(AsyncItem(code="b", slug="s-a")))  # the old value is free again
        assert await items.aupdate(key(AsyncItem, "zz"), {"cat": "x"}, {}, []) is None
        with pytest.raises(odm.ConditionFailed):
            await items.adelete(key(AsyncItem, "b"), AsyncItem.n == 99)
        assert await items.adelete(key(AsyncItem, "b")) is True
        assert await items.adelete(key(AsyncItem, "b")) is False

        # insert_many (one transaction), batch_get, count, find, page, delete_where.
        await logs.ainsert_many([encode(AsyncLog(stream="s", seq=i, text=f"t{i}")) for i in range(30)])
        with pytest.raises(odm.DuplicateKey):
            await logs.ainsert_many([encode(AsyncLog(stream="s", seq=i)) for i in (29, 30)])
        got = await logs.abatch_get([key(AsyncLog, "s", i) for i in (3, 1, 99)])
        assert sorted(decode(AsyncLog, d).seq for d in got) == [1, 3]
        spec = AsyncLog.query(AsyncLog.stream == "s", AsyncLog.seq >= 10).spec
        assert await logs.acount(spec) == 21
        assert [decode(AsyncLog, d).seq async for d in logs.afind(spec)] == list(range(10, 31))
        seen: list[int] = []
        cursor = None
        while True:
            page, cursor = await logs.apage(spec, 8, cursor)
            seen += [decode(AsyncLog, d).seq for d in page]
            if cursor is None:
                break
        assert seen == list(range(10, 31))
        assert await logs.adelete_where(AsyncLog.query(AsyncLog.stream == "s", AsyncLog.seq < 5).spec) == 5
        assert await logs.acount(AsyncLog.query(AsyncLog.stream == "s").spec) == 26
        assert await items.adelete_where(AsyncItem.query(AsyncItem.cat == "c").spec) == 2  # guarded deletes
        assert await items.acount(QuerySpec()) == 0

    arun(reg, main)
    assert AsyncLog.query(AsyncLog.stream == "s").count() == 26  # the sync client still works afterwards
    AsyncItem.create(code="again", slug="s-a2")  # the async guarded delete released its guard
    # A guarded put that changes no unique value is one plain put_item (it used to pass
    # ReturnValuesOnConditionCheckFailure twice: a TypeError, sync and async alike).
    again = AsyncItem.get("again")
    again.n = 3
    items.put(encode(again))
    assert AsyncItem.get("again").n == 3


def test_async_schema_sync_creates_tables_and_guards(dynamo: Callable[..., odm.Registry]) -> None:
    meta = type("Meta", (), {"name": f"async_fresh_{uuid.uuid4().hex[:8]}", "hash_key": "code",
                             "indexes": [Index("slug", unique=True)], "gsi": {"by_cat": {"hash_key": "cat"}}})
    # No TTL: a 7th TTL-enabled table on the shared DynamoDB Local stalls GSI creation (docs/testing.md).
    fresh: Any = type("Fresh", (Model,), {"code": fields.String(required=True), "slug": fields.String(),
                                          "cat": fields.String(), "expires": fields.DateTime(), "Meta": meta})
    reg = dynamo(fresh, sync=False)

    async def main() -> list[Any]:
        return await repo_of(fresh).async_sync()  # type: ignore[no-any-return]

    actions = arun(reg, main)
    assert [a.verb for a in actions] == ["created table", "created table", "built unique guards"]
    assert reg.sync() == []  # the sync API finds it all in place
    fresh.create(code="x", slug="same", cat="c")
    with pytest.raises(odm.DuplicateKey):
        fresh.create(code="y", slug="same")


def test_200_concurrent_inserts_and_1000_concurrent_gets_through_one_backend(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(AsyncItem)
    repo = repo_of(AsyncItem)
    objs = [AsyncItem(code=f"c{i:03}", cat="k", n=i, slug=f"slug-{i}") for i in range(200)]

    async def main() -> None:
        await asyncio.gather(*(repo.ainsert(encode(o)) for o in objs))
        keys = [key(AsyncItem, o.code) for o in objs] * 5
        docs = await asyncio.gather(*(repo.aget(k) for k in keys))
        assert [decode(AsyncItem, d) for d in docs] == objs * 5
        assert await repo.acount(QuerySpec()) == 200
        found = [decode(AsyncItem, d).code async for d in repo.afind(AsyncItem.query(AsyncItem.cat == "k").spec)]
        assert sorted(found) == sorted(o.code for o in objs) and len(set(found)) == 200
        # Every unique value is held once: a second claim of any of them is refused.
        clashes = await asyncio.gather(*(repo.ainsert(encode(AsyncItem(code=f"d{i}", slug=f"slug-{i}")))
                                         for i in range(0, 200, 20)), return_exceptions=True)
        assert all(isinstance(e, odm.DuplicateKey) for e in clashes)

    arun(reg, main)
    assert AsyncItem.query().count() == 200  # the same data, seen by the sync API


def test_cancelled_async_iteration_releases_its_connection(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(AsyncItem)
    repo = repo_of(AsyncItem)
    pad = "x" * 100_000  # ~10 items a 1 MB page: 40 items are several pages
    AsyncItem.insert_many([AsyncItem(code=f"p{i:02}", cat="big", n=i, pad=pad) for i in range(40)])
    spec = AsyncItem.query(AsyncItem.cat == "big").spec

    async def main() -> None:
        # More abandoned iterations than the pool has connections (20): a leak would hang here.
        for _ in range(30):
            stream = repo.afind(spec)
            async for doc in stream:
                assert decode(AsyncItem, doc).cat == "big"
                break
            await asyncio.wait_for(stream.aclose(), 10)
            assert repo.last_read.requests == 1  # no page fetched past the one consumed
        got = await asyncio.wait_for(repo.aget(key(AsyncItem, "p07")), 10)
        assert decode(AsyncItem, got).n == 7
        assert await asyncio.wait_for(repo.acount(spec), 30) == 40

        # Cancelled while a page is in flight: the task ends, the next call works.
        async def consume() -> int:
            return len([d async for d in repo.afind(spec)])

        for delay in (0.0, 0.001, 0.005, 0.02):
            task = asyncio.ensure_future(consume())
            await asyncio.sleep(delay)
            task.cancel()
            try:
                assert await task == 40
            except asyncio.CancelledError:
                pass
            assert await asyncio.wait_for(consume(), 30) == 40

    arun(reg, main)


def test_task_cancelled_mid_write_leaves_all_or_nothing(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(AsyncItem, AsyncLog)
    items, logs = repo_of(AsyncItem), repo_of(AsyncLog)

    async def cancelled(coro: Awaitable[Any], delay: float) -> None:
        task = asyncio.ensure_future(coro)
        await asyncio.sleep(delay)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # A request sent before the cancellation may still be in the server: let it land (or not)
        # before reading, since DynamoDB does not isolate a transaction from reads across items.
        await asyncio.sleep(0.3)

    async def main() -> None:
        delays = [0.0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.05]
        for i, delay in enumerate(delays):
            # An item with a unique guard: item and guard land together (one transaction) or not at all.
            obj = AsyncItem(code=f"w{i}", cat="w", n=i, slug=f"w-slug-{i}")
            await cancelled(items.ainsert(encode(obj)), delay)
            stored = await items.aget(key(AsyncItem, obj.code))
            assert stored is None or decode(AsyncItem, stored) == obj
            other = AsyncItem(code=f"v{i}", slug=obj.slug)
            if stored is None:
                await items.ainsert(encode(other))  # the value was never claimed
            else:
                with pytest.raises(odm.DuplicateKey):
                    await items.ainsert(encode(other))
            # insert_many in one transaction: every item or none.
            batch = [AsyncLog(stream=f"m{i}", seq=j, text="t") for j in range(20)]
            await cancelled(logs.ainsert_many([encode(o) for o in batch]), delay)
            count = await logs.acount(AsyncLog.query(AsyncLog.stream == f"m{i}").spec)
            assert count in (0, 20)
            # An update: applied whole or not at all.
            await cancelled(items.aupdate(key(AsyncItem, f"v{i}"), {"cat": "u"}, {"n": 1}, []), delay)
            after = decode(AsyncItem, await items.aget(key(AsyncItem, f"v{i}")))
            if after is not None:
                assert (after.cat, after.n) in ((None, None), ("u", 1))
        # The backend still works after all those cancellations.
        await items.ainsert(encode(AsyncItem(code="final", slug="final")))
        assert decode(AsyncItem, await items.aget(key(AsyncItem, "final"))).slug == "final"

    arun(reg, main)


def test_async_client_is_reopened_in_a_new_loop_and_closed_twice_safely(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(AsyncLog)
    repo = repo_of(AsyncLog)
    for i in range(2):  # each asyncio.run is a new loop: the client is opened inside it, closed at its end
        async def main(i: int = i) -> None:
            await repo.ainsert(encode(AsyncLog(stream="loops", seq=i)))

        arun(reg, main)
    asyncio.run(reg.backend.aclose())  # nothing open: a no-op
    assert AsyncLog.query(AsyncLog.stream == "loops").count() == 2


def test_async_faults_are_translated_like_sync(dynamo: Callable[..., odm.Registry]) -> None:
    reg = dynamo(AsyncLog)
    repo = repo_of(AsyncLog)
    ghost = odm.Registry("dynamodb", endpoint=reg.backend.endpoint, awsRegion="us-east-1",  # type: ignore[attr-defined]
                         awsSecretKeyId="test", awsSecretAccessKey="test", tablePrefix=f"ghost{uuid.uuid4().hex[:6]}_")
    down = odm.Registry("dynamodb", endpoint="http://127.0.0.1:9", awsRegion="us-east-1",
                        awsSecretKeyId="test", awsSecretAccessKey="test")
    try:
        ghost_repo = ghost.backend.repository(repo.spec)
        down_repo = down.backend.repository(repo.spec)
        down.backend.retry = type(down.backend.retry)(base=0.001)  # type: ignore[attr-defined]

        async def main() -> None:
            with pytest.raises(odm.QueryError, match="does not exist"):
                await ghost_repo.aget(("s", 1))
            with pytest.raises(odm.BackendUnavailable):
                await down_repo.aget(("s", 1))
            await down.backend.aclose()
            await ghost.backend.aclose()

        arun(reg, main)
    finally:
        ghost.close()
        down.close()
