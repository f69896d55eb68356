"""What conditional insert_many costs on DynamoDB, against the old check-then-batch path.

Run: make bench (or .venv/bin/python bench/bench_insert_many.py [items] [rounds]); it uses
ODM_TEST_DYNAMODB_ENDPOINT, or starts DynamoDB Local from .cache/ like the test suite.

Per round and in interleaved order, each variant inserts ``items`` new items into its own table:
- old: BatchGetItem to find existing keys, then BatchWriteItem in 25s (racy: it can overwrite);
- new: the current insert_many, TransactWriteItems of up to 100 conditional puts;
- new+unique: the same with one unique index (one guard put per item, 50 items per transaction).
Prints the median seconds of each and the ratios to old. On AWS a transactional write costs 2 WCU
per KB where BatchWriteItem costs 1, so capacity cost is 2x (4x with one unique index).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import odm  # noqa: E402
from odm import Index, Model, fields  # noqa: E402
from tests import servers  # noqa: E402


class Plain(Model):
    k = fields.String(required=True)
    who = fields.Integer()
    name = fields.String()

    class Meta:
        name = "bench_plain"
        hash_key = "k"


class Guarded(Model):
    k = fields.String(required=True)
    who = fields.Integer()
    name = fields.String()

    class Meta:
        name = "bench_guarded"
        hash_key = "k"
        indexes = [Index("name", unique=True)]


def old_path(model: type[Model], docs: list[dict[str, Any]]) -> None:
    """The insert_many this replaces: read which keys exist, then batch-write the rest."""
    repo: Any = model._bound().repo
    keys = [repo.spec.key_of(d) for d in docs]
    existing = {repo.spec.key_of(d) for d in repo.batch_get(keys)}
    repo._batch_write([{"PutRequest": {"Item": repo._item(d)}} for d, k in zip(docs, keys, strict=True) if k not in existing])


def new_path(model: type[Model], docs: list[dict[str, Any]]) -> None:
    model._bound().repo.insert_many(docs)


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    stack: list[servers.Process] = []
    try:
        endpoint = servers.dynamodb_endpoint(stack)
        reg = odm.Registry("dynamodb", endpoint=endpoint, awsRegion="us-east-1", awsSecretKeyId="bench",
                           awsSecretAccessKey="bench", tablePrefix=f"b{uuid.uuid4().hex[:6]}_")
        reg.register(Plain, Guarded)
        reg.sync()
        variants: dict[str, tuple[type[Model], Callable[[type[Model], list[dict[str, Any]]], None]]] = {
            "old": (Plain, old_path), "new": (Plain, new_path), "new+unique": (Guarded, new_path)}
        times: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(rounds + 1):  # round 0 warms up and is not counted
            for name, (model, run) in variants.items():
                tag = uuid.uuid4().hex[:8]
                docs = [{"k": f"{tag}-{i:05d}", "who": r, "name": f"{tag}-name-{i}"} for i in range(items)]
                start = time.perf_counter()
                run(model, docs)
                if r:
                    times[name].append(time.perf_counter() - start)
        base = statistics.median(times["old"])
        print(f"insert_many of {items} items on DynamoDB Local, median of {rounds} interleaved rounds:")
        for name, got in times.items():
            med = statistics.median(got)
            print(f"  {name:<11} {med:7.3f} s  ({items / med:7.0f} items/s)  x{med / base:.2f} of old")
        for model in (Plain, Guarded):
            model.query().delete()
        reg.close()
    finally:
        for proc in reversed(stack):
            proc.stop()


if __name__ == "__main__":
    main()
