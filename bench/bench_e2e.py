"""End to end: our API against the raw driver doing the same work on the same table shape.

Run: make bench, or .venv/bin/python bench/bench_e2e.py [path/to/small_doc.json] [--n N] [--rounds R]
[--backends sqlite,postgres,mongodb,dynamodb]. Each backend runs in a process of its own (started
here); servers come from the ODM_TEST_* variables or are started from .cache/ like the test suite.

Tasks (the MongoDB ODM Performance Benchmark's, with small_doc), N operations each per round:
- create: ``Model.create(**doc)`` vs one INSERT / insert_one / conditional put_item;
- find by id: ``Model.get(id)`` vs one SELECT by key / find_one / get_item;
- update one field: ``obj.update(field8=...)`` vs one UPDATE / update_one / update_item;
- query by indexed field (10 hits): ``list(Model.query(field1=v))`` vs one SELECT on the index /
  find / query on the GSI;
- insert_many 1000: ``Model.insert_many(docs)`` vs the driver's bulk path (executemany in one
  transaction / insert_many / batch_write_item).
The raw baseline is written as an expert would: one statement per operation, prepared where the
driver prepares, no transaction around a single statement, results decoded to dicts. Ours and raw
alternate within every round (which goes first alternates too); round 0 warms up and is not
counted. Printed: ours / raw throughput, the median over rounds (1.00 = as fast as the driver), and
the lowest and highest round in brackets (the machine's noise). ``--tasks`` picks some of the tasks
(by the start of their names: ``--tasks find,query``). ``--clock cpu`` times this process's CPU
(``time.process_time``) instead of the wall clock: on a loaded machine the in-process SQLite cells
are then steadier; on a server backend it leaves the server's time out (the client's cost alone).
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import odm  # noqa: E402
from bench.models import SmallDoc, data_file, read_data  # noqa: E402
from bench.summary import record  # noqa: E402
from bench.targets import target  # noqa: E402
from odm import fields  # noqa: E402

HERE = Path(__file__).resolve()
DEFAULT = data_file("small_doc.json")
BACKENDS = ["sqlite", "postgres", "mongodb", "dynamodb"]
TASKS = ["create", "find by id", "update one field", "query by indexed field (10 hits)", "insert_many 1000"]
BULK = 1000


class Small(SmallDoc):
    id = fields.String(required=True)

    class Meta:
        name = "bench_e2e_ours"
        hash_key = "id"
        gsi = {"bench_e2e_ours_field1": {"hash_key": "field1"}}


class SmallRaw(SmallDoc):
    """The same table shape, written by the raw driver (created by our sync, so the indexes match)."""

    id = fields.String(required=True)

    class Meta:
        name = "bench_e2e_raw"
        hash_key = "id"
        gsi = {"bench_e2e_raw_field1": {"hash_key": "field1"}}


# -- raw drivers ---------------------------------------------------------------------------------


class Raw:
    """One backend's raw driver: the five tasks on plain dicts."""

    def create(self, doc: dict[str, Any]) -> None: ...
    def get(self, id: str) -> dict[str, Any]: ...
    def update(self, id: str, value: int) -> None: ...
    def query(self, value: str) -> list[dict[str, Any]]: ...
    def insert_many(self, docs: list[dict[str, Any]]) -> None: ...
    def close(self) -> None: ...


def _index_expression(ddl: str) -> str:
    """The indexed expression of a one-column CREATE INDEX statement."""
    inner = ddl[ddl.index("(", ddl.upper().index(" ON ")) + 1:ddl.rindex(")")]
    return inner


