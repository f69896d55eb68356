"""The awaitable API on every backend: the same models and queries, awaited (docs/async.md).

Each test runs one event loop (``asyncio.run``) that opens the registry's async connections
and closes them (``async with``) before the loop ends. Sync and async calls share the data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import odm

from .models import Account, User


def _run(target: Any, body: Callable[[odm.Registry], Any]) -> Any:
    async def main() -> Any:
        async with target.registry() as reg:
            reg.register(User, rebind=True)
            await reg.async_sync()
            try:
                return await body(reg)
            finally:
                await User.query().adelete()

    return asyncio.run(main())


def test_model_and_query_methods_awaited(target: Any) -> None:
    async def body(reg: odm.Registry) -> None:
        ann = await User.acreate(email="ann@x.io", name="Ann", age=30)
        with pytest.raises(odm.DuplicateKey):
            await User.acreate(email="ann@x.io", name="Other")
        assert (await User.aget("ann@x.io")).name == "Ann"
        assert await User.aget_or_none("nobody@x.io") is None
        with pytest.raises(odm.NotFound):
            await User.aget("nobody@x.io")
        ann.name = "Anne"
        await ann.asave()
        await ann.aupdate(age=odm.inc(1))
        assert ann.age == 31
        assert (await User.aget("ann@x.io")).name == "Anne"
        await User.ainsert_many([User(email=f"u{i}@x.io", name=f"U{i}", age=i) for i in range(12)])
        got = await User.abatch_get(["u3@x.io", "nobody@x.io", "u1@x.io"])
        assert [u.email for u in got] == ["u3@x.io", "u1@x.io"]
        query = User.query(User.age < 10)
        assert await query.acount() == 10
        assert await query.aexists() and not await User.query(User.age > 99).aexists()
        seen = sorted([u.email async for u in query])
        assert seen == sorted(f"u{i}@x.io" for i in range(10))
        assert len(await query.aall()) == 10
        first = await User.query(User.email == "u5@x.io").afirst()
        assert first is not None and first.age == 5
        pages, cursor = [], None
        while True:
            page = await query.apage(4, cursor)
            pages.append([u.email for u in page.items])
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(sum(pages, [])) == seen and len(pages) == 3
        await first.areload()
        await first.adelete()
        assert await User.aget_or_none("u5@x.io") is None
        assert await User.query(User.age < 3).adelete() == 3
        assert await User.adelete_many(User.age < 10) == 6
        # What an async call wrote, a sync call reads, and the other way round.
        assert User.get("ann@x.io").age == 31
        User.create(email="sync@x.io", name="S")
        assert (await User.aget("sync@x.io")).name == "S"

    _run(target, body)


def test_versioned_save_refused_when_stale(target: Any) -> None:
    async def main() -> None:
        async with target.registry() as reg:
            reg.register(Account, rebind=True)
            await reg.async_sync()
            try:
                await Account.acreate(owner="v")
                a, b = await Account.aget("v"), await Account.aget("v")
                a.balance = 10
                await a.asave()
                b.balance = 20
                with pytest.raises(odm.ConcurrentModification):
                    await b.asave()
                assert (await Account.aget("v")).balance == 10
                assert b.version == 1  # nothing written: the instance keeps its version
            finally:
                await Account.query().adelete()

    asyncio.run(main())


def test_many_concurrent_calls_through_one_registry(target: Any) -> None:
    async def body(reg: odm.Registry) -> None:
        created = await asyncio.gather(*(User.acreate(email=f"c{i}@x.io", name=f"C{i}", age=i) for i in range(200)))
        assert len(created) == 200
        got = await asyncio.gather(*(User.aget(f"c{i % 200}@x.io") for i in range(1000)))
        assert [u.age for u in got] == [i % 200 for i in range(1000)]
        assert await User.query().acount() == 200
        # Racing creates of the same keys: each key is written once, every other attempt is DuplicateKey.
        results = await asyncio.gather(*(User.acreate(email=f"c{i % 20}@x.io", name="again") for i in range(40)),
                                       return_exceptions=True)
        assert all(isinstance(r, odm.DuplicateKey) for r in results)
        assert {u.name for u in await User.query(User.age < 20).aall()} == {f"C{i}" for i in range(20)}

    _run(target, body)


def test_cancelled_iteration_and_write_leave_the_registry_usable(target: Any) -> None:
    async def body(reg: odm.Registry) -> None:
        await User.ainsert_many([User(email=f"i{i:03}@x.io", name="I", age=i) for i in range(150)])
        for _ in range(30):  # more abandoned iterations than any pool has connections
            async for _user in User.query():
                break
        assert await User.query().acount() == 150
        task = asyncio.ensure_future(User.acreate(email="cancel@x.io", name="C"))
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        # The write either happened completely or not at all; the next call works either way.
        maybe = await User.aget_or_none("cancel@x.io")
        assert maybe is None or maybe.name == "C"
        assert await User.query().acount() in (150, 151)

    _run(target, body)


def test_go_layer_awaited(target: Any) -> None:
    async def main() -> None:
        async with target.registry() as reg:
            backend = odm.Backend(target.name, reg.backend)
            repo = backend.define_repository("async_users", {"name": "suite_async_go", "hashKey": "email",
                                                             "hashKeyType": "S", "indexes": ["name"]})
            try:
                saved = await repo.asave({"email": "a@x.io", "name": "Ann", "age": 3})
                assert saved["name"] == "Ann"
                assert (await repo.aget_one({"email": "a@x.io"}))["age"] == 3
                await repo.asave({"age": 4}, {"email": "a@x.io"})
                await repo.asave({"email": "b@x.io", "name": "Bob"})
                if reg.backend.features.supports_arbitrary_order:  # else: test_golayer_order.py
                    assert [d["email"] for d in await repo.aget_all(order="email")] == ["a@x.io", "b@x.io"]
                assert sorted(d["email"] for d in await repo.aget_all()) == ["a@x.io", "b@x.io"]
                assert repo.get_one({"email": "a@x.io"})["age"] == 4  # sync sees it too
                await repo.adelete_one({"email": "b@x.io"})
                assert await repo.adelete_all() == 1
            finally:
                repo.delete_all()

    asyncio.run(main())
