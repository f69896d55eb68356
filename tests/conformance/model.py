"""The conformance model: hash + range key, a GSI, an LSI, an index and a field of every type.

``build_models()`` makes a fresh pair of classes per backend, so the same data can sit on
every backend at once without moving one class between registries. No TTL (DynamoDB Local).
"""

from __future__ import annotations

import decimal
from typing import Any

from odm import EmbeddedModel, Model, fields

TABLE = "conf_items"
#: String fields that key a secondary index (GSI "by_s", and "code" in Meta.indexes, a GSI on DynamoDB).
INDEX_STRING_FIELDS = ("s", "code")


def build_models() -> tuple[type[Model], type[EmbeddedModel]]:
    class Address(EmbeddedModel):
        city = fields.String(required=True)
        zip = fields.Integer()
        codes = fields.List(fields.String())
        marks = fields.Set(fields.Integer())

    class Item(Model):
        pk = fields.String(required=True)
        sk = fields.Integer(required=True)
        s = fields.String()
        i = fields.Integer()
        f = fields.Float()
        d = fields.Decimal()
        b = fields.Boolean()
        t = fields.DateTime()
        tags = fields.List(fields.String())
        labels = fields.Set(fields.String())
        nums = fields.Set(fields.Integer())
        decs = fields.Set(fields.Decimal())
        extra = fields.Dict()
        addr = fields.Embedded(Address)
        code = fields.String(data_key="c")

        class Meta:
            name = TABLE
            hash_key = "pk"
            range_key = "sk"
            indexes = ["code"]
            gsi = {"by_s": {"hash_key": "s", "range_key": "i"}}
            lsi = {"by_t": {"range_key": "t"}}

    return Item, Address


def plain(value: Any) -> Any:
    """The contract for untyped numbers (docs/semantics.md): int when integral, else an exact Decimal."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, (float, decimal.Decimal)) and not isinstance(value, bool):
        exact = decimal.Decimal(repr(value)) if isinstance(value, float) else value
        if exact == exact.to_integral_value():
            return int(exact)
        return decimal.Context(prec=100).normalize(exact)
    return value


def stored_doc(obj: Any) -> dict[str, Any]:
    """An instance as the reference sees it: stored names, None-valued attributes left out."""
    out: dict[str, Any] = {}
    for name, field in type(obj)._fields.items():
        value = getattr(obj, name)
        if value is None:
            continue
        if isinstance(value, EmbeddedModel):
            value = stored_doc(value)
        elif field.kind == "dict" and field.values is None:
            value = plain(value)
        out[field.data_key or name] = value
    return out
