"""Async throughput: 50 concurrent tasks on one event loop against the sync API on one thread.

Run: make bench (or .venv/bin/python bench/bench_async.py [ops] [rounds] [backend ...]). Servers
come from the ODM_TEST_* variables or are started from .cache/ as the test suite does; PostgreSQL
is the one on 127.0.0.1:5432.

Per backend and round, interleaved: ``ops`` creates then ``ops`` gets by key, once with the sync
API in a loop, once as ``asyncio.gather`` of tasks limited to 50 in flight. Prints the median
operations per second of each and the ratio async/sync. On a server that answers over a network
(PostgreSQL, MongoDB, DynamoDB Local) the tasks overlap their waits; SQLite has no network wait
and runs its async calls on worker threads, so expect no gain there.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import odm  # noqa: E402
from odm import Model, fields  # noqa: E402
from tests import servers  # noqa: E402

CONCURRENCY = 50


class Item(Model):
    k = fields.String(required=True)
    n = fields.Integer()
    name = fields.String()

    class Meta:
        name = "bench_async_items"
        hash_key = "k"


@contextmanager
def configs(names: list[str]) -> Iterator[dict[str, Callable[[], odm.Registry]]]:
    stack: list[servers.Process] = []
    tmp = Path(".pytest_cache") / "bench-async"
    tmp.mkdir(parents=True, exist_ok=True)
    pg: servers.PostgresDatabase | None = None
    made: dict[str, Callable[[], odm.Registry]] = {}
    try:
        for name in names:
            if name == "sqlite":
                path = str(tmp / f"{uuid.uuid4().hex}.db")
                made[name] = lambda path=path: odm.Registry("sqlite", path=path)  # type: ignore[misc]
            elif name == "postgres":
                pg = servers.PostgresDatabase()
                made[name] = lambda dsn=pg.dsn: odm.Registry("postgres", dsn=dsn)  # type: ignore[misc]
            elif name == "mongodb":
                uri = servers.mongodb_uri(stack)
                made[name] = lambda uri=uri: odm.Registry("mongodb", uri=uri, database="bench_async")  # type: ignore[misc]
            elif name == "dynamodb":
                endpoint = servers.dynamodb_endpoint(stack)
                made[name] = lambda e=endpoint: odm.Registry(  # type: ignore[misc]
                    "dynamodb", endpoint=e, awsRegion="us-east-1", awsSecretKeyId="bench", awsSecretAccessKey="bench",
                    tablePrefix="ba_")
        yield made
    finally:
        if pg is not None:
            pg.drop()
        for proc in reversed(stack):
            proc.stop()


def sync_round(ops: int) -> float:
    tag = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    for i in range(ops):
        Item.create(k=f"{tag}-{i}", n=i, name="x")
    for i in range(ops):
        Item.get(f"{tag}-{i}")
    return 2 * ops / (time.perf_counter() - start)


async def limited(calls: list[Callable[[], Awaitable[Any]]]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


async def async_round(ops: int) -> float:
    tag = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    await limited([lambda i=i: Item.acreate(k=f"{tag}-{i}", n=i, name="x") for i in range(ops)])
    await limited([lambda i=i: Item.aget(f"{tag}-{i}") for i in range(ops)])
    return 2 * ops / (time.perf_counter() - start)


def bench(name: str, make: Callable[[], odm.Registry], ops: int, rounds: int) -> tuple[float, float]:
    sync_rates: list[float] = []
    async_rates: list[float] = []

    async def main() -> None:
        async with make() as reg:
            reg.register(Item, rebind=True)
            await reg.async_sync()
            for r in range(rounds + 1):  # round 0 warms both paths up and is not counted
                s = sync_round(ops)
                a = await async_round(ops)
                if r:
                    sync_rates.append(s)
                    async_rates.append(a)
            await Item.query().adelete()

    asyncio.run(main())
    return statistics.median(sync_rates), statistics.median(async_rates)


def main() -> None:
    ops = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    names = sys.argv[3:] or ["sqlite", "postgres", "mongodb", "dynamodb"]
    print(f"async vs sync: {ops} creates + {ops} gets per round, {CONCURRENCY} tasks in flight, "
          f"median of {rounds} interleaved rounds")
    with configs(names) as made:
        for name in names:
            s, a = bench(name, made[name], ops, rounds)
            print(f"  {name:9} sync {s:8.0f} ops/s   async {a:8.0f} ops/s   async/sync {a / s:5.2f}x")


if __name__ == "__main__":
    main()
