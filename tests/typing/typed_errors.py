"""Checked by tests/unit/test_typing.py: each line whose comment starts with "E:" must be reported
by mypy --strict and pyright ("E[mypy]:" / "E[pyright]:": by that checker only), and nothing else."""

from __future__ import annotations

import datetime as dt

from odm import Model, fields


class User(Model):
    email: fields.String[str] = fields.String(required=True)
    age: fields.Integer[int | None] = fields.Integer(default=None)
    score: fields.Integer[int] = fields.Integer(default=0)
    wrong: fields.Integer[str] = fields.Integer(default=None)  # E: the type argument is not an int
    level: fields.Integer[int] = fields.Integer(default="high")  # E: a default of the wrong type
    rank: fields.Integer[int] = fields.Integer(default=None)  # E: declared int, but may be None
    created: fields.DateTime[dt.datetime] = fields.DateTime(auto_now_add=True, default=None)  # E: None until written

    class Meta:
        hash_key = "email"


class Post(Model):  # no hash_key: the automatic id
    title: fields.String[str] = fields.String(required=True)
    views: fields.Integer[int] = fields.Integer(default=0, dat_key="v")  # E: a misspelled field option


User(emial="a@example.com")  # E: misspelled field in a constructor
User(email="a@example.com", age="old")  # E: wrong type in a constructor
user = User(email="a@example.com")
print(user.emial)  # E: misspelled attribute
query = User.emial == "x"  # E: query on a misspelled field
user.age = "old"  # E: wrong value type
other = User(email="b@example.com")
count: str = other.age  # E: instance type is int | None
User()  # E: a required field left out
user.score = None  # E: a field with a default holds an int
post = Post(title="x")
number: int = post.id  # E: the automatic id is a str
Post(title="x", id=3)  # E: given, the automatic id is a str too
on_views = Post.veiws > 3  # E: query on a misspelled field
