"""The bare spelling (no annotation) under mypy --strict and pyright (tests/unit/test_typing.py).

The value type comes from the field call: ``T`` with ``required=True`` or a default, ``T | None``
otherwise. Instances are typed through the descriptor for both checkers; the field is not a
constructor argument for either. pyright also reports each bare field of a model (``Dataclass field
without type annotation``, its rule reportGeneralTypeIssues): the lines marked ``E[pyright]``.
"""

from __future__ import annotations

import datetime as dt
import enum

from odm import EmbeddedModel, Model, fields, utcnow
from odm.expressions.nodes import Node


class Color(enum.Enum):
    RED = "red"


class Place(EmbeddedModel):
    city = fields.String(required=True)  # E[pyright]: bare field


class Item(Model):
    name = fields.String(required=True)  # E[pyright]: bare field
    count = fields.Integer()  # E[pyright]: bare field
    size = fields.Integer(default=0)  # E[pyright]: bare field
    stamp = fields.DateTime(default=utcnow)  # E[pyright]: bare field
    color = fields.Enum(Color)  # E[pyright]: bare field
    tags = fields.List(fields.String(), default=list)  # E[pyright]: bare field
    place = fields.Embedded(Place, required=True)  # E[pyright]: bare field


item = Item.from_dict({"name": "x", "place": {"city": "Paris"}})
name: str = item.name
count: int | None = item.count
size: int = item.size
stamp: dt.datetime = item.stamp
color: Color | None = item.color
tags: list[str] = item.tags
city: str = item.place.city
key: str = item.id
total: int = item.count  # E: a field with neither required nor a default may be None
bigger: Node = Item.count > 3
item.size = 4
item.count = None
item.count = "many"  # E: wrong value type through the descriptor's __set__
item.size = None  # E: a field with a default holds an int
Item(name="x")  # E: not a constructor argument for a checker (bare fields are not dataclass fields)