class RawSQLite(Raw):
    def __init__(self, path: str, table: str) -> None:
        import sqlite3

        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        name = json.loads(table)
        ddl = next(sql for (sql,) in self.conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (name,))
            if "field1" in sql)
        self.sql_insert = f'INSERT INTO {table} ("_hk", "doc") VALUES (?, ?)'
        self.sql_get = f'SELECT "doc" FROM {table} WHERE "_hk" = ?'
        self.sql_update = f'UPDATE {table} SET "doc" = json_set("doc", \'$.field8\', ?) WHERE "_hk" = ?'
        self.sql_query = f'SELECT "doc" FROM {table} WHERE {_index_expression(ddl)} = ?'
        self.dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def create(self, doc: dict[str, Any]) -> None:
        self.conn.execute(self.sql_insert, (doc["id"], self.dumps(doc)))

    def get(self, id: str) -> dict[str, Any]:
        return json.loads(self.conn.execute(self.sql_get, (id,)).fetchone()[0])  # type: ignore[no-any-return]

    def update(self, id: str, value: int) -> None:
        self.conn.execute(self.sql_update, (value, id))

    def query(self, value: str) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.conn.execute(self.sql_query, (value,)).fetchall()]

    def insert_many(self, docs: list[dict[str, Any]]) -> None:
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(self.sql_insert, [(d["id"], self.dumps(d)) for d in docs])

    def close(self) -> None:
        self.conn.close()


