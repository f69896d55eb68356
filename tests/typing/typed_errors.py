"""Checked by tests/unit/test_typing.py: each line whose comment starts with "E:" must be reported."""

from __future__ import annotations

from odm import Model, fields


class User(Model):
    email: fields.String[str] = fields.String(required=True)
    age: fields.Integer[int | None] = fields.Integer(default=None)

    class Meta:
        hash_key = "email"


User(emial="a@example.com")  # E: misspelled field in a constructor
User(email="a@example.com", age="old")  # E: wrong type in a constructor
user = User(email="a@example.com")
print(user.emial)  # E: misspelled attribute
query = User.emial == "x"  # E: query on a misspelled field
user.age = "old"  # E: wrong value type
other = User(email="b@example.com")
count: str = other.age  # E: instance type is int | None
User()  # E: a required field left out
