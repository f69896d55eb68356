"""The MongoDB ODM Performance Benchmark's documents as models, shared by the benchmarks in bench/.

small_doc's fields are declared once (``SmallDoc``, abstract); each benchmark names its own table.
The large documents' models are built from their JSON files, so they follow the data: a string
is a ``String``, an integer an ``Integer``, an Extended JSON binary (``{"$binary": ...}``) a
``Bytes``, an object an ``Embedded`` model of its own and a list of objects a ``List`` of one.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from odm import EmbeddedModel, Model, fields

#: Where the datasets live: the folder named by ``ODM_BENCH_DATA``, else ``shared/bench-data/...``
#: in a parent of this file (the project's shared folder, as make bench finds it).
DATA_DIR = "shared/bench-data/mongodb-odm-benchmark"
HERE = Path(__file__).resolve()


def data_file(name: str) -> Path:
    """``name`` in ``$ODM_BENCH_DATA`` or the first parent directory that holds the datasets (else
    the bare relative path, which ``read_data`` then reports as missing)."""
    if os.environ.get("ODM_BENCH_DATA"):
        return Path(os.environ["ODM_BENCH_DATA"]) / name
    return next((p / DATA_DIR / name for p in HERE.parents if (p / DATA_DIR / name).exists()), Path(DATA_DIR) / name)


def read_data(path: Path | str) -> str:
    """A dataset file's text; a missing one stops the benchmark with one line saying where to put it."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise SystemExit(f"bench: {path} not found: the MongoDB ODM Performance Benchmark's datasets (small_doc.json, "
                         "large_doc.json, large_doc_nested.json) go in a folder named by ODM_BENCH_DATA "
                         "(see docs/performance.md, 'Reproduce').") from None


class SmallDoc(Model):
    """small_doc.json's 13 fields (7 strings, 6 integers); an ``id`` key is the benchmark's."""

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
        abstract = True


def _binary(obj: dict[str, Any]) -> Any:
    """Extended JSON's binary (``{"$binary": {"base64": ..., "subType": "00"}}``) as bytes, as a driver reads it."""
    if obj.keys() == {"$binary"} and isinstance(obj["$binary"], dict):
        return base64.b64decode(obj["$binary"]["base64"])
    return obj


def load(path: Path) -> dict[str, Any]:
    """A dataset file as a Python document (binary values as bytes; the file's ``_id``, if any, dropped)."""
    doc: dict[str, Any] = json.loads(read_data(path), object_hook=_binary)
    doc.pop("_id", None)
    return doc


def _field(owner: str, key: str, value: Any, embedded_id: bool) -> fields.Field:
    if isinstance(value, bool):
        return fields.Boolean()
    if isinstance(value, str):
        return fields.String()
    if isinstance(value, int):
        return fields.Integer()
    if isinstance(value, float):
        return fields.Float()
    if isinstance(value, bytes):
        return fields.Bytes()
    if isinstance(value, dict):
        return fields.Embedded(_embedded(f"{owner}_{key}", value, embedded_id))
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return fields.List(fields.Embedded(_embedded(f"{owner}_{key}", value[0], embedded_id)))
    if isinstance(value, list) and value:
        return fields.List(_field(owner, key, value[0], embedded_id))
    raise TypeError(f"{owner}.{key}: no field type for {type(value).__name__} values")


def _embedded(name: str, sample: dict[str, Any], embedded_id: bool) -> type[EmbeddedModel]:
    attrs: dict[str, Any] = {k: _field(name, k, v, embedded_id) for k, v in sample.items()}
    if embedded_id:
        attrs["unique_id"] = fields.String()
    return type(name, (EmbeddedModel,), attrs)


def document_model(name: str, sample: dict[str, Any], *, embedded_id: bool = False, **meta: Any) -> type[Model]:
    """A model whose fields are ``sample``'s keys, with a String ``id`` hash key and table ``name``.

    ``embedded_id`` adds a String ``unique_id`` to every embedded model (the nested tasks find a
    parent by it); ``meta`` goes into ``Meta`` (indexes, gsi, ...).
    """
    attrs: dict[str, Any] = {"id": fields.String(required=True)}
    attrs.update((k, _field(name, k, v, embedded_id)) for k, v in sample.items())
    attrs["Meta"] = type("Meta", (), {"name": name, "hash_key": "id", **meta})
    return type(name, (Model,), attrs)
