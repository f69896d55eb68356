"""MongoDB through its native async driver (pymongo's AsyncMongoClient) on the real test server.

The repository's operations are the same generators the sync API runs (odm.ops); here they are
awaited through ``binding.repo.a*``: both styles on the same data give the same results, errors
translate alike, many concurrent calls share one client, and a cancelled stream or write leaves
no cursor behind and nothing half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

import pytest

import odm
from odm.backends.base import QuerySpec
from odm.fields import SortKey
from odm.pagination import full_order

from .models import Account, Address, Color, Event, User

pymongo = pytest.importorskip("pymongo")

T = TypeVar("T")
UTC = dt.timezone.utc


@pytest.fixture(autouse=True)
def _mongodb_only(request: pytest.FixtureRequest) -> None:
    """Skip the other targets before their servers are started (autouse fixtures come first)."""
    if request.node.callspec.params.get("target") != "mongodb":
        pytest.skip("the MongoDB backend's async driver")


def arun(reg: odm.Registry, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` in a fresh event loop (``asyncio.run``): the backend's async client is built in it
    and closed as the loop ends (no aclose(): the registry and its sync client stay open)."""
    result = asyncio.run(main())
    assert reg.backend._aclient is None  # type: ignore[attr-defined]
    return result


def open_cursors(reg: odm.Registry) -> int:
    return int(reg.backend.client.admin.command("serverStatus")["metrics"]["cursor"]["open"]["total"])  # type: ignore[attr-defined]


