"""The SQL backends' async runners (SQLite on worker threads, PostgreSQL on psycopg's AsyncConnectionPool).

The same repository operations as the sync suite, awaited: both styles see the same data
(SQLite ``:memory:`` included), many concurrent calls through one backend lose and duplicate
nothing, and a cancelled stream or write leaves the backend usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import fields
from odm.backends.base import QuerySpec
from odm.binding import Binding
from odm.expressions.nodes import Compare, Path

SQL = ("sqlite", "sqlite-memory", "postgres")
#: When to cancel: before the first request, during it, between statements, after the commit.
DELAYS = (0.0, 0.001, 0.005, 0.02, 0.05, 0.1, 0.3)


class AsyncItem(odm.Model):
    k = fields.String(required=True)
    n = fields.Integer()
    tag = fields.String()
    amount = fields.Decimal()

    class Meta:
        name = "async_sql_items"
        hash_key = "k"
        indexes = [odm.Index("tag", unique=True)]


@pytest.fixture
def bound(target: Any, make_registry: Callable[..., odm.Registry]) -> Binding:
    if target.name not in SQL:
        pytest.skip("the SQL backends' async runners (the others have their own tests)")
    make_registry(AsyncItem)
    return AsyncItem._bound()


def doc(b: Binding, k: str, n: int = 0, **more: Any) -> dict[str, Any]:
    return b.encode(AsyncItem(k=k, n=n, **more))


def key(b: Binding, k: str) -> tuple[Any, ...]:
    return b.key(k)


def n_is(value: int) -> Compare:
    return Compare("eq", Path(("n",), AsyncItem._fields["n"]), value)


async def pool_is_idle(b: Binding) -> bool:
    """Every connection of the backend is back where it belongs (no transaction, no stream)."""
    backend = b.backend
    if b.backend.name == "postgres":
        pool = backend._apool
        # Connections the pool is still opening in the background count in pool_size: wait for them.
        for _ in range(200):
            stats = pool.get_stats()
            if stats["pool_available"] == stats["pool_size"] and not stats.get("requests_waiting"):
                return True
            await asyncio.sleep(0.01)
        return False
    if backend._lock.acquire(blocking=False):  # no worker holds the connection's transaction
        backend._lock.release()
        return not backend.conn.in_transaction
    return False


def test_every_operation_awaited_matches_the_sync_result(bound: Binding) -> None:
    repo = bound.repo
    repo.insert(doc(bound, "s1", 1))  # written by a sync call, read by async ones (and back)

    async def main() -> None:
        assert (await repo.aget(key(bound, "s1")))["n"] == 1
        await repo.ainsert(doc(bound, "a1", 2, amount=Decimal("12345678901234567890.123456789")))
        with pytest.raises(odm.DuplicateKey):
            await repo.ainsert(doc(bound, "a1", 3))
        await repo.aput(doc(bound, "a2", 5))
        with pytest.raises(odm.ConditionFailed):
            await repo.aput(doc(bound, "a2", 6), condition=n_is(4))
        await repo.aput(doc(bound, "a2", 6), condition=n_is(5))
        changed = await repo.aupdate(key(bound, "a1"), {"tag": "t"}, {"n": 10, "amount": Decimal("0.000000001")}, [])
        assert changed is not None and changed["n"] == 12
        with pytest.raises(odm.ConditionFailed):
            await repo.aupdate(key(bound, "a1"), {"n": 0}, {}, [], condition=n_is(99))
        await repo.ainsert_many([doc(bound, f"m{i}", i) for i in range(5)])
        with pytest.raises(odm.DuplicateKey) as dup:
            await repo.ainsert_many([doc(bound, "m9", 9), doc(bound, "m1", 1), doc(bound, "x", tag="t")])
        assert set(dup.value.failed) == {key(bound, "m1"), key(bound, "x")}  # type: ignore[attr-defined]
        assert await repo.aget(key(bound, "m9")) is None  # all or nothing
        got = await repo.abatch_get([key(bound, k) for k in ("m1", "m3", "nope", "s1")])
        assert sorted(d["k"] for d in got) == ["m1", "m3", "s1"]
        assert await repo.acount(QuerySpec()) == 8
        found = [d["k"] async for d in repo.afind(QuerySpec(order=AsyncItem.query().order_by(AsyncItem.k).spec.order))]
        assert found == sorted(found) and len(found) == 8
        page, cursor = await repo.apage(QuerySpec(), 3, None)
        assert len(page) == 3 and cursor is not None
        assert await repo.adelete(key(bound, "m0")) is True
        assert await repo.adelete(key(bound, "m0")) is False
        with pytest.raises(odm.ConditionFailed):
            await repo.adelete(key(bound, "m1"), condition=n_is(7))
        assert await repo.adelete_where(QuerySpec(where=Compare("lt", Path(("n",), AsyncItem._fields["n"]), 3))) == 3

    asyncio.run(main())
    # What the async calls wrote, a sync call reads: every digit of the Decimal included.
    got = AsyncItem.get("a1")
    assert got.n == 12 and got.tag == "t" and got.amount == Decimal("12345678901234567890.123456790")
    assert AsyncItem.get("a2").n == 6
    assert sorted(i.k for i in AsyncItem.query()) == ["a1", "a2", "m3", "m4"]


def test_200_concurrent_inserts_and_1000_concurrent_gets(bound: Binding) -> None:
    repo = bound.repo

    async def main() -> None:
        await asyncio.gather(*(repo.ainsert(doc(bound, f"c{i:03d}", i)) for i in range(200)))
        got = await asyncio.gather(*(repo.aget(key(bound, f"c{i % 200:03d}")) for i in range(1000)))
        assert [d["n"] for d in got] == [i % 200 for i in range(1000)]
        assert await repo.acount(QuerySpec()) == 200
        assert await pool_is_idle(bound)
        if bound.backend.name == "postgres":
            assert bound.backend._apool.get_stats()["pool_size"] <= bound.backend.pool_size  # bounded

    asyncio.run(main())
    assert sorted(i.n for i in AsyncItem.query()) == list(range(200))  # none lost, none twice


def test_a_stream_left_early_releases_its_connection(bound: Binding) -> None:
    repo = bound.repo
    repo.insert_many([doc(bound, f"s{i:04d}", i) for i in range(1200)])  # more than one batch

    async def main() -> None:
        for _ in range(15):  # more than the pool holds: a leaked connection would starve the loop
            stream = repo.afind(QuerySpec())
            seen = 0
            async for _doc in stream:
                seen += 1
                if seen == 3:
                    break
            await stream.aclose()  # type: ignore[attr-defined]
            assert await pool_is_idle(bound)
        # The next calls work, async and sync, reads and writes.
        await repo.aput(doc(bound, "s0000", -1))
        assert (await repo.aget(key(bound, "s0000")))["n"] == -1
        assert len([d async for d in repo.afind(QuerySpec())]) == 1200

    asyncio.run(main())
    AsyncItem.get("s0001").update(n=odm.inc(1))
    assert AsyncItem.query().count() == 1200


def test_a_stream_cancelled_while_fetching_releases_its_connection(bound: Binding) -> None:
    repo = bound.repo
    repo.insert_many([doc(bound, f"r{i:04d}", i) for i in range(2000)])
    if bound.backend.name == "postgres":
        bound.backend.batch_size = 20  # type: ignore[attr-defined]  # many round trips to cancel in

    async def consume() -> int:
        count = 0
        async for _doc in repo.afind(QuerySpec()):
            count += 1
            await asyncio.sleep(0)
        return count

    async def main() -> None:
        for delay in (0.0, 0.001, 0.005, 0.02):
            task = asyncio.create_task(consume())
            await asyncio.sleep(delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.05)  # the async generator's aclose is scheduled by the loop
            assert await repo.acount(QuerySpec()) == 2000

    asyncio.run(main())
    assert AsyncItem.query().count() == 2000


def test_a_write_cancelled_midway_happens_whole_or_not_at_all(bound: Binding, caplog: pytest.LogCaptureFixture) -> None:
    repo = bound.repo

    async def main() -> None:
        for attempt, delay in enumerate(DELAYS):
            docs = [doc(bound, f"w{attempt}-{i:04d}", i) for i in range(1500)]
            task = asyncio.create_task(repo.ainsert_many(docs))
            await asyncio.sleep(delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.05)
            stored = await repo.acount(QuerySpec(where=Compare("ge", Path(("k",), AsyncItem._fields["k"]), f"w{attempt}-")))
            stored -= await repo.acount(QuerySpec(where=Compare("ge", Path(("k",), AsyncItem._fields["k"]), f"w{attempt}.")))
            assert stored in (0, 1500), stored
            # The next call works: the same items, written whole now (or found written already).
            try:
                await repo.ainsert_many(docs)
            except odm.DuplicateKey:
                assert stored == 1500
            one = await repo.aget(key(bound, f"w{attempt}-0007"))
            assert one is not None and one["n"] == 7
            single = asyncio.create_task(repo.aupdate(key(bound, f"w{attempt}-0001"), {}, {"n": 100}, []))
            await asyncio.sleep(delay)
            single.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await single
            await asyncio.sleep(0.05)
            assert (await repo.aget(key(bound, f"w{attempt}-0001")))["n"] in (1, 101)

    asyncio.run(main())
    assert AsyncItem.query().count() == len(DELAYS) * 1500
    # Each cancelled operation ended its own transaction: the pool had nothing to roll back or discard.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_both_styles_on_one_backend_across_event_loops(bound: Binding) -> None:
    repo = bound.repo

    async def write(k: str) -> None:
        await repo.ainsert(doc(bound, k, 1))

    async def read(k: str) -> dict[str, Any] | None:
        return await repo.aget(key(bound, k))

    asyncio.run(write("first"))  # the async pool of this loop is left behind when the loop ends
    assert AsyncItem.get("first").n == 1
    AsyncItem.create(k="second", n=2)
    assert asyncio.run(read("second"))["n"] == 2  # type: ignore[index]  # a new loop gets a new pool
    assert asyncio.run(read("first"))["n"] == 1  # type: ignore[index]


def test_sync_runs_inside_async_ones_and_aclose_releases_everything(bound: Binding) -> None:
    repo = bound.repo
    backend = bound.backend

    async def main() -> None:
        await repo.ainsert(doc(bound, "x", 1))
        assert repo.get(key(bound, "x"))["n"] == 1  # type: ignore[index]  # a sync call from a coroutine
        assert await repo.async_sync() == []  # already in place: nothing to do, awaited
        await repo.adelete_where(QuerySpec())
        await backend.aclose()
        await backend.aclose()  # twice is fine
        with pytest.raises(odm.BackendUnavailable):
            await repo.aget(key(bound, "x"))

    asyncio.run(main())
    with pytest.raises(odm.BackendUnavailable):
        repo.get(key(bound, "x"))
