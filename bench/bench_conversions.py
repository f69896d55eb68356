"""Per-object conversion cost against a plain marshmallow load + dump (no database).

Run: .venv/bin/python bench/bench_conversions.py [path/to/small_doc.json]
Prints microseconds per object (median of interleaved runs) and the ratio to marshmallow, for:
- small_doc (13 strings and ints, the MongoDB ODM benchmark's document);
- the issue's 10-field model: an embedded address, a Decimal, a tz-aware datetime, a 5-string list.
"Write" is input dict -> validated instance -> each backend's stored form (the SQL row's JSON text
included); "read" is stored form -> instance (the SQL JSON text parsed too). Targets (issue 11):
write <= 0.2x marshmallow's load+dump, read <= 0.15x marshmallow's load.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import marshmallow
from marshmallow import fields as mm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.models import SmallDoc, data_file, read_data  # noqa: E402
from bench.summary import record  # noqa: E402

#: The summary table's backend columns of each stored form.
SUMMARY_COLUMNS = {"SQL JSON": ("sqlite", "postgres"), "MongoDB": ("mongodb",), "DynamoDB": ("dynamodb",)}
from odm import EmbeddedModel, Model, fields  # noqa: E402
from odm.backends.codec import Codec  # noqa: E402
from odm.backends.dynamodb.codec import DynamoCodec  # noqa: E402
from odm.backends.mongodb.codec import MongoCodec  # noqa: E402
from odm.backends.sql.jsonfast import dumps, loads_exact, loads_plain  # noqa: E402
from odm.binding import Binding  # noqa: E402

DEFAULT = data_file("small_doc.json")


class Small(SmallDoc):
    class Meta:
        name = "bench_small"


SmallSchema = marshmallow.Schema.from_dict(
    {f"field{i}": mm.String() for i in range(1, 8)} | {f"field{i}": mm.Integer() for i in range(8, 14)})


class Address(EmbeddedModel):
    street = fields.String()
    city = fields.String()
    zip = fields.String()


class Order(Model):
    id = fields.String(required=True)
    customer = fields.String()
    email = fields.String()
    quantity = fields.Integer()
    price = fields.Decimal()
    paid = fields.Boolean()
    created = fields.DateTime()
    tags = fields.List(fields.String())
    note = fields.String()
    address = fields.Embedded(Address)

    class Meta:
        name = "bench_order"
        hash_key = "id"


AddressSchema = marshmallow.Schema.from_dict({"street": mm.String(), "city": mm.String(), "zip": mm.String()})
OrderSchema = marshmallow.Schema.from_dict({
    "id": mm.String(required=True), "customer": mm.String(), "email": mm.String(), "quantity": mm.Integer(),
    "price": mm.Decimal(), "paid": mm.Boolean(), "created": mm.AwareDateTime(), "tags": mm.List(mm.String()),
    "note": mm.String(), "address": mm.Nested(AddressSchema)})

ORDER = {"id": "order-000123", "customer": "Ada Lovelace", "email": "ada@example.com", "quantity": 3,
         "price": decimal.Decimal("1234.56"), "paid": True,
         "created": dt.datetime(2026, 11, 29, 3, 20, 42, 123456, tzinfo=dt.timezone.utc),
         "tags": ["new", "priority", "gift", "eu", "web"], "note": "leave at the door",
         "address": {"street": "12 Analytical Row", "city": "London", "zip": "N1 9GU"}}


class StoredForm:
    """A repository stand-in that keeps the stored form instead of sending it: ``Model.create``'s
    own write path (validation, TTL, encode) runs as it does against a server."""

    def __init__(self, codec: Codec, text: bool = False) -> None:
        self.codec = codec
        self.text = text  # the SQL backends write the document as JSON text
        self.stored: Any = None

    def bind(self, model: type[Model]) -> Binding:
        self.spec = model._spec
        return Binding(model, self)  # type: ignore[arg-type]

    def insert_op(self, doc: dict[str, Any]) -> Any:
        self.stored = dumps(doc) if self.text else doc
        return
        yield


def create(model: type[Model], doc: dict[str, Any]) -> None:
    """Model.create(**doc) up to the request it would send."""
    op = model._create_op(doc)
    try:
        next(op)
    except StopIteration:
        pass


def reader(binding: Binding, text: bool, exact: bool) -> Callable[[Any], Any]:
    decode = binding.decode
    if not text:
        return decode
    loads = loads_exact if exact else loads_plain
    return lambda stored: decode(loads(stored))


def main() -> None:
    small: dict[str, Any] = json.loads(read_data(sys.argv[1] if len(sys.argv) > 1 else DEFAULT))
    cases = [("small_doc", Small, SmallSchema(), small), ("10-field order", Order, OrderSchema(), ORDER)]
    n, rounds = 5000, 9
    for label, model, schema, doc in cases:
        forms = {"SQL JSON": StoredForm(Codec(), text=True), "MongoDB": StoredForm(MongoCodec()),
                 "DynamoDB": StoredForm(DynamoCodec())}
        exact = any(f.kind == "decimal" for f in model._fields.values())

        def mm_load_dump(schema: Any = schema, doc: Any = doc) -> None:
            for _ in range(n):
                schema.dump(schema.load(doc))

        def mm_load(schema: Any = schema, doc: Any = doc) -> None:
            for _ in range(n):
                schema.load(doc)

        runs: dict[str, Callable[[], None]] = {"mm load+dump": mm_load_dump, "mm load": mm_load}
        for backend, form in forms.items():
            binding = form.bind(model)
            model._odm_binding = binding
            create(model, doc)
            decode = reader(binding, form.text, exact)
            stored = form.stored
            assert decode(stored).to_dict() == model(**{**doc, "id": decode(stored).id}).to_dict(), backend

            def write(binding: Binding = binding, model: Any = model, doc: Any = doc) -> None:
                model._odm_binding = binding
                for _ in range(n):
                    create(model, doc)

            def read(decode: Any = decode, stored: Any = stored) -> None:
                for _ in range(n):
                    decode(stored)

            runs[f"{backend} write"] = write
            runs[f"{backend} read"] = read
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(rounds):  # interleaved: every variant once per round
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) / n * 1e6)
        med = {k: statistics.median(v) for k, v in times.items()}
        base_w, base_r = med["mm load+dump"], med["mm load"]
        print(f"{label}: marshmallow load+dump {base_w:.2f} us, load {base_r:.2f} us (median of {rounds} interleaved rounds)")
        print(f"  {'stored form':<10} {'write us':>9} {'/mm l+d':>8} {'read us':>8} {'/mm load':>9}")
        for backend in forms:
            w, r = med[f"{backend} write"], med[f"{backend} read"]
            print(f"  {backend:<10} {w:9.2f} {w / base_w:7.2f}x {r:8.2f} {r / base_r:8.2f}x")
            for name in SUMMARY_COLUMNS[backend]:  # the SQL JSON form is both SQL backends'
                record(f"per object, {label}", name, "write / marshmallow load+dump", w / base_w, "x mm")
                record(f"per object, {label}", name, "read / marshmallow load", r / base_r, "x mm")


if __name__ == "__main__":
    main()