def test_every_operation_awaited_gives_what_the_sync_api_gives(make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(User, Event, Account)
    users = User._bound().repo
    events = Event._bound().repo
    encode = User._bound().encode
    when = dt.datetime(2030, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    ann = encode(User(email="a@x.io", name="Ann", age=30, balance=Decimal("12345678901234567890.123456789"),
                      created_at=when, address=Address(city="Paris"), color=Color.BLUE, tags=["x"]))
    User.create(email="s@x.io", name="Sync", age=7)  # written by the sync API, read by the async one

    async def main() -> None:
        assert await users.async_sync() == []  # already synced: nothing to do, in either style
        await users.ainsert(ann)
        with pytest.raises(odm.DuplicateKey, match="a@x.io"):
            await users.ainsert(ann)
        got = await users.aget(("a@x.io",))
        assert got == users.get(("a@x.io",)) and got is not None
        assert User._bound().decode(got).balance == Decimal("12345678901234567890.123456789")
        assert User._bound().decode(got).created_at == when
        assert (await users.aget(("s@x.io",)))["name"] == "Sync"  # type: ignore[index]
        assert await users.aget(("nobody",)) is None

        # put with a condition, update, delete: the same outcomes and errors as sync
        with pytest.raises(odm.ConditionFailed):
            await users.aput({**ann, "name": "Bob"}, User.name == "Zed")
        await users.aput({**ann, "name": "Bob"}, User.name == "Ann")
        after = await users.aupdate(("a@x.io",), {"name": "Cy"}, {"age": 2}, ["tags"])
        assert after is not None and after["name"] == "Cy" and after["age"] == 32 and "tags" not in after
        with pytest.raises(odm.ConditionFailed):
            await users.aupdate(("a@x.io",), {"name": "Dee"}, {}, [], User.age == 1)
        assert await users.aupdate(("missing",), {"name": "x"}, {}, []) is None

        # insert_many keeps its unordered partial-write contract: the others are written, the refused named
        batch = [{"stream": "s", "seq": i, "kind": "k" if i % 2 else "j"} for i in range(1200)]
        await events.ainsert_many(batch[:600])
        with pytest.raises(odm.DuplicateKey) as clash:
            await events.ainsert_many(batch[590:])
        assert set(clash.value.failed) == {("s", i) for i in range(590, 600)}  # type: ignore[attr-defined]
        assert len(clash.value.written) == 600  # type: ignore[attr-defined]
        assert await events.acount(QuerySpec()) == 1200 == events.count(QuerySpec())

        # find streams in the query's order, batch by batch, as the sync find does
        ordered = QuerySpec(where=Event.kind == "k", order=(SortKey(Event.seq.path, True),), offset=3, limit=500)  # type: ignore[attr-defined]
        streamed = [doc async for doc in events.afind(ordered)]
        assert streamed == list(events.find(ordered)) and len(streamed) == 500
        assert [d["seq"] for d in streamed[:2]] == [1193, 1191]
        keys = [("s", 5), ("s", 7), ("s", 5000)]
        assert sorted(d["seq"] for d in await events.abatch_get(keys)) == [5, 7]

        # pages: the same items and cursors
        first, cursor = await events.apage(QuerySpec(order=(SortKey(Event.seq.path, False),)), 100, None)  # type: ignore[attr-defined]
        assert [d["seq"] for d in first] == list(range(100)) and cursor is not None
        second, _ = await events.apage(QuerySpec(order=(SortKey(Event.seq.path, False),)), 100, cursor)  # type: ignore[attr-defined]
        assert [d["seq"] for d in second] == list(range(100, 200))

        assert await events.adelete_where(QuerySpec(where=Event.kind == "j", limit=10)) == 10
        assert await events.adelete_where(QuerySpec(where=Event.kind == "j")) == 590
        assert await users.adelete(("a@x.io",)) is True and await users.adelete(("a@x.io",)) is False

    arun(reg, main)
    assert User.get_or_none("a@x.io") is None and Event.query().count() == 600  # what async wrote, sync reads


def test_untyped_order_and_ttl_hidden_attribute(make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry()
    backend = odm.Backend("mongodb", reg.backend)
    go = backend.define_repository("go_async", {"name": "go_async", "hashKey": "id",
                                               "enableTtl": True, "ttl": 3600, "ttlAttribute": "exp"})
    values: list[Any] = [None, 2, "a", {"z": 1}, [1], True, -1, 2]
    for i, value in enumerate(values):
        go.save({"id": f"k{i}", "v": value})
    repo = go.repo
    spec = QuerySpec(order=full_order(repo.spec, (SortKey(odm.golayer.Path(("v",), None), False),)))
    assert repo.compiler.ranked(spec.order)  # type: ignore[attr-defined]  # the aggregation path
    now = odm.utcnow()

    async def main() -> None:
        ranked = [d["id"] async for d in repo.afind(spec)]
        assert ranked == [d["id"] for d in repo.find(spec)] == ["k0", "k6", "k1", "k7", "k2", "k3", "k4", "k5"]
        # The TTL attribute keeps every microsecond (a BSON date and its hidden remainder), and an
        # expired item is absent before the server's TTL monitor runs.
        late = now + dt.timedelta(hours=1, microseconds=7)
        await repo.ainsert({"id": "t1", "exp": late})
        got = await repo.aget(("t1",))
        assert got == {"id": "t1", "exp": late} and got == repo.get(("t1",))
        await repo.aput({"id": "t2", "exp": now - dt.timedelta(seconds=5)})
        assert await repo.aget(("t2",)) is None and repo.get(("t2",)) is None
        await repo.ainsert({"id": "t2", "exp": late})  # the expired one counts as absent
        assert (await repo.aget(("t2",))) == {"id": "t2", "exp": late}

    try:
        arun(reg, main)
    finally:
        go.delete_all()


def test_200_concurrent_inserts_and_1000_concurrent_gets_through_one_client(
        make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(Account)
    repo = Account._bound().repo

    async def main() -> None:
        await asyncio.gather(*(repo.ainsert({"owner": f"o{i:03d}", "balance": i}) for i in range(200)))
        got = await asyncio.gather(*(repo.aget((f"o{i % 200:03d}",)) for i in range(1000)))
        assert [d["balance"] for d in got] == [i % 200 for i in range(1000)]  # type: ignore[index]
        clients = {id(reg.backend._aclient)}  # type: ignore[attr-defined]
        assert len(clients) == 1 and None not in clients

    arun(reg, main)
    assert sorted(a.owner for a in Account.query()) == [f"o{i:03d}" for i in range(200)]  # none lost, none twice
    assert Account.query().count() == 200


def test_a_broken_off_async_stream_closes_its_cursor_and_the_next_call_works(
        make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(Event)
    info = {k: v for k, v in reg.backend.info.items() if k in ("uri", "database")}
    small = odm.Registry("mongodb", **info, batchSize=10)  # ten items a round trip: the cursor stays open
    try:
        Event.insert_many([Event(stream="c", seq=i) for i in range(100)])
        repo = small.backend.repository(Event._bound().spec)
        before = open_cursors(small)

        async def main() -> None:
            for _ in range(120):  # more than the client's pool holds: each stream gave its connection back
                stream = repo.afind(QuerySpec(order=(SortKey(Event.seq.path, False),)))  # type: ignore[attr-defined]
                seen = []
                async for doc in stream:
                    seen.append(doc["seq"])
                    if len(seen) == 15:  # the second batch has been read: the server holds the cursor
                        break
                assert open_cursors(small) == before + 1
                await stream.aclose()  # type: ignore[attr-defined]
                assert open_cursors(small) == before
            # A task cancelled while it holds a stream: its cursor is closed as the task ends
            # (aclosing), or as soon as the loop finalizes the abandoned stream (a bare async for).
            for closing in (True, False):
                started = asyncio.Event()

                async def slow_reader(closing: bool = closing, started: asyncio.Event = started) -> None:
                    stream = repo.afind(QuerySpec())
                    async with contextlib.aclosing(stream) if closing else contextlib.nullcontext(stream):
                        async for _ in stream:
                            started.set()
                            await asyncio.sleep(3600)

                task = asyncio.create_task(slow_reader())
                await started.wait()
                assert open_cursors(small) == before + 1
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                if closing:
                    assert open_cursors(small) == before
                for _ in range(100):
                    if open_cursors(small) == before:
                        break
                    await asyncio.sleep(0.01)
                assert open_cursors(small) == before
            assert len([d async for d in repo.afind(QuerySpec())]) == 100
            assert (await repo.aget(("c", 42))) == {"stream": "c", "seq": 42}

        arun(small, main)
        assert open_cursors(small) == before
    finally:
        small.close()


def test_a_write_cancelled_midway_happened_or_did_not(make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(Event)
    repo = Event._bound().repo

    async def main() -> None:
        outcomes = set()
        for attempt in range(40):
            doc = {"stream": "w", "seq": attempt, "kind": "x" * 1000}
            task = asyncio.create_task(repo.ainsert(doc))
            for _ in range(attempt % 8):  # cancelled before it is sent, while it is in flight, or after
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                outcomes.add("done")
            except asyncio.CancelledError:
                outcomes.add("cancelled")
            got = await repo.aget(("w", attempt))
            assert got is None or got == doc  # whole or absent, never half
        # A batch cancelled between its round trips: the items it reports are whole, the next call works.
        many = [{"stream": "m", "seq": i, "kind": "y"} for i in range(3000)]
        task = asyncio.create_task(repo.ainsert_many(many))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stored = [d async for d in repo.afind(QuerySpec(where=Event.stream == "m"))]
        assert all(d == many[d["seq"]] for d in stored)
        assert "cancelled" in outcomes
        await repo.ainsert({"stream": "w", "seq": 1000})
        assert await repo.aget(("w", 1000)) == {"stream": "w", "seq": 1000}

    arun(reg, main)


def test_the_async_client_belongs_to_its_loop_and_closing_is_safe(make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(Account)
    repo = Account._bound().repo
    Account.create(owner="x", balance=1)

    async def read() -> Any:
        return await repo.aget(("x",))

    # One event loop after another (asyncio.run each time): each gets its own client.
    assert asyncio.run(read())["balance"] == 1
    assert arun(reg, read)["balance"] == 1
    assert reg.backend._aclient is None  # type: ignore[attr-defined]  # closed by aclose() in its loop
    assert Account.get("x").balance == 1  # the sync client still serves

    async def after_close() -> None:
        await reg.backend.aclose()
        await reg.backend.aclose()  # twice is fine
        with pytest.raises(odm.BackendUnavailable, match="closed"):
            await repo.aget(("x",))

    asyncio.run(after_close())


def test_sync_close_closes_an_async_client_running_on_another_thread(make_registry: Callable[..., odm.Registry]) -> None:
    """A loop on its own thread (as a web server's), closed from the main thread with the sync close()."""
    reg = make_registry(Account)
    Account.create(owner="t", balance=3)
    repo = Account._bound().repo
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        got = asyncio.run_coroutine_threadsafe(repo.aget(("t",)), loop).result(30)
        assert got is not None and got["balance"] == 3
        client = reg.backend._aclient  # type: ignore[attr-defined]
        Account.query().delete()
        reg.close()  # closes the async client on its own loop, and waits for it
        assert client._closed and reg.backend._aclient is None  # type: ignore[attr-defined]
    finally:
        reg.backend.close()  # (once more: safe)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
