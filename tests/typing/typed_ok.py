"""The typed spelling (docs/models.md, "Typing"): mypy --strict and pyright report nothing here
(tests/unit/test_typing.py)."""

from __future__ import annotations

import datetime as dt

from odm import EmbeddedModel, Model, fields
from odm.expressions.nodes import Node
from odm.fields import FieldRef


class Address(EmbeddedModel):
    city: fields.String[str | None] = fields.String(default=None)


class User(Model):
    email: fields.String[str] = fields.String(required=True)
    age: fields.Integer[int | None] = fields.Integer(default=None)
    score: fields.Float[float] = fields.Float(default=0.0)
    joined: fields.DateTime[dt.datetime | None] = fields.DateTime(default=None)
    tags: fields.List[list[str] | None] = fields.List(fields.String(), default=None)
    address: fields.Embedded[Address | None] = fields.Embedded(Address, default=None)

    class Meta:
        hash_key = "email"


user = User(email="a@example.com", age=30, tags=["x"], address=Address(city="Paris"))
User(email="b@example.com")  # optional fields are optional arguments
email: str = user.email
age: int | None = user.age
score: float = user.score
user.age = 31
user.age = None
ref: FieldRef = User.age
adult: Node = User.age >= 18
either: Node = (User.email == "a@example.com") | (User.age < 3)
in_paris: Node = User.address.city == "Paris"
tagged: Node = User.tags.contains("x")
renamed = User.email.set("b@example.com")
latest = User.joined.desc()