class RawPostgres(Raw):
    def __init__(self, dsn: str, table: str) -> None:
        import psycopg
        from psycopg.types.json import Jsonb

        self.Jsonb = Jsonb
        self.conn = psycopg.connect(dsn, autocommit=True)
        name = json.loads(table)
        ddl = next(d for (d,) in self.conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", (name,))
                   if "field1" in d)
        self.sql_insert = f'INSERT INTO {table} ("_hk", "doc") VALUES (%s, %s)'
        self.sql_get = f'SELECT "doc" FROM {table} WHERE "_hk" = %s'
        self.sql_update = f'UPDATE {table} SET "doc" = jsonb_set("doc", \'{{field8}}\', to_jsonb(%s::bigint)) WHERE "_hk" = %s'
        self.sql_query = f'SELECT "doc" FROM {table} WHERE {_index_expression(ddl)} = %s'

    def create(self, doc: dict[str, Any]) -> None:
        self.conn.execute(self.sql_insert, (doc["id"], self.Jsonb(doc)))

    def get(self, id: str) -> dict[str, Any]:
        return self.conn.execute(self.sql_get, (id,)).fetchone()[0]  # type: ignore[index, no-any-return]

    def update(self, id: str, value: int) -> None:
        self.conn.execute(self.sql_update, (value, id))

    def query(self, value: str) -> list[dict[str, Any]]:
        return [r[0] for r in self.conn.execute(self.sql_query, (value,)).fetchall()]

    def insert_many(self, docs: list[dict[str, Any]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(self.sql_insert, [(d["id"], self.Jsonb(d)) for d in docs])

    def close(self) -> None:
        self.conn.close()


class RawMongo(Raw):
    def __init__(self, uri: str, database: str, collection: str) -> None:
        import pymongo

        self.client: Any = pymongo.MongoClient(uri)
        self.coll = self.client[database][collection]

    @staticmethod
    def _stored(doc: dict[str, Any]) -> dict[str, Any]:
        out = dict(doc)
        out["_id"] = out.pop("id")
        return out

    def create(self, doc: dict[str, Any]) -> None:
        self.coll.insert_one(self._stored(doc))

    def get(self, id: str) -> dict[str, Any]:
        return self.coll.find_one({"_id": id})  # type: ignore[no-any-return]

    def update(self, id: str, value: int) -> None:
        self.coll.update_one({"_id": id}, {"$set": {"field8": value}})

    def query(self, value: str) -> list[dict[str, Any]]:
        return list(self.coll.find({"field1": value}))

    def insert_many(self, docs: list[dict[str, Any]]) -> None:
        self.coll.insert_many([self._stored(d) for d in docs])

    def close(self) -> None:
        self.client.close()


def _av(value: Any) -> dict[str, str]:
    return {"S": value} if isinstance(value, str) else {"N": str(value)}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v["S"] if "S" in v else int(v["N"]) for k, v in item.items()}


class RawDynamo(Raw):
    def __init__(self, client: Any, table: str, index: str) -> None:
        self.client = client
        self.table = table
        self.index = index

    def create(self, doc: dict[str, Any]) -> None:
        self.client.put_item(TableName=self.table, Item={k: _av(v) for k, v in doc.items()},
                             ConditionExpression="attribute_not_exists(id)")

    def get(self, id: str) -> dict[str, Any]:
        return _plain(self.client.get_item(TableName=self.table, Key={"id": {"S": id}}, ConsistentRead=True)["Item"])

    def update(self, id: str, value: int) -> None:
        self.client.update_item(TableName=self.table, Key={"id": {"S": id}}, UpdateExpression="SET field8 = :v",
                                ConditionExpression="attribute_exists(id)",
                                ExpressionAttributeValues={":v": {"N": str(value)}})

    def query(self, value: str) -> list[dict[str, Any]]:
        out = self.client.query(TableName=self.table, IndexName=self.index, KeyConditionExpression="field1 = :v",
                                ExpressionAttributeValues={":v": {"S": value}})
        return [_plain(i) for i in out["Items"]]

    def insert_many(self, docs: list[dict[str, Any]]) -> None:
        for start in range(0, len(docs), 25):
            requests = [{"PutRequest": {"Item": {k: _av(v) for k, v in d.items()}}} for d in docs[start:start + 25]]
            while requests:
                left = self.client.batch_write_item(RequestItems={self.table: requests}).get("UnprocessedItems", {})
                requests = left.get(self.table, [])

    def close(self) -> None:
        pass


# -- one backend, in its own process ------------------------------------------------------------


@contextmanager
def backend(name: str) -> Iterator[tuple[odm.Registry, Callable[[], Raw]]]:
    with target(name, "e2e", Small, SmallRaw) as t:
        makers: dict[str, Callable[[], Raw]] = {
            "sqlite": lambda: RawSQLite(t.path, t.table(SmallRaw)),
            "postgres": lambda: RawPostgres(t.dsn, t.table(SmallRaw)),
            "mongodb": lambda: RawMongo(t.uri, t.database, t.table(SmallRaw)),
            "dynamodb": lambda: RawDynamo(t.boto3_client(), t.table(SmallRaw), "bench_e2e_raw_field1"),
        }
        yield t.registry, makers[name]


CLOCK: Callable[[], float] = time.perf_counter


def timed(fn: Callable[[], Any], ops: int) -> float:
    """Operations per second of ``fn`` (which performs ``ops`` operations), on ``CLOCK``."""
    start = CLOCK()
    fn()
    return ops / max(CLOCK() - start, 1e-9)


def one_round(raw: Raw, small: dict[str, Any], n: int, r: int, tasks: list[str]) -> dict[str, tuple[float, float]]:
    """Each task once by us and once by the raw driver (which goes first alternates by round): ops/s."""
    tag = uuid.uuid4().hex[:8]
    # 10 documents share each field1 value: a query by field1 has 10 hits.
    docs = [{**small, "id": f"{tag}-{i:06d}", "field1": f"{tag}-{i // 10}"} for i in range(n)]
    groups = sorted({d["field1"] for d in docs})
    bulk = [{**small, "id": f"{tag}-b{i:06d}", "field1": f"{tag}-b"} for i in range(BULK)]
    objs: list[Small] = []

    def ours_create() -> None:
        objs.extend(Small.create(**d) for d in docs)

    def ours_get() -> None:
        for d in docs:
            Small.get(d["id"])

    def ours_update() -> None:
        for i, obj in enumerate(objs):
            obj.update(field8=r * n + i)

    def ours_query() -> None:
        for g in groups * 10:
            assert len(list(Small.query(field1=g))) == 10

    def ours_bulk() -> None:
        Small.insert_many(bulk)

    def raw_create() -> None:
        for d in docs:
            raw.create(d)

    def raw_get() -> None:
        for d in docs:
            raw.get(d["id"])

    def raw_update() -> None:
        for i, d in enumerate(docs):
            raw.update(d["id"], r * n + i)

    def raw_query() -> None:
        for g in groups * 10:
            assert len(raw.query(g)) == 10

    def raw_bulk() -> None:
        raw.insert_many(bulk)

    pairs = {"create": (ours_create, raw_create, n), "find by id": (ours_get, raw_get, n),
             "update one field": (ours_update, raw_update, n),
             "query by indexed field (10 hits)": (ours_query, raw_query, len(groups) * 10),
             "insert_many 1000": (ours_bulk, raw_bulk, BULK)}
    out = {}
    if "create" not in tasks:  # the reads and the update need the items: written untimed
        ours_create()
        raw_create()
    for task, (ours, theirs, ops) in pairs.items():
        if task not in tasks:
            continue
        if r % 2:
            a = timed(ours, ops)
            b = timed(theirs, ops)
        else:
            b = timed(theirs, ops)
            a = timed(ours, ops)
        out[task] = (a, b)
    Small.query().delete()
    SmallRaw.query().delete()
    return out


def run_backend(name: str, small: dict[str, Any], n: int, rounds: int, tasks: list[str]) -> dict[str, list[float]]:
    """Ours / raw throughput per task, one ratio per round (after one warm-up round)."""
    small = {k: v for k, v in small.items() if k != "_id"}
    rates: dict[str, list[tuple[float, float]]] = {t: [] for t in tasks}
    with backend(name) as (_, make_raw):
        raw = make_raw()
        for r in range(rounds + 1):  # round 0 warms up and is not counted
            got = one_round(raw, small, n, r, tasks)
            if r:
                for task, pair in got.items():
                    rates[task].append(pair)
        raw.close()
    for task, got in rates.items():  # absolute figures, for the record (stderr)
        print(f"{name:9} {task:34} ours {statistics.median(a for a, _ in got):8.0f}/s  "
              f"raw {statistics.median(b for _, b in got):8.0f}/s", file=sys.stderr)
    return {t: [a / b for a, b in got] for t, got in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("small_doc", nargs="?", default=str(DEFAULT))
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--tasks", default="", help="comma-separated starts of task names (default: every task)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the per-backend child process
    args = parser.parse_args()
    small = json.loads(read_data(args.small_doc))
    wanted = [w.strip() for w in args.tasks.split(",") if w.strip()]
    tasks = [t for t in TASKS if not wanted or any(t.startswith(w) for w in wanted)]
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.one:
        print(json.dumps(run_backend(args.one, small, args.n, args.rounds, tasks)))
        return
    names = args.backends.split(",")
    print(f"end to end, ours / raw driver throughput ({args.clock} clock), small_doc, N={args.n}, median (lowest-highest) "
          f"of {args.rounds} interleaved rounds, one process per backend (1.00 = the driver's speed):")
    print("| backend | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    absolute: list[str] = []
    for name in names:
        done = subprocess.run([sys.executable, str(HERE), args.small_doc, "--n", str(args.n), "--rounds", str(args.rounds),
                               "--tasks", args.tasks, "--clock", args.clock, "--one", name], capture_output=True, text=True)
        if done.returncode:
            print(f"| {name} | failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode} |")
            continue
        got = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {name} | " + " | ".join(f"{statistics.median(got[t]):.2f} ({min(got[t]):.2f}-{max(got[t]):.2f})"
                                           for t in tasks) + " |", flush=True)
        for t in tasks:
            record("e2e small_doc", name, t, statistics.median(got[t]))
        absolute.extend(line for line in done.stderr.splitlines() if line.startswith(name))
    print("medians of the absolute throughputs:")
    for line in absolute:
        print("  " + line)


if __name__ == "__main__":
    main()
