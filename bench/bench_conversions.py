"""Per-object conversion cost against a plain marshmallow load + dump (no database).

Run: .venv/bin/python bench/bench_conversions.py [path/to/small_doc.json]
Prints microseconds per object (median of several runs) and the ratio to marshmallow.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import marshmallow
from marshmallow import fields as mm

from odm import Model, fields
from odm.backends.codec import Codec

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "bench-data" / "mongodb-odm-benchmark" / "small_doc.json"


class Small(Model):
    field1 = fields.String()
    field2 = fields.String()
    field3 = fields.String()
    field4 = fields.String()
    field5 = fields.String()
    field6 = fields.String()
    field7 = fields.String()
    field8 = fields.Integer()
    field9 = fields.Integer()
    field10 = fields.Integer()
    field11 = fields.Integer()
    field12 = fields.Integer()
    field13 = fields.Integer()

    class Meta:
        name = "bench_small"


SmallSchema = marshmallow.Schema.from_dict(
    {f"field{i}": mm.String() for i in range(1, 8)} | {f"field{i}": mm.Integer() for i in range(8, 14)})


def timed(fn: Any, n: int, repeat: int = 7) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(n)
        runs.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    doc: dict[str, Any] = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT).read_text())
    schema = SmallSchema()
    assert Small._spec is not None
    encode, decode = Codec().model_plan(Small, Small._spec)
    stored = encode(Small(**doc))

    def marshmallow_load_dump(n: int) -> None:
        for _ in range(n):
            schema.dump(schema.load(doc))

    def odm_validate_encode(n: int) -> None:
        for _ in range(n):
            encode(Small(**doc))

    def odm_decode(n: int) -> None:
        for _ in range(n):
            decode(stored)

    n = 20000
    base = timed(marshmallow_load_dump, n)
    write = timed(odm_validate_encode, n)
    read = timed(odm_decode, n)
    print(f"marshmallow load+dump      {base:7.2f} us/object  1.00x")
    print(f"odm input->instance->stored {write:7.2f} us/object  {write / base:.2f}x")
    print(f"odm stored->instance        {read:7.2f} us/object  {read / base:.2f}x")


if __name__ == "__main__":
    main()
