"""Bulk: ``Model.insert_many`` of 10,000 small_doc items against the raw driver's best bulk path.

Run: make bench, or .venv/bin/python bench/bench_bulk.py [path/to/small_doc.json] [--n 10000]
[--rounds 5] [--backends sqlite,postgres,mongodb,dynamodb]. Each backend runs in a process of its
own; servers come from the ODM_TEST_* variables or are started from .cache/ like the test suite.

Per round, ``n`` new small_doc items (fresh ids) are written by each variant into its own table of
the same shape (created by our ``sync`` from an identical model); the variants' order rotates by
round and round 0 warms up and is not counted. The raw side is written as an expert would:
- SQLite: ``executemany`` of the INSERT in one transaction (JSON text made by a reused encoder);
- PostgreSQL: ``executemany`` (psycopg 3 runs it in pipeline mode) and ``COPY ... FROM STDIN``
  (``cursor.copy``, binary, rows written one by one), both in one transaction; both are printed
  and the ratio is to the faster of the two in each round;
- MongoDB: ``insert_many(ordered=False)`` (pymongo splits it into messages of up to 48 MB);
- DynamoDB: ``batch_write_item`` of 25 puts with UnprocessedItems sent again, from a pool of
  threads (boto3 clients are thread-safe; one request is one item batch, so an expert overlaps
  them). BatchWriteItem overwrites an existing item silently, where our insert_many never does
  (``TransactWriteItems`` of up to 100 puts, each conditional on the key being absent); so a
  second raw baseline writes the same items by hand the safe way, TransactWriteItems of 100
  conditional puts, sequential and from the same pool of threads. The ratios to each separate
  "our Python" (ours / raw transactions) from "the safer write" (raw transactions / batch).
Printed: the median seconds per variant with the spread (min-max over rounds), the median CPU time
of this process (all its threads: the client's own work, which the servers and other jobs on the
machine disturb much less than the wall time), and the median of the per-round ratios ours/raw
throughput (1.00 = as fast as the driver; the target is 0.90).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.models import SmallDoc, data_file, read_data  # noqa: E402
from bench.summary import record  # noqa: E402
from bench.targets import target  # noqa: E402
from odm import fields  # noqa: E402

HERE = Path(__file__).resolve()
DEFAULT = data_file("small_doc.json")
BACKENDS = ["sqlite", "postgres", "mongodb", "dynamodb"]
#: Threads for the raw DynamoDB baselines (an expert overlaps the requests; more buys nothing on 2 cores).
THREADS = 8


class Keyed(SmallDoc):
    id = fields.String(required=True)

    class Meta:
        abstract = True


class Bulk(Keyed):
    class Meta:
        name = "bench_bulk_ours"
        hash_key = "id"


class BulkRaw(Keyed):
    """The same table shape, written by the raw driver (created by our sync)."""

    class Meta:
        name = "bench_bulk_raw"
        hash_key = "id"


Docs = list[dict[str, Any]]
Variant = Callable[[Docs], None]


# -- raw drivers: name -> function writing the docs -----------------------------------------------


def raw_sqlite(path: str, table: str) -> dict[str, Variant]:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sql = f'INSERT INTO {table} ("_hk", "doc") VALUES (?, ?)'
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def executemany(docs: Docs) -> None:
        with conn:
            conn.execute("BEGIN")
            conn.executemany(sql, [(d["id"], dumps(d)) for d in docs])

    return {"raw executemany": executemany}


def raw_postgres(dsn: str, table: str) -> dict[str, Variant]:
    import psycopg
    from psycopg.types.json import Jsonb

    conn = psycopg.connect(dsn, autocommit=True)
    sql = f'INSERT INTO {table} ("_hk", "doc") VALUES (%s, %s)'

    def executemany(docs: Docs) -> None:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(sql, [(d["id"], Jsonb(d)) for d in docs])

    def copy(docs: Docs) -> None:
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(f'COPY {table} ("_hk", "doc") FROM STDIN (FORMAT BINARY)') as cp:
                cp.set_types(["text", "jsonb"])
                for d in docs:
                    cp.write_row((d["id"], Jsonb(d)))

    return {"raw executemany": executemany, "raw copy": copy}


def raw_mongo(uri: str, database: str, collection: str) -> dict[str, Variant]:
    import pymongo

    client: Any = pymongo.MongoClient(uri)
    coll = client[database][collection]

    def insert_many(docs: Docs) -> None:
        coll.insert_many([{"_id": d["id"], **{k: v for k, v in d.items() if k != "id"}} for d in docs], ordered=False)

    return {"raw insert_many": insert_many}


def _av(value: Any) -> dict[str, str]:
    return {"S": value} if isinstance(value, str) else {"N": str(value)}


def raw_dynamo(client: Any, table: str) -> dict[str, Variant]:
    pool = ThreadPoolExecutor(THREADS)

    def batch(requests: list[dict[str, Any]]) -> None:
        delay = 0.05
        while requests:
            left = client.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
            requests = left.get(table, [])
            if requests:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def batch_write(docs: Docs) -> None:
        groups = [[{"PutRequest": {"Item": {k: _av(v) for k, v in d.items()}}} for d in docs[i:i + 25]]
                  for i in range(0, len(docs), 25)]
        list(pool.map(batch, groups))

    def transact(group: Docs) -> None:
        client.transact_write_items(ClientRequestToken=str(uuid.uuid4()), TransactItems=[
            {"Put": {"TableName": table, "Item": {k: _av(v) for k, v in d.items()},
                     "ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": {"#k": "id"}}}
            for d in group])

    def transact_sequential(docs: Docs) -> None:
        for i in range(0, len(docs), 100):
            transact(docs[i:i + 100])

    def transact_threads(docs: Docs) -> None:
        list(pool.map(transact, [docs[i:i + 100] for i in range(0, len(docs), 100)]))

    return {"raw batch_write (threads)": batch_write, "raw transact (1 thread)": transact_sequential,
            "raw transact (threads)": transact_threads}


# -- one backend, in its own process ------------------------------------------------------------


@contextmanager
def backend(name: str) -> Iterator[Callable[[], dict[str, Variant]]]:
    with target(name, "bulk", Bulk, BulkRaw) as t:
        makers: dict[str, Callable[[], dict[str, Variant]]] = {
            "sqlite": lambda: raw_sqlite(t.path, t.table(BulkRaw)),
            "postgres": lambda: raw_postgres(t.dsn, t.table(BulkRaw)),
            "mongodb": lambda: raw_mongo(t.uri, t.database, t.table(BulkRaw)),
            "dynamodb": lambda: raw_dynamo(t.boto3_client(max_pool_connections=THREADS), t.table(BulkRaw)),
        }
        yield makers[name]


def run_backend(name: str, small: dict[str, Any], n: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, client CPU) seconds per variant and round (after one warm-up round); ours is "ours insert_many"."""
    small = {k: v for k, v in small.items() if k not in ("_id", "id")}
    times: dict[str, list[tuple[float, float]]] = {}
    with backend(name) as make_raw:
        variants: dict[str, Variant] = {"ours insert_many": Bulk.insert_many, **make_raw()}
        names = list(variants)
        for r in range(rounds + 1):  # round 0 warms up and is not counted
            shift = r % len(names)
            for variant in names[shift:] + names[:shift]:  # which goes first rotates by round
                tag = uuid.uuid4().hex[:8]
                docs = [{"id": f"{tag}-{i:06d}", **small} for i in range(n)]
                start, cpu = time.perf_counter(), time.process_time()
                variants[variant](docs)
                took, used = time.perf_counter() - start, time.process_time() - cpu
                if r:
                    times.setdefault(variant, []).append((took, used))
                print(f"{name} round {r} {variant}: {took:.3f} s, client CPU {used:.3f} s", file=sys.stderr, flush=True)
    return times


