"""Memory while iterating a large query: the extra RSS must stay within 50 MB (issue 11).

Run: make bench (or .venv/bin/python bench/bench_memory.py [items] [backend ...]). Servers as in
bench_async.py. Per backend: insert ``items`` small items (insert_many in chunks), then iterate
``Model.query()`` keeping nothing, sampling the process's resident set every 1,000 items; prints
the largest growth over the RSS measured just before the loop, sync and async (``async for``).
A query that loaded everything at once would grow by roughly the size of all the items.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from odm import Model, fields  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_async import configs  # noqa: E402
from summary import record  # noqa: E402

LIMIT_MB = 50
PAGE = os.sysconf("SC_PAGE_SIZE")


class Row(Model):
    k = fields.String(required=True)
    n = fields.Integer()
    text = fields.String()

    class Meta:
        name = "bench_memory_rows"
        hash_key = "k"


def rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * PAGE


def fill(items: int) -> None:
    tag = uuid.uuid4().hex[:6]
    chunk = 5000
    for start in range(0, items, chunk):
        Row.insert_many([Row(k=f"{tag}-{i:07d}", n=i, text="x" * 200) for i in range(start, min(items, start + chunk))])


def sync_growth() -> tuple[int, float]:
    base = peak = rss()
    seen = 0
    for _ in Row.query():
        seen += 1
        if seen % 1000 == 0:
            peak = max(peak, rss())
    return seen, (peak - base) / 2**20


async def async_growth() -> tuple[int, float]:
    base = peak = rss()
    seen = 0
    async for _ in Row.query():
        seen += 1
        if seen % 1000 == 0:
            peak = max(peak, rss())
    return seen, (peak - base) / 2**20


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    names = sys.argv[2:] or ["sqlite", "postgres", "mongodb", "dynamodb"]
    print(f"extra RSS while iterating {items} items of ~250 bytes (limit {LIMIT_MB} MB), sync and async:")
    with configs(names) as made:
        for name in names:
            async def run(name: str = name) -> None:
                async with made[name]() as reg:
                    reg.register(Row, rebind=True)
                    await reg.async_sync()
                    Row.query().delete()
                    fill(items)
                    n_sync, mb_sync = sync_growth()
                    n_async, mb_async = await async_growth()
                    await Row.query().adelete()
                    verdict = "ok" if max(mb_sync, mb_async) <= LIMIT_MB else "OVER THE LIMIT"
                    record(f"memory, {items} items", name, "iterate (sync)", mb_sync, "MB")
                    record(f"memory, {items} items", name, "iterate (async)", mb_async, "MB")
                    print(f"  {name:9} sync {mb_sync:6.1f} MB ({n_sync} items)   async {mb_async:6.1f} MB "
                          f"({n_async} items)   {verdict}")

            asyncio.run(run())


if __name__ == "__main__":
    main()
