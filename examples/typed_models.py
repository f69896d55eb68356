"""Typed models: the spelling that mypy and pyright check (docs/models.md, "Typing").

Each field is annotated with its field class and the value an instance holds; optional fields
say ``default=...`` (``None`` for "no default") so they are optional constructor arguments.
Then ``User(emial=...)``, ``user.age = "old"`` and ``User.emial == "x"`` are type errors, and
``User.age >= 18`` is typed as a query expression. A model without ``Meta.hash_key`` has the
automatic ``id``, typed ``str``. tests/unit/test_typing.py checks this file
with ``mypy --strict`` and pyright, and runs it (embedded SQLite, no server needed).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile

import odm
from odm import EmbeddedModel, Model, fields


class Address(EmbeddedModel):
    city: fields.String[str] = fields.String(required=True)
    street: fields.String[str | None] = fields.String(default=None)


class User(Model):
    email: fields.String[str] = fields.String(required=True)
    name: fields.String[str | None] = fields.String(default=None)
    age: fields.Integer[int | None] = fields.Integer(default=None)
    active: fields.Boolean[bool] = fields.Boolean(default=True)
    tags: fields.List[list[str] | None] = fields.List(fields.String(), default=None)
    address: fields.Embedded[Address | None] = fields.Embedded(Address, default=None)
    created_at: fields.DateTime[dt.datetime | None] = fields.DateTime(auto_now_add=True, default=None)

    class Meta:
        name = "typed_users"
        hash_key = "email"


class Visit(Model):
    """No Meta.hash_key: keyed on the automatic ``id``."""

    email: fields.String[str] = fields.String(required=True)
    at: fields.DateTime[dt.datetime] = fields.DateTime(default=odm.utcnow)

    class Meta:
        name = "typed_visits"


def describe(user: User) -> str:
    """Instance attributes have the field's value type: ``user.age`` is ``int | None``."""
    age = "unknown age" if user.age is None else f"{user.age + 0} years"
    city = user.address.city if user.address is not None else "nowhere"
    return f"{user.email}: {age}, {city}"


def main() -> None:
    path = os.path.join(tempfile.mkdtemp(prefix="odm-typed-"), "typed.db")
    with odm.Registry.from_dict({"database": {"dbName": "sqlite", "dbInfo": {"path": path}}}) as registry:
        registry.register(User)
        registry.register(Visit)
        registry.sync()
        User(email="ann@example.com", age=31, address=Address(city="Paris")).save()
        User(email="bob@example.com", tags=["dev"]).save()
        adults = User.query(User.age >= 18)  # User.age is a FieldRef: the comparison is a query node
        print("adults:", [describe(u) for u in adults])
        print("devs:", [u.email for u in User.query(User.tags.contains("dev"))])
        visit = Visit(email="ann@example.com")
        visit.save()
        key: str = visit.id  # the automatic id
        print("visit:", Visit.get(key).email, Visit.get(key).at.tzname())


if __name__ == "__main__":
    main()
