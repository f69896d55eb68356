"""The typed spelling (docs/models.md, "Typing"): mypy --strict and pyright report nothing here
(tests/unit/test_typing.py)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import TypeVar

from odm import EmbeddedModel, Model, fields, new_id, utcnow
from odm.expressions.nodes import Node
from odm.fields import FieldRef


class Color(enum.Enum):
    RED = "red"


class Address(EmbeddedModel):
    city: fields.String[str | None] = fields.String(default=None)


class Email(fields.String):
    """A field class of the user's own: a String[str | None]."""


S = TypeVar("S", bound=str | None)


class Slug(fields.String[S]):
    """One made generic, to be annotated."""


class User(Model):
    email: fields.String[str] = fields.String(required=True)
    age: fields.Integer[int | None] = fields.Integer(default=None)
    score: fields.Float[float] = fields.Float(default=0.0)
    joined: fields.DateTime[dt.datetime | None] = fields.DateTime(default=None)
    tags: fields.List[list[str] | None] = fields.List(fields.String(), default=None)
    address: fields.Embedded[Address | None] = fields.Embedded(Address, default=None)
    # A default, yet declared optional: it may be set to None.
    level: fields.Integer[int | None] = fields.Integer(default=1)
    color: fields.Enum[Color] = fields.Enum(Color, default=Color.RED)
    backup: Email = Email(default=None)
    slug: Slug[str] = Slug(required=True)
    stamp: fields.DateTime[dt.datetime] = fields.DateTime(default=utcnow)
    token: fields.UUID[uuid.UUID] = fields.UUID(default=uuid.uuid4)

    class Meta:
        hash_key = "email"


class Post(Model):
    """No Meta.hash_key: the automatic id is a str, an optional constructor argument."""

    title: fields.String[str] = fields.String(required=True)


class Tagged(Model):
    """Its own id (a str, required), as docs/models.md declares it."""

    id: fields.String[str] = fields.String(required=True)


class Counted(Model):
    """Its own id of another type: an override of Model.id, so the ignore docs/models.md names."""

    id: fields.Integer[int] = fields.Integer(required=True)  # type: ignore[assignment]


class Sequenced(Model):
    """The automatic id, declared."""

    id: fields.String[str] = fields.String(default=new_id)


user = User(email="a@example.com", slug="a", age=30, tags=["x"], address=Address(city="Paris"))
User(email="b@example.com", slug="b")  # optional fields are optional arguments
email: str = user.email
age: int | None = user.age
score: float = user.score
color: Color = user.color
backup: str | None = user.backup
slug: str = user.slug
stamp: dt.datetime = user.stamp
token: uuid.UUID = user.token
user.age = 31
user.age = None
user.level = None
ref: FieldRef = User.age
adult: Node = User.age >= 18
either: Node = (User.email == "a@example.com") | (User.age < 3)
in_paris: Node = User.address.city == "Paris"
tagged: Node = User.tags.contains("x")
renamed = User.email.set("b@example.com")
latest = User.joined.desc()

post = Post(title="x")
Post(title="y", id="given")
post_id: str = post.id
by_id: Node = Post.id == post_id
tagged_id: str = Tagged(id="t").id
sequenced_id: str = Sequenced().id
counted_id: int = Counted(id=3).id