def report(name: str, measured: dict[str, list[list[float]]], n: int) -> list[str]:
    times = {v: [wall for wall, _ in got] for v, got in measured.items()}
    cpu = {v: statistics.median(used for _, used in got) for v, got in measured.items()}
    ours = times["ours insert_many"]
    lines = []
    raws = [v for v in times if v.startswith("raw")]
    best: list[float] | None = None
    if name == "postgres":  # the faster raw path in each round
        best = [min(times[v][i] for v in raws) for i in range(len(ours))]
    for variant, got in times.items():
        med = statistics.median(got)
        ratio = statistics.median(r / o for o, r in zip(ours, got, strict=True))  # ours/raw throughput
        if not variant.startswith("ours"):
            record("bulk insert_many 10,000", name, f"vs {variant.removeprefix('raw ')}", ratio)
        lines.append(f"  {name:9} {variant:26} median {med:7.3f} s ({n / med:7.0f} items/s), spread "
                     f"{min(got):.3f}-{max(got):.3f} s, client CPU {cpu[variant]:.3f} s"
                     + ("" if variant.startswith("ours") else
                                                          f", ours/raw throughput {ratio:.2f}"))
    if best is not None:
        ratio = statistics.median(b / o for o, b in zip(ours, best, strict=True))
        record("bulk insert_many 10,000", name, "vs best raw", ratio)
        lines.append(f"  {name:9} {'raw best of the two':26} ours/raw throughput {ratio:.2f}")
    if name == "dynamodb":
        batch, one = times["raw batch_write (threads)"], times["raw transact (1 thread)"]
        threads = times["raw transact (threads)"]
        lines.append(f"  {name:9} the safer write: raw transact (1 thread) / raw batch_write (threads) throughput "
                     f"{statistics.median(b / t for t, b in zip(one, batch, strict=True)):.2f}, "
                     f"raw transact (threads) / batch_write {statistics.median(b / t for t, b in zip(threads, batch, strict=True)):.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("small_doc", nargs="?", default=str(DEFAULT))
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the per-backend child process
    args = parser.parse_args()
    small = json.loads(read_data(args.small_doc))
    if args.one:
        print(json.dumps(run_backend(args.one, small, args.n, args.rounds)))
        return
    print(f"insert_many of {args.n} small_doc items, ours against the raw driver's bulk path; medians of "
          f"{args.rounds} rounds, variants rotating within each, one process per backend (target: 0.90):")
    for name in args.backends.split(","):
        done = subprocess.run([sys.executable, str(HERE), args.small_doc, "--n", str(args.n), "--rounds",
                               str(args.rounds), "--one", name], capture_output=True, text=True)
        if done.returncode:
            tail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode
            print(f"  {name:9} failed: {tail}", flush=True)
            continue
        times = json.loads(done.stdout.strip().splitlines()[-1])
        print("\n".join(report(name, times, args.n)), flush=True)


if __name__ == "__main__":
    main()
