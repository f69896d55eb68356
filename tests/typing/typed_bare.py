"""The bare spelling under mypy --strict (tests/unit/test_typing.py): no annotation, so the
constructor is not checked, but instance attributes are typed through the descriptor.
(pyright reports a field specifier without an annotation, so it checks only the typed spelling.)"""

from __future__ import annotations

from odm import Model, fields
from odm.expressions.nodes import Node


class Item(Model):
    name = fields.String(required=True)
    count = fields.Integer()


item = Item.from_dict({"name": "x"})
name: str | None = item.name
count: int | None = item.count
bigger: Node = Item.count > 3
item.count = "many"  # E: wrong value type through the descriptor's __set__
